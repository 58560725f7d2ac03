package caddyfilex

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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

func TestPositiveDurationAndInt(t *testing.T) {
	duration := func(d *caddyfile.Dispenser) (any, error) { return PositiveDuration(d, "m", "opt") }
	count := func(d *caddyfile.Dispenser) (any, error) { return PositiveInt(d, "m", "opt") }
	for _, tc := range []struct {
		parse func(*caddyfile.Dispenser) (any, error)
		line  string
		want  any
		err   string
	}{
		{duration, "opt 90s", 90 * time.Second, ""},
		{duration, "opt 1d", 24 * time.Hour, ""},
		{duration, "opt", nil, "m: opt takes exactly one duration, at Testfile:1"},
		{duration, "opt 1s 2s", nil, "m: opt takes exactly one duration, at Testfile:1"},
		{duration, "opt soon", nil, `m: opt: invalid duration "soon": time: invalid duration "soon", at Testfile:1`},
		{duration, "opt 0s", nil, `m: opt: must be positive, got "0s", at Testfile:1`},
		{duration, "opt -5m", nil, `m: opt: must be positive, got "-5m", at Testfile:1`},
		{count, "opt 7", 7, ""},
		{count, "opt", nil, "m: opt takes exactly one number, at Testfile:1"},
		{count, "opt 1 2", nil, "m: opt takes exactly one number, at Testfile:1"},
		{count, "opt many", nil, `m: opt: must be a positive integer, got "many", at Testfile:1`},
		{count, "opt 0", nil, `m: opt: must be a positive integer, got "0", at Testfile:1`},
	} {
		d := caddyfile.NewTestDispenser(tc.line)
		d.Next()
		got, err := tc.parse(d)
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

func TestPositiveDurationInto(t *testing.T) {
	var a, b caddy.Duration
	d := caddyfile.NewTestDispenser("b 2m")
	d.Next()
	dur, err := PositiveDurationInto(d, "m", "b", map[string]*caddy.Duration{"a": &a, "b": &b})
	if err != nil || dur != 2*time.Minute || b != caddy.Duration(2*time.Minute) || a != 0 {
		t.Fatalf("got %v %v; a=%v b=%v", dur, err, a, b)
	}
	d = caddyfile.NewTestDispenser("a 0s")
	d.Next()
	if _, err := PositiveDurationInto(d, "m", "a", map[string]*caddy.Duration{"a": &a}); err == nil || a != 0 {
		t.Fatalf("zero accepted: %v, a=%v", err, a)
	}
}
