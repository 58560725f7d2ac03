package tlsresume

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"0", "0", ""},
		{"123456789012345678901234567890", "123456789012345678901234567890", ""},
		{"-5", "-5", ""},
		{"0x1F", "31", ""},
		{"0Xff", "255", ""},
		{"01:a3:FF", "107519", ""},
		{"a:b", "2571", ""},
		{"", "", "empty"},
		{"12ab", "", "neither decimal"},
		{"0x", "", "neither decimal"},
		{"0xg1", "", "neither decimal"},
		{"-", "", "neither decimal"},
		{"1::2", "", "one or two hex digits"},
		{"123:4", "", "one or two hex digits"},
		{"+5", "", "neither decimal"},
		{" 5", "", "neither decimal"},
		{strings.Repeat("1", 129), "", "too long"},
	} {
		n, err := ParseSerial(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSerial(%q) = %v, %v; want error %q", tc.in, n, err, tc.err)
			}
		case err != nil || n.String() != tc.want:
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", tc.in, n, err, tc.want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	want := strings.Repeat("0a", 32)
	for _, tc := range []struct{ in, want, err string }{
		{want, want, ""},
		{strings.ToUpper(want), want, ""},
		{strings.TrimSuffix(strings.Repeat("0A:", 32), ":"), want, ""},
		{strings.TrimSuffix(strings.Repeat("0a ", 32), " "), want, ""},
		{"", "", "0 bytes"},
		{"0a", "", "1 bytes"},
		{want + "0a", "", "33 bytes"},
		{"xyz", "", "not hex"},
		{strings.Repeat("0", 200), "", "too long"},
	} {
		got, err := ParseFingerprint(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFingerprint(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

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
		{req: RevokeRequest{}, errContain: "missing certificate"},
		{req: RevokeRequest{SHA256: fp, CertPEM: "x"}, errContain: "both given"},
		{req: RevokeRequest{IssuerSHA256: fp, IssuerPEM: "x", Serial: "1"}, errContain: "both given"},
		{req: RevokeRequest{IssuerPEM: "not pem", Serial: "1"}, errContain: "issuer_pem: no PEM"},
		{req: RevokeRequest{SHA256: fp, Reason: strings.Repeat("r", 257)}, errContain: "reason: longer"},
	} {
		d, err := tc.req.DeniedCert()
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
		d, err := req.DeniedCert()
		if err != nil {
			return
		}
		if d.SHA256 != "" {
			if got, err := ParseFingerprint(d.SHA256); err != nil || got != d.SHA256 {
				t.Fatalf("accepted leaf digest %q does not round-trip", d.SHA256)
			}
			return
		}
		if got, err := ParseFingerprint(d.IssuerSHA256); err != nil || got != d.IssuerSHA256 {
			t.Fatalf("accepted issuer digest %q does not round-trip", d.IssuerSHA256)
		}
		if n, err := ParseSerial(d.Serial); err != nil || n.String() != d.Serial {
			t.Fatalf("accepted serial %q is not canonical decimal", d.Serial)
		}
	})
}
