package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

// startFleet runs two Caddy processes with an mTLS site sharing one ring,
// polling storage every second.
func startFleet(t *testing.T) (*harness.Cluster, *pki.Set) {
	t.Helper()
	set, files := harness.NewPKI(t)
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	c := harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		poll_interval 1s
		max_clock_skew 1s
	}
}

https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "%s resumed={http.request.tls.resumed}"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA, n.Name)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
	return c, set
}

// call sends one admin request and returns the status code and body.
func call(t *testing.T, n *harness.Node, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.AdminURL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func status(t *testing.T, n *harness.Node) tlsresume.Status {
	t.Helper()
	code, body := call(t, n, http.MethodGet, "/tls_resume/status", "")
	if code != http.StatusOK {
		t.Fatalf("status on %s: %d %s", n.Name, code, body)
	}
	var st tlsresume.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status on %s: %v in %s", n.Name, err, body)
	}
	return st
}

// waitStatus polls n's status until ok accepts it.
func waitStatus(t *testing.T, n *harness.Node, what string, ok func(tlsresume.Status) bool) tlsresume.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := status(t, n)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not reached; status %+v", n.Name, what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// resumable returns a client config holding a session that resumes on n.
func resumable(t *testing.T, n *harness.Node, set *pki.Set, client *pki.Leaf) *tls.Config {
	t.Helper()
	ctx := context.Background()
	cfg := harness.ClientConfig(set, client, "localhost")
	first, err := harness.Handshake(ctx, n.Addr(), cfg)
	if err != nil {
		t.Fatalf("%s: first handshake: %v", n.Name, err)
	}
	if first.DidResume {
		t.Fatalf("%s: first handshake resumed", n.Name)
	}
	second, err := harness.Handshake(ctx, n.Addr(), cfg)
	if err != nil || !second.DidResume {
		t.Fatalf("%s: second handshake resumed=%v err=%v", n.Name, second.DidResume, err)
	}
	return cfg
}

func TestAdminValidationThroughCaddy(t *testing.T) {
	c, _ := startFleet(t)
	n := c.Node(0)
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{http.MethodPost, "/tls_resume/revoke", `{"sha256":`, http.StatusBadRequest, "bad JSON"},
		{http.MethodPost, "/tls_resume/revoke", `{"sha256": "not hex"}`, http.StatusBadRequest, "sha256: not hex"},
		{http.MethodPost, "/tls_resume/revoke", `{"serial": "1"}`, http.StatusBadRequest, "without issuer"},
		{http.MethodPost, "/tls_resume/revoke", `{}`, http.StatusBadRequest, "missing certificate"},
		{http.MethodPost, "/tls_resume/invalidate", `{"before": 5}`, http.StatusBadRequest, "bad JSON"},
		{http.MethodGet, "/tls_resume/revoke", "", http.StatusMethodNotAllowed, "use POST"},
		{http.MethodPost, "/tls_resume/status", "", http.StatusMethodNotAllowed, "use GET"},
		{http.MethodPut, "/tls_resume/rotate", "", http.StatusMethodNotAllowed, "use POST"},
		// A certificate no node has seen may still be revoked.
		{http.MethodPost, "/tls_resume/revoke", `{"sha256": "` + strings.Repeat("5A:", 31) + `5A"}`, http.StatusOK, strings.Repeat("5a", 32)},
	} {
		code, body := call(t, n, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s; want %d containing %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.want)
		}
		if code >= 400 {
			var e struct{ Error string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("%s %s: error body is not {\"error\": ...}: %s", tc.method, tc.path, body)
			}
		}
	}
	// The unknown fingerprint reached the other node's ring.
	waitStatus(t, c.Node(1), "deny list of 1", func(st tlsresume.Status) bool { return st.DeniedCertificates == 1 })
}

