package cli

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"testing"
)

// kekLine is exactly what keygen must print: 32 bytes of standard base64
// (44 characters, one padding '=') and a newline.
var kekLine = regexp.MustCompile(`\A[A-Za-z0-9+/]{43}=\n\z`)

func runKeygen(t *testing.T) string {
	t.Helper()
	var keygen = findSubcommand(t, "keygen")
	var out, errOut bytes.Buffer
	keygen.SetOut(&out)
	keygen.SetErr(&errOut)
	keygen.SetArgs(nil)
	if err := keygen.Execute(); err != nil {
		t.Fatalf("keygen: %v (stderr %q)", err, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("keygen wrote to stderr: %q", errOut.String())
	}
	return out.String()
}

func TestKeygenPrintsOneKEK(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		got := runKeygen(t)
		if !kekLine.MatchString(got) {
			t.Fatalf("keygen printed %q, want one line of 32 bytes in standard base64", got)
		}
		raw, err := base64.StdEncoding.DecodeString(got[:len(got)-1])
		if err != nil || len(raw) != 32 {
			t.Fatalf("keygen output %q decodes to %d bytes (%v), want 32", got, len(raw), err)
		}
		if seen[got] {
			t.Fatalf("keygen repeated a key: %q", got)
		}
		seen[got] = true
	}
}

func TestKeygenRejectsArguments(t *testing.T) {
	keygen := findSubcommand(t, "keygen")
	var out bytes.Buffer
	keygen.SetOut(&out)
	keygen.SetErr(&out)
	keygen.SetArgs([]string{"extra"})
	if err := keygen.Execute(); err == nil {
		t.Fatal("keygen accepted an argument")
	}
}
