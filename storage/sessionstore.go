package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// SessionStore keeps server-side TLS sessions: the tls_resume app hands the
// client only an opaque random handle and stores the session state, sealed
// with the ring's current key, under it. A store never sees a resumption
// secret in the clear.
//
// Every method must honour ctx (its deadline is the handshake's budget) and
// be safe for concurrent use.
type SessionStore interface {
	// Put stores sealed under handle for ttl, indexed under leaf (the
	// SHA-256 of the client certificate; the zero value when there is
	// none) so that RevokeLeaf can find it.
	Put(ctx context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error
	// Get returns the sealed session stored under handle, or ErrMiss.
	// The caller must not modify the returned bytes (stores may share
	// them with an in-memory cache).
	Get(ctx context.Context, handle []byte) ([]byte, error)
	// Take is Get that atomically deletes the session: a single-use
	// session resumes at most once.
	Take(ctx context.Context, handle []byte) ([]byte, error)
	// RevokeLeaf deletes every session indexed under the client
	// certificate fingerprint leaf and reports how many it deleted.
	RevokeLeaf(ctx context.Context, leaf [32]byte) (int, error)
	// InvalidateAll deletes every session of this store.
	InvalidateAll(ctx context.Context) error
	// ClaimEarlyData records that the session under handle used 0-RTT
	// and reports whether this was the first claim. It is the anti-replay
	// check: across the store's scope (a node for memory, the cluster for
	// Redis) only one resumption of a session gets early data. A missing
	// session is never first.
	ClaimEarlyData(ctx context.Context, handle []byte) (first bool, err error)
	// Close releases the store's connections.
	Close() error
}

// ErrMiss means no session is stored under the handle (never stored,
// expired, taken, revoked or invalidated).
var ErrMiss = errors.New("session store: no such session")

// movedToPolicy are the fields the store modules held until the
// handshake options moved to the tls_resume app's session_store_policy.
var movedToPolicy = []string{"budget", "fallback", "single_use", "breaker_threshold", "breaker_cooldown"}

// unmarshalStore decodes a store module's JSON config strictly into v, as
// Caddy does, after refusing the fields that moved to the app's
// session_store_policy with an error that says where they go now. It is a
// migration aid: without it, such configs would fail with a bare "unknown
// field".
func unmarshalStore(store string, b []byte, v any) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) == nil {
		for _, name := range movedToPolicy {
			if val, ok := fields[name]; ok {
				return fmt.Errorf(`session_store %q: %q is now an option of the tls_resume app: move it to "session_store_policy": {%q: %s}`, store, name, name, val)
			}
		}
	}
	return caddy.StrictUnmarshalJSON(b, v)
}
