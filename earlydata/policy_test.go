package earlydata

import (
	"slices"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name                            string
		inEarlyData, hasHeader, trusted bool
		wantEarly, wantStrip            bool
	}{
		{"complete handshake, no header", false, false, false, false, false},
		{"complete handshake, no header, trusted peer", false, false, true, false, false},
		{"header from untrusted peer is ignored and stripped", false, true, false, false, true},
		{"header from trusted proxy makes it early and is kept", false, true, true, true, false},
		{"0-RTT request", true, false, false, true, false},
		{"0-RTT request from trusted peer", true, false, true, true, false},
		{"0-RTT with untrusted header: early, header stripped", true, true, false, true, true},
		{"0-RTT with trusted header: early, header kept", true, true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			early, strip := classify(tc.inEarlyData, tc.hasHeader, tc.trusted)
			if early != tc.wantEarly || strip != tc.wantStrip {
				t.Fatalf("classify(%v, %v, %v) = early %v strip %v; want early %v strip %v",
					tc.inEarlyData, tc.hasHeader, tc.trusted, early, strip, tc.wantEarly, tc.wantStrip)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		safe, refused, allowed bool
		want                   bool
	}{
		{"safe method", true, false, false, true},
		{"safe method, also allowed", true, false, true, true},
		{"safe method on a refused route", true, true, false, false},
		{"refuse beats allow on a safe method", true, true, true, false},
		{"unsafe method", false, false, false, false},
		{"unsafe method on an allowed route", false, false, true, true},
		{"unsafe method on a refused route", false, true, false, false},
		{"refuse beats allow on an unsafe method", false, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := admit(tc.safe, tc.refused, tc.allowed); got != tc.want {
				t.Fatalf("admit(safe=%v, refused=%v, allowed=%v) = %v, want %v", tc.safe, tc.refused, tc.allowed, got, tc.want)
			}
		})
	}
}

func TestNormalizeMethods(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{name: "nil means defaults", in: nil, want: []string{"GET", "HEAD", "OPTIONS"}},
		{name: "upper-cased and deduplicated", in: []string{"get", "GET", "Head"}, want: []string{"GET", "HEAD"}},
		{name: "extension method", in: []string{"PROPFIND"}, want: []string{"PROPFIND"}},
		{name: "empty list", in: []string{}, wantErr: "methods: the list is empty"},
		{name: "empty name", in: []string{"GET", ""}, wantErr: `methods: "" is not a valid HTTP method`},
		{name: "space", in: []string{"GE T"}, wantErr: `methods: "GE T" is not a valid HTTP method`},
		{name: "separator", in: []string{"GET,POST"}, wantErr: `"GET,POST" is not a valid HTTP method`},
		{name: "non-ASCII", in: []string{"GÉT"}, wantErr: "is not a valid HTTP method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalizeMethods(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// The defaults must not be aliased: a caller appending to its result
	// must not change defaultMethods.
	got, _ := normalizeMethods(nil)
	got[0] = "POST"
	if defaultMethods[0] != "GET" {
		t.Fatal("normalizeMethods aliases defaultMethods")
	}
}

func TestValidMethod(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "M-SEARCH": true, "X_Y.Z~1": true, "!#$%&'*+-.^_`|~": true,
		"": false, "GET ": false, "G\tT": false, "A/B": false, "A(B)": false, "\x00": false, "ü": false,
	} {
		if got := validMethod(m); got != want {
			t.Errorf("validMethod(%q) = %v, want %v", m, got, want)
		}
	}
}
