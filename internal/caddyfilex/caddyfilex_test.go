package caddyfilex

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestOptionSetOnce(t *testing.T) {
	d := caddyfile.NewTestDispenser("x {\n\ta 1\n\tb 1\n\tb 2\n\ta 2\n}")
	seen := NewOptionSet("x %v: duplicate option %q", []string{"h1", "h2"}).Repeatable("b")
	d.Next()
	var err error
	for d.NextBlock(0) && err == nil {
		err = seen.Once(d, d.Val())
		d.RemainingArgs()
	}
	want := `x [h1 h2]: duplicate option "a", at Testfile:5`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestPositiveDuration(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
		err  string
	}{
		{"opt 90s", 90 * time.Second, ""},
		{"opt 1d", 24 * time.Hour, ""},
		{"opt", 0, "m: opt takes exactly one duration, at Testfile:1"},
		{"opt 1s 2s", 0, "m: opt takes exactly one duration, at Testfile:1"},
		{"opt soon", 0, `m: opt: invalid duration "soon": time: invalid duration "soon", at Testfile:1`},
		{"opt 0s", 0, `m: opt: must be positive, got "0s", at Testfile:1`},
		{"opt -5m", 0, `m: opt: must be positive, got "-5m", at Testfile:1`},
	} {
		d := caddyfile.NewTestDispenser(tc.line)
		d.Next()
		got, err := PositiveDuration(d, "m", "opt")
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err = %v, want %s", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %v, %v; want %v", tc.line, got, err, tc.want)
		}
	}
}

func TestPositiveInt(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
		err  string
	}{
		{"opt 7", 7, ""},
		{"opt", 0, "m: opt takes exactly one number, at Testfile:1"},
		{"opt 1 2", 0, "m: opt takes exactly one number, at Testfile:1"},
		{"opt many", 0, `m: opt: must be a positive integer, got "many", at Testfile:1`},
		{"opt 0", 0, `m: opt: must be a positive integer, got "0", at Testfile:1`},
	} {
		d := caddyfile.NewTestDispenser(tc.line)
		d.Next()
		got, err := PositiveInt(d, "m", "opt")
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err = %v, want %s", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %v, %v; want %v", tc.line, got, err, tc.want)
		}
	}
}
