package tlsresume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// startTestApp starts an App on a file-storage ring in a temporary
// directory, as Start would after Provision, and stops it at the end.
func startTestApp(t *testing.T, dir string) *App {
	t.Helper()
	kek, err := keyring.ParseKEK("kek", goodKEK)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{
		RingName: "admin-test",
		storage:  &certmagic.FileStorage{Path: dir},
		keks:     []*keyring.KEK{kek},
		sched:    keyring.Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Second},
		poll:     time.Second,
		rings:    new(keyring.Holder),
		logger:   zap.NewNop(),
		localDir: filepath.Join(dir, "local"),
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Error(err)
		}
		if runningApp() == a {
			t.Error("stopped app still registered")
		}
	})
	if runningApp() != a {
		t.Fatal("started app not registered")
	}
	return a
}

// adminDo runs one request through the admin route for path and returns
// the status and body, as Caddy's admin server would render an APIError.
func adminDo(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var h caddy.AdminHandler
	for _, r := range (AdminAPI{}).Routes() {
		if r.Pattern == path {
			h = r.Handler
		}
	}
	if h == nil {
		t.Fatalf("no admin route %s", path)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req); err != nil {
		apiErr, ok := err.(caddy.APIError)
		if !ok {
			t.Fatalf("%s %s: error %v is not an APIError", method, path, err)
		}
		return apiErr.HTTPStatus, apiErr.Error()
	}
	if rec.Code == http.StatusOK && rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, rec.Header().Get("Content-Type"))
	}
	return rec.Code, rec.Body.String()
}

func getStatus(t *testing.T) Status {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, "/tls_resume/status", "")
	if code != http.StatusOK {
		t.Fatalf("status: %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status body %s: %v", body, err)
	}
	return st
}