// Revoking client A by fingerprint ends its resumption and its full
// handshakes on both nodes; client B is unaffected.
func TestRevokeAcrossNodes(t *testing.T) {
	c, set := startFleet(t)
	n0, n1 := c.Node(0), c.Node(1)
	ctx := context.Background()
	a0 := resumable(t, n0, set, set.ClientA)
	a1 := resumable(t, n1, set, set.ClientA)

	st := status(t, n0)
	if st.Handshakes.MutualResumed == 0 || st.SealingKeyID == "" || len(st.Keys) < 2 {
		t.Fatalf("status before revoke: %+v", st)
	}

	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	code, body := call(t, n0, http.MethodPost, "/tls_resume/revoke",
		fmt.Sprintf(`{"sha256": %q, "reason": "test"}`, strings.ToUpper(hex.EncodeToString(sum[:]))))
	if code != http.StatusOK || !strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	waitStatus(t, n1, "deny list of 1", func(st tlsresume.Status) bool { return st.DeniedCertificates == 1 })

	for _, tc := range []struct {
		n   *harness.Node
		cfg *tls.Config
	}{{n0, a0}, {n1, a1}} {
		if _, err := harness.Handshake(ctx, tc.n.Addr(), tc.cfg); err == nil {
			t.Errorf("%s: revoked client A resumed", tc.n.Name)
		}
		if _, err := harness.Get(ctx, tc.n.Addr(), harness.ClientConfig(set, set.ClientA, "localhost"), "/"); err == nil {
			t.Errorf("%s: revoked client A completed a full handshake and request", tc.n.Name)
		}
		resp, err := harness.Get(ctx, tc.n.Addr(), harness.ClientConfig(set, set.ClientB, "localhost"), "/")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: client B refused after A's revocation: %v", tc.n.Name, err)
		}
	}
}

// Invalidate: sessions issued before it no longer resume on either node;
// the clients fall back to full handshakes and resume again afterwards.
func TestInvalidateAcrossNodes(t *testing.T) {
	c, set := startFleet(t)
	n0, n1 := c.Node(0), c.Node(1)
	ctx := context.Background()
	cfg0 := resumable(t, n0, set, set.ClientA)
	cfg1 := resumable(t, n1, set, set.ClientB)
	// Tickets carry whole seconds: invalidate in a later second than the
	// one they were issued in.
	time.Sleep(1100 * time.Millisecond)

	code, body := call(t, n1, http.MethodPost, "/tls_resume/invalidate", "")
	if code != http.StatusOK {
		t.Fatalf("invalidate: %d %s", code, body)
	}
	var inv tlsresume.InvalidateResponse
	if err := json.Unmarshal([]byte(body), &inv); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, n0, "invalidation", func(st tlsresume.Status) bool {
		return st.InvalidatedBefore != nil && st.InvalidatedBefore.Equal(inv.InvalidatedBefore)
	})
	before := status(t, n0).TicketRejections["invalidated"]
	for _, tc := range []struct {
		n   *harness.Node
		cfg *tls.Config
	}{{n0, cfg0}, {n1, cfg1}} {
		got, err := harness.Handshake(ctx, tc.n.Addr(), tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.n.Name, err)
		}
		if got.DidResume {
			t.Errorf("%s: a session issued before the invalidation resumed", tc.n.Name)
		}
		// The new session resumes.
		if got, err := harness.Handshake(ctx, tc.n.Addr(), tc.cfg); err != nil || !got.DidResume {
			t.Errorf("%s: session issued after the invalidation: resumed=%v err=%v", tc.n.Name, got.DidResume, err)
		}
	}
	if after := status(t, n0).TicketRejections["invalidated"]; after <= before {
		t.Errorf("node0 counted %d invalidated tickets, before %d", after, before)
	}
}

// Rotate: both nodes switch to the staged key within a poll cycle and the
// clock-skew allowance; sessions sealed before keep resuming.
func TestRotateAcrossNodes(t *testing.T) {
	c, set := startFleet(t)
	n0, n1 := c.Node(0), c.Node(1)
	cfg := resumable(t, n0, set, set.ClientA)
	before := waitStatus(t, n1, "ring loaded", func(st tlsresume.Status) bool { return st.SealingKeyID != "" })
	var staged string
	for _, k := range before.Keys {
		if k.State == tlsresume.KeyStaged {
			staged = k.ID
		}
	}
	if staged == "" {
		t.Fatalf("no staged key: %+v", before.Keys)
	}

	code, body := call(t, n0, http.MethodPost, "/tls_resume/rotate", "")
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %s", code, body)
	}
	var rotated tlsresume.Status
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Rotations != before.Rotations+1 {
		t.Errorf("rotations %d → %d", before.Rotations, rotated.Rotations)
	}
	for _, n := range c.Nodes {
		st := waitStatus(t, n, "sealing key "+staged, func(st tlsresume.Status) bool { return st.SealingKeyID == staged })
		retired := false
		for _, k := range st.Keys {
			if k.ID == before.SealingKeyID && k.State == tlsresume.KeyRetired && k.Expires != nil {
				retired = true
			}
		}
		if !retired {
			t.Errorf("%s: the previous sealing key %s is not retired with an expiry: %+v", n.Name, before.SealingKeyID, st.Keys)
		}
	}
	// A session from before the rotation resumes on the other node.
	got, err := harness.Handshake(context.Background(), n1.Addr(), cfg)
	if err != nil || !got.DidResume {
		t.Errorf("pre-rotation session on %s: resumed=%v err=%v", n1.Name, got.DidResume, err)
	}
}
