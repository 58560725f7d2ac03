package upstream

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// sessionCache is the tls.ClientSessionCache one transport installs: a view
// of a shared sessionStore that qualifies every key crypto/tls asks for with
// the transport's identity digest and applies the transport's session
// lifetime.
//
// crypto/tls calls Get with the connection's ServerName (or the remote
// address when there is none) before it offers a session, and Put with the
// same key when the server sends a ticket. On top of this keying, Go itself
// refuses a cached session whose server certificate does not cover the
// ServerName, has expired, or no longer chains to the current RootCAs.
//
// With fullEvery set (full_handshake_every), Get also refuses the session
// of a server whose last successful full handshake is older than fullEvery,
// so crypto/tls does a full handshake, verifying the server's certificate
// chain as it is now, instead of resuming.
type sessionCache struct {
	store     *sessionStore
	identity  string
	lifetime  time.Duration
	fullEvery time.Duration // 0: no full-handshake schedule
	now       func() time.Time
	logger    *zap.Logger // nil in tests that build a cache by hand
}

// Get implements tls.ClientSessionCache.
func (c *sessionCache) Get(sessionKey string) (*tls.ClientSessionState, bool) {
	return c.store.lookup(c.key(sessionKey), c.lifetime, c.fullEvery, c.now())
}

// Put implements tls.ClientSessionCache.
func (c *sessionCache) Put(sessionKey string, cs *tls.ClientSessionState) {
	if c.store.put(c.key(sessionKey), cs, c.now()) {
		c.logRecovered(sessionKey)
	}
}

// logRecovered says that handshakes to server succeed again after a
// failure streak.
func (c *sessionCache) logRecovered(server string) {
	if c.logger == nil {
		return
	}
	c.logger.Info("upstream TLS handshakes succeed again", zap.String("server_name", server))
}

func (c *sessionCache) key(server string) sessionKey {
	return sessionKey{identity: c.identity, server: server}
}

// stores shares session stores between transports and across config
// reloads: a reload provisions the new transports before the old ones are
// cleaned up, so the reference count never drops to zero and sessions
// survive. Stores are keyed by capacity only; the identity digest in every
// entry key keeps differently configured transports apart.
var stores = caddy.NewUsagePool()

// storeKey names the shared store of a given capacity in stores.
func storeKey(capacity int) string {
	return fmt.Sprintf("upstream_sessions/%d", capacity)
}

// acquireStore returns the shared store of the given capacity; each call
// must be paired with releaseStore(storeKey(capacity)).
func acquireStore(capacity int) (*sessionStore, error) {
	v, _, err := stores.LoadOrNew(storeKey(capacity), func() (caddy.Destructor, error) {
		return newSessionStore(capacity), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sessionStore), nil
}

func releaseStore(key string) error {
	_, err := stores.Delete(key)
	return err
}

// Interface guards
var (
	_ tls.ClientSessionCache = (*sessionCache)(nil)
	_ caddy.Destructor       = (*sessionStore)(nil)
)
