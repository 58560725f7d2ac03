package resume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestStorageDownAtStartup: the ring's storage is unusable when Caddy
// starts (its directory is blocked by a regular file). Caddy still starts
// and serves mTLS with full handshakes; once the storage works again the
// ring is created on the next retry and connections resume.
func TestStorageDownAtStartup(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	ringDir := filepath.Join(t.TempDir(), "ring")
	if err := os.WriteFile(ringDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	tester.InitServer(globals(t, fmt.Sprintf("\t\tpoll_interval 300ms\n\t\tstorage file_system %s\n", ringDir))+mtlsSite(port, files, ""), "caddyfile")

	ctx := context.Background()
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	for i := range 3 {
		resp, err := harness.Get(ctx, harness.Addr(port), cfg, "/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d with storage down: %v", i, err)
		}
		if resp.State.DidResume {
			t.Fatal("resumed without a ring")
		}
	}
	if err := os.Remove(ringDir); err != nil {
		t.Fatal(err)
	}
	// Backoff is capped at the poll interval: the ring appears within a
	// few polls, after which a fresh session resumes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(ringDir, "tls_resume", "default", "ring.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ring not created after storage recovered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cfg = harness.ClientConfig(set, set.ClientA, "localhost")
	for i := range 2 {
		resp, err := harness.Get(ctx, harness.Addr(port), cfg, "/")
		if err != nil || resp.State.DidResume != (i == 1) {
			t.Fatalf("after recovery, connection %d: resumed=%v err=%v", i, resp != nil && resp.State.DidResume, err)
		}
	}
}
