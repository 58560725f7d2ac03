package tlsresume

import (
	"os"
	"testing"
)

// TestMain keeps Caddy's data directory (node-local KEK, last-known ring
// copies) out of the home directory of whoever runs the tests.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tlsresume-test-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
