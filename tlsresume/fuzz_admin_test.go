package tlsresume

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// FuzzAdminBodies feeds arbitrary bodies to the admin API's JSON decoding
// for each POST endpoint (rotate, invalidate, revoke), then a revoke body
// that decodes to the validator: never a panic, every refusal an API error
// with a 4xx status, and a revoke entry that is accepted names a
// certificate (by digest, or issuer and serial).
func FuzzAdminBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"emergency":true}`, `{"emergency":1}`,
		`{"before":"2026-12-01T00:00:00Z"}`, `{"before":"x"}`,
		`{"sha256":"` + strings.Repeat("ab", 32) + `","reason":"key leak"}`,
		`{"issuer_sha256":"` + strings.Repeat("AB", 32) + `","serial":"0x1f"}`,
		`{"cert_pem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}`,
		`{} {}`, `{"unknown":1}`, `[`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{new(RotateRequest), new(InvalidateRequest), new(RevokeRequest)} {
			r := httptest.NewRequest(http.MethodPost, "/tls_resume/x", strings.NewReader(body))
			err := decodeBody(r, v)
			if err != nil {
				var apiErr caddy.APIError
				if !errors.As(err, &apiErr) || apiErr.HTTPStatus < 400 || apiErr.HTTPStatus > 499 {
					t.Fatalf("decode error %v is not a 4xx API error", err)
				}
				continue
			}
			req, ok := v.(*RevokeRequest)
			if !ok {
				continue
			}
			d, err := req.deniedCert()
			if err != nil {
				continue
			}
			if d.SHA256 == "" && (d.IssuerSHA256 == "" || d.Serial == "") {
				t.Fatalf("accepted revoke entry names no certificate: %+v", d)
			}
		}
	})
}
