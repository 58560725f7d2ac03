package tlsresume

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
)

func TestRevokeRequestForms(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		req        RevokeRequest
		sha, iss   string
		serial     string
		errContain string
	}{
		{req: RevokeRequest{SHA256: fp}, sha: fp},
		{req: RevokeRequest{IssuerSHA256: strings.ToUpper(fp), Serial: "0x10"}, iss: fp, serial: "16"},
		// The spellings of internal/certid, shared with client_cert serial.
		{req: RevokeRequest{IssuerSHA256: fp, Serial: "-5"}, iss: fp, serial: "-5"},
		{req: RevokeRequest{IssuerSHA256: fp, Serial: "01:a3:FF"}, iss: fp, serial: "107519"},
		{req: RevokeRequest{IssuerSHA256: fp, Serial: "a:b"}, errContain: "serial: the colon-separated form needs two-digit hex groups"},
		{req: RevokeRequest{SHA256: strings.Repeat("AB ", 32)}, sha: fp},
		{req: RevokeRequest{}, errContain: "missing certificate"},
		{req: RevokeRequest{SHA256: fp, CertPEM: "x"}, errContain: "both given"},
		{req: RevokeRequest{IssuerSHA256: fp, IssuerPEM: "x", Serial: "1"}, errContain: "both given"},
		{req: RevokeRequest{IssuerPEM: "not pem", Serial: "1"}, errContain: "issuer_pem: no PEM"},
		{req: RevokeRequest{SHA256: fp, Reason: strings.Repeat("r", 257)}, errContain: "reason: longer"},
	} {
		d, err := tc.req.deniedCert()
		if tc.errContain != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContain) {
				t.Errorf("%+v: %+v, %v; want error %q", tc.req, d, err, tc.errContain)
			}
			continue
		}
		if err != nil || d.SHA256 != tc.sha || d.IssuerSHA256 != tc.iss || d.Serial != tc.serial {
			t.Errorf("%+v: %+v, %v", tc.req, d, err)
		}
	}
}

// FuzzRevokeRequest feeds admin request bodies through the decoder and
// validator: no panic, and every accepted entry is one the ring can index.
func FuzzRevokeRequest(f *testing.F) {
	f.Add(`{"sha256": "` + strings.Repeat("AB:", 31) + `AB"}`)
	f.Add(`{"issuer_sha256": "` + strings.Repeat("ab", 32) + `", "serial": "01:02"}`)
	f.Add(`{"issuer_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "serial": "-1"}`)
	f.Add(`{"cert_pem": "", "serial": "0x"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var req RevokeRequest
		if json.Unmarshal([]byte(body), &req) != nil {
			return
		}
		d, err := req.deniedCert()
		if err != nil {
			return
		}
		if d.SHA256 != "" {
			if got, err := certid.ParseFingerprint(d.SHA256); err != nil || got.String() != d.SHA256 {
				t.Fatalf("accepted leaf digest %q does not round-trip", d.SHA256)
			}
			return
		}
		if got, err := certid.ParseFingerprint(d.IssuerSHA256); err != nil || got.String() != d.IssuerSHA256 {
			t.Fatalf("accepted issuer digest %q does not round-trip", d.IssuerSHA256)
		}
		if n, err := certid.ParseSerial(d.Serial); err != nil || n.String() != d.Serial {
			t.Fatalf("accepted serial %q is not canonical decimal", d.Serial)
		}
	})
}