func TestAdminNoApp(t *testing.T) {
	prev := running.Swap(nil)
	defer running.Store(prev)
	for _, p := range []string{"/tls_resume/status", "/tls_resume/rotate"} {
		method := http.MethodPost
		if strings.HasSuffix(p, "status") {
			method = http.MethodGet
		}
		if code, body := adminDo(t, method, p, ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "not running") {
			t.Errorf("%s without app: %d %s", p, code, body)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	a := startTestApp(t, dir)

	st := getStatus(t)
	if st.Ring != "admin-test" || st.Version == 0 || st.KEKID != a.keks[0].ID() || st.SealingKeyID == "" {
		t.Fatalf("status %+v", st)
	}
	if len(st.Keys) != 2 || st.Keys[0].State != KeySealing || st.Keys[1].State != KeyStaged {
		t.Fatalf("keys %+v, want one sealing and one staged", st.Keys)
	}
	if st.Store.LastSynced == nil || st.Store.Failures != 0 || st.Store.LastError != "" {
		t.Errorf("store %+v", st.Store)
	}
	// Never key material: the status body mentions no secret.
	_, raw := adminDo(t, http.MethodGet, "/tls_resume/status", "")
	sealed, err := keyring.Store{Storage: a.storage, Name: a.RingName}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := keyring.Open(sealed, a.keks, a.RingName)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range stored.Keys {
		for _, enc := range []string{hex.EncodeToString(k.Secret), mustJSON(t, k.Secret)} {
			if strings.Contains(raw, strings.Trim(enc, `"`)) {
				t.Errorf("status reveals key %08x's secret", k.ID)
			}
		}
	}
	if strings.Contains(raw, "secret") {
		t.Errorf("status mentions a secret: %s", raw)
	}

	// Wrong methods.
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/tls_resume/status", "GET"},
		{http.MethodGet, "/tls_resume/rotate", "POST"},
		{http.MethodGet, "/tls_resume/invalidate", "POST"},
		{http.MethodDelete, "/tls_resume/revoke", "POST"},
	} {
		if code, body := adminDo(t, tc.method, tc.path, ""); code != http.StatusMethodNotAllowed || !strings.Contains(body, tc.allow) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, code, body)
		}
	}

	// Rotate: the staged key is brought forward to now + lead.
	before := st
	code, body := adminDo(t, http.MethodPost, "/tls_resume/rotate", "")
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %s", code, body)
	}
	var rotated Status
	if err := json.Unmarshal([]byte(body), &rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Rotations != before.Rotations+1 || rotated.Version <= before.Version {
		t.Errorf("rotate: rotations %d→%d version %d→%d", before.Rotations, rotated.Rotations, before.Version, rotated.Version)
	}
	staged := rotated.Keys[1]
	if staged.ID != before.Keys[1].ID || !staged.Activate.Before(before.Keys[1].Activate) ||
		staged.Activate.After(time.Now().Add(a.sched.Lead+time.Second)) {
		t.Errorf("rotate: staged key %+v, before %+v", staged, before.Keys[1])
	}
	if len(rotated.Keys) != 3 {
		t.Errorf("rotate: %d keys, want a new staged key after the brought-forward one", len(rotated.Keys))
	}

	// Emergency rotation: every previous key dropped, a fresh one sealing.
	code, body = adminDo(t, http.MethodPost, "/tls_resume/rotate", `{"emergency": true}`)
	if code != http.StatusOK {
		t.Fatalf("emergency rotate: %d %s", code, body)
	}
	var emergency Status
	if err := json.Unmarshal([]byte(body), &emergency); err != nil {
		t.Fatal(err)
	}
	if len(emergency.Keys) != 2 || emergency.Keys[0].State != "sealing" || emergency.Keys[1].State != "staged" {
		t.Fatalf("emergency rotate: keys %+v", emergency.Keys)
	}
	for _, k := range emergency.Keys {
		for _, old := range rotated.Keys {
			if k.ID == old.ID {
				t.Fatalf("emergency rotate kept key %s", k.ID)
			}
		}
	}
	if code, body := adminDo(t, http.MethodPost, "/tls_resume/rotate", `{"emergency": "yes"}`); code != http.StatusBadRequest {
		t.Errorf("emergency rotate with a bad body: %d %s", code, body)
	}

	// Invalidate: default now; bad JSON, unknown fields, future times refused.
	for _, tc := range []struct{ body, want string }{
		{`{"before":`, "bad JSON"},
		{`{"befor": "2026-01-01T00:00:00Z"}`, "unknown field"},
		{`{"before": "yesterday"}`, "bad JSON"},
		{`{} {}`, "data after"},
		{`{"before": "` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, "in the future"},
	} {
		if code, body := adminDo(t, http.MethodPost, "/tls_resume/invalidate", tc.body); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("invalidate %s: %d %s, want 400 %q", tc.body, code, body, tc.want)
		}
	}
	t1 := time.Now()
	code, body = adminDo(t, http.MethodPost, "/tls_resume/invalidate", "")
	if code != http.StatusOK {
		t.Fatalf("invalidate: %d %s", code, body)
	}
	var inv InvalidateResponse
	if err := json.Unmarshal([]byte(body), &inv); err != nil {
		t.Fatal(err)
	}
	if inv.InvalidatedBefore.Before(t1.Add(-time.Second)) || inv.InvalidatedBefore.After(time.Now()) {
		t.Errorf("invalidated before %s, want about %s", inv.InvalidatedBefore, t1)
	}
	// An earlier time leaves the later one in force.
	code, body = adminDo(t, http.MethodPost, "/tls_resume/invalidate", `{"before":"2020-01-01T00:00:00Z"}`)
	if code != http.StatusOK || !strings.Contains(body, inv.InvalidatedBefore.UTC().Format(time.RFC3339Nano)) {
		t.Errorf("earlier invalidate: %d %s, want %s kept", code, body, inv.InvalidatedBefore)
	}
	if st := getStatus(t); st.InvalidatedBefore == nil || !st.InvalidatedBefore.Equal(inv.InvalidatedBefore) {
		t.Errorf("status invalidated_before %v, want %s", st.InvalidatedBefore, inv.InvalidatedBefore)
	}

	// Revoke.
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sumA := sha256.Sum256(set.ClientA.Cert.Raw)
	colonUpper := strings.ToUpper(hex.EncodeToString(sumA[:1]))
	for _, b := range sumA[1:] {
		colonUpper += ":" + strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	for _, tc := range []struct{ body, want string }{
		{`not json`, "bad JSON"},
		{``, "missing certificate"},
		{`{}`, "missing certificate"},
		{`{"sha256": "zz"}`, "sha256: not hex"},
		{`{"sha256": "abcd"}`, "sha256: 2 bytes"},
		{`{"serial": "12"}`, "serial given without issuer"},
		{`{"issuer_sha256": "` + hex.EncodeToString(sumA[:]) + `"}`, "serial: required"},
		{`{"issuer_sha256": "` + hex.EncodeToString(sumA[:]) + `", "serial": "12ab"}`, "serial: "},
		{`{"sha256": "` + hex.EncodeToString(sumA[:]) + `", "serial": "1"}`, "not both"},
		{`{"cert_pem": "-----BEGIN"}`, "cert_pem: no PEM"},
		{`{"sha256": "` + hex.EncodeToString(sumA[:]) + `", "extra": 1}`, "unknown field"},
	} {
		if code, body := adminDo(t, http.MethodPost, "/tls_resume/revoke", tc.body); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("revoke %s: %d %s, want 400 %q", tc.body, code, body, tc.want)
		}
	}
	code, body = adminDo(t, http.MethodPost, "/tls_resume/revoke", `{"sha256": "`+colonUpper+`", "reason": "key compromise"}`)
	if code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	var rv RevokeResponse
	if err := json.Unmarshal([]byte(body), &rv); err != nil {
		t.Fatal(err)
	}
	if rv.Revoked.SHA256 != hex.EncodeToString(sumA[:]) || rv.DeniedCertificates != 1 || rv.Revoked.Reason != "key compromise" {
		t.Errorf("revoke response %+v", rv)
	}
	// A fingerprint no node has ever seen is accepted.
	unknown := strings.Repeat("ab", 32)
	if code, body := adminDo(t, http.MethodPost, "/tls_resume/revoke", `{"sha256": "`+unknown+`"}`); code != http.StatusOK {
		t.Errorf("revoke unknown: %d %s", code, body)
	}
	// By issuer (the CA certificate) and colon-hex serial: client B.
	serialB := set.ClientB.Cert.SerialNumber.Text(16)
	if len(serialB)%2 == 1 {
		serialB = "0" + serialB
	}
	var colonSerial []string
	for i := 0; i < len(serialB); i += 2 {
		colonSerial = append(colonSerial, serialB[i:i+2])
	}
	req, _ := json.Marshal(RevokeRequest{IssuerPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: set.ClientB.Intermediates[0].Raw})), Serial: strings.Join(colonSerial, ":")})
	if code, body := adminDo(t, http.MethodPost, "/tls_resume/revoke", string(req)); code != http.StatusOK {
		t.Fatalf("revoke by issuer: %d %s", code, body)
	}
	r := a.rings.Load()
	if !r.Denies(set.ClientA.Cert) || !r.Denies(set.ClientB.Cert) {
		t.Fatal("revoked certificates not on this node's deny list")
	}
	if st := getStatus(t); st.DeniedCertificates != 3 {
		t.Errorf("denied %d, want 3", st.DeniedCertificates)
	}

	// A second node on the same storage sees all of it.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	b := startTestApp(t, dir)
	rb := b.rings.Load()
	if rb == nil || !rb.Denies(set.ClientA.Cert) || !rb.Denies(set.ClientB.Cert) || rb.InvalidatedBefore != inv.InvalidatedBefore.Unix() {
		t.Fatal("second node does not see the revocations and invalidation")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A running node whose stored ring turns unopenable (another fleet's KEK
// wrote it) keeps serving the ring it holds, and status says both.
func TestStatusRingUnusable(t *testing.T) {
	dir := t.TempDir()
	a := startTestApp(t, dir)
	if st, _ := a.status(); st.SealingKeyID == "" {
		t.Fatal("no ring at start")
	}
	other, err := keyring.DecodeKEK(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, keyring.KEKSize)))
	if err != nil {
		t.Fatal(err)
	}
	store := keyring.Store{Storage: a.storage, Name: a.RingName}
	doc, err := a.sched.Maintain(nil, time.Now(), keyring.NewRandomKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keyring.Seal(doc, other, a.RingName)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Storage.Store(context.Background(), store.Key(), sealed); err != nil {
		t.Fatal(err)
	}
	if err := a.sync.Step(context.Background()); !errors.Is(err, keyring.ErrOtherKEK) {
		t.Fatalf("step: %v, want ErrOtherKEK", err)
	}
	st, err := a.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.SealingKeyID == "" || len(st.Keys) == 0 || st.Version != 1 {
		t.Errorf("status does not report the held ring the node serves: %+v", st)
	}
	if st.Store.Failures != 1 || !strings.Contains(st.Store.LastError, "another key-encryption key") || st.Store.LastErrorAt == nil {
		t.Errorf("store %+v", st.Store)
	}
}
