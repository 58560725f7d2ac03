package tlsresume

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	_ "github.com/tlsresume/caddy-tlsresume/storage" // the store modules
)

func TestSessionStorePolicyWithDefaults(t *testing.T) {
	defaults := SessionStorePolicy{
		Budget: caddy.Duration(defaultStoreBudget), Fallback: fallbackFull,
		BreakerThreshold: defaultBreakerThreshold, BreakerCooldown: caddy.Duration(defaultBreakerCooldown),
	}
	for _, tc := range []struct {
		in   SessionStorePolicy
		want SessionStorePolicy
		err  string
	}{
		{SessionStorePolicy{}, defaults, ""},
		{SessionStorePolicy{Budget: caddy.Duration(time.Second), Fallback: fallbackStateless, SingleUse: true, BreakerThreshold: 3, BreakerCooldown: caddy.Duration(time.Minute)},
			SessionStorePolicy{Budget: caddy.Duration(time.Second), Fallback: fallbackStateless, SingleUse: true, BreakerThreshold: 3, BreakerCooldown: caddy.Duration(time.Minute)}, ""},
		{SessionStorePolicy{Budget: caddy.Duration(maxStoreBudget), BreakerThreshold: maxBreakerThreshold, BreakerCooldown: caddy.Duration(maxBreakerCooldown)},
			SessionStorePolicy{Budget: caddy.Duration(maxStoreBudget), Fallback: fallbackFull, BreakerThreshold: maxBreakerThreshold, BreakerCooldown: caddy.Duration(maxBreakerCooldown)}, ""},
		{SessionStorePolicy{Budget: -1}, SessionStorePolicy{}, "budget: must be positive, got -1ns"},
		{SessionStorePolicy{BreakerThreshold: -3}, SessionStorePolicy{}, "breaker_threshold: must be positive, got -3"},
		{SessionStorePolicy{BreakerCooldown: caddy.Duration(-time.Second)}, SessionStorePolicy{}, "breaker_cooldown: must be positive, got -1s"},
		{SessionStorePolicy{Budget: caddy.Duration(time.Hour)}, SessionStorePolicy{}, "budget: 1h0m0s exceeds 5s: every resuming handshake may wait that long for the store"},
		{SessionStorePolicy{BreakerCooldown: caddy.Duration(time.Hour)}, SessionStorePolicy{}, "breaker_cooldown: 1h0m0s exceeds 10m0s: resumption would stay off that long after the store is back"},
		{SessionStorePolicy{BreakerThreshold: 1000000}, SessionStorePolicy{}, "breaker_threshold: 1000000 exceeds 10000: the breaker would never spare handshakes the budget's wait"},
		{SessionStorePolicy{Fallback: "retry"}, SessionStorePolicy{}, `fallback: must be "full" or "stateless", got "retry"`},
	} {
		got, err := tc.in.withDefaults()
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%+v: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestSessionStorePolicyRoundTrip: what the Caddyfile sets, the app's
// JSON carries (as `caddy adapt` writes it), and loading that JSON gives
// handshakes the same store policy.
func TestSessionStorePolicyRoundTrip(t *testing.T) {
	// What handshakes use: budget, fallback stateless, single use,
	// breaker threshold and cooldown.
	type use struct {
		budget            time.Duration
		stateless, single bool
		threshold         int64
		cooldown          time.Duration
	}
	for _, tc := range []struct {
		block string
		want  use
	}{
		{"session_store memory", use{defaultStoreBudget, false, false, defaultBreakerThreshold, defaultBreakerCooldown}},
		{"session_store memory {\n budget 2s\n max_entries 10\n single_use\n}", use{2 * time.Second, false, true, defaultBreakerThreshold, defaultBreakerCooldown}},
		{"session_store redis {\n fallback stateless\n address a:1\n breaker_threshold 7\n breaker_cooldown 1m\n}", use{defaultStoreBudget, true, false, 7, time.Minute}},
	} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tls_resume {\n" + tc.block + "\n}")); err != nil {
			t.Fatalf("%q: %v", tc.block, err)
		}
		raw, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		var loaded App
		if err := caddy.StrictUnmarshalJSON(raw, &loaded); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var p SessionStorePolicy
		if loaded.SessionStorePolicy != nil {
			p = *loaded.SessionStorePolicy
		}
		p, err = p.withDefaults()
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		s := newSessions(nil, p, time.Minute, zap.NewNop())
		got := use{s.budget, s.stateless, s.singleUse, s.breaker.threshold, s.breaker.cooldown}
		if got != tc.want {
			t.Errorf("%q via %s: handshakes use %+v, want %+v", tc.block, raw, got, tc.want)
		}
	}
}

// FuzzSessionStoreBlock: no session_store block crashes the split between
// the policy options and the store module's parser.
func FuzzSessionStoreBlock(f *testing.F) {
	f.Add("session_store redis {\n address a:1\n budget 10ms\n tls {\n ca x\n }\n single_use\n}")
	f.Add("session_store memory {\n max_entries 5\n fallback stateless\n}")
	f.Add("session_store memory { budget }")
	f.Add("session_store redis {\n budget 1s {\n }\n}")
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "fuzz")
		if err != nil {
			return
		}
		d := caddyfile.NewDispenser(tokens)
		if !d.Next() || !d.NextArg() {
			return
		}
		_, _, _ = unmarshalSessionStore(d)
	})
}
