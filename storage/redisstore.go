package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// Defaults of RedisStore.
const (
	defaultRedisKeyPrefix    = "tls_resume:"
	defaultRedisDialTimeout  = time.Second
	defaultRedisReadTimeout  = 500 * time.Millisecond
	defaultRedisWriteTimeout = 500 * time.Millisecond
	maxRedisTimeout          = time.Minute
)

// RedisStore keeps sessions in Redis so that every node of a fleet can
// resume every session, revoke a client's sessions everywhere at once and
// let a ticket open 0-RTT only once across the fleet. It connects through
// go-redis's universal client: one address is a single server (or a
// Sentinel when master_name is set), several are a Cluster (or Sentinels).
//
// Keys (all under key_prefix): `s:{<handle>}` holds a sealed session,
// `e:{<handle>}` its 0-RTT claim (same hash slot), `l:<sha256>` the set of
// sessions of one client certificate. Every key expires with its session.
type RedisStore struct {
	// Redis addresses (host:port). One address: a single server, or a
	// Sentinel with master_name. Several: Cluster nodes, or Sentinels with
	// master_name. Placeholders are resolved.
	Addresses []string `json:"addresses,omitempty"`

	// Name of the Sentinel-monitored master; makes the addresses Sentinels.
	MasterName string `json:"master_name,omitempty"`

	// ACL user name (Redis 6+). Placeholders are resolved.
	Username string `json:"username,omitempty"`

	// Password (ACL user's, or requirepass). Placeholders such as
	// `{env.REDIS_PASSWORD}` or `{file./run/secrets/redis}` are resolved.
	Password string `json:"password,omitempty"`

	// Redis logical database (single server and Sentinel only).
	DB int `json:"db,omitempty"`

	// TLS to Redis; absent means plain TCP.
	TLS *RedisTLS `json:"tls,omitempty"`

	// Prefix of every key this store writes, so that several fleets (or
	// rings) can share one Redis. Default: `tls_resume:`.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout for opening a connection; at most 1m. Default: 1s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// Socket read timeout; at most 1m. Default: 500ms. Handshakes are bounded by
	// the app's session_store_policy `budget` regardless.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// Socket write timeout; at most 1m. Default: 500ms.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// Sessions each node keeps in memory in front of Redis, so that a
	// session this node stored or read resumes without a round trip.
	// Deletions reach every node's cache through Redis pub/sub. Default:
	// 10000.
	LocalCacheEntries int `json:"local_cache_entries,omitempty"`

	// Turn the in-process cache off: every resumption reads Redis.
	NoLocalCache bool `json:"no_local_cache,omitempty"`

	// backend is the store in Redis; store is backend, or the local
	// cache in front of it.
	backend *redisBackend
	store   SessionStore
	// logger receives go-redis's own log lines (see redislog.go);
	// Provision sets it from the module's context unless a test did.
	logger  *zap.Logger
	logSink *redisLogSink
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	// PEM file of the CAs that sign the Redis server certificates.
	// Default: the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// PEM client certificate and key, for Redis servers that require
	// client authentication.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// Server name to verify. Default: the host of each address.
	ServerName string `json:"server_name,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls_resume.session_stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision creates the client (and the local cache) from the addresses,
// which it needs, and the TLS files, which it reads. It does not connect:
// a Redis that is down at start only means full handshakes (or stateless
// tickets) until it is back. Validate checks the other fields.
func (s *RedisStore) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	if len(s.Addresses) == 0 {
		return errors.New("addresses: at least one Redis address is required")
	}
	addrs := make([]string, len(s.Addresses))
	for i, a := range s.Addresses {
		a = repl.ReplaceKnown(a, "")
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("addresses[%d]: %q is not host:port", i, a)
		}
		addrs[i] = a
	}
	prefix := s.KeyPrefix
	if prefix == "" {
		prefix = defaultRedisKeyPrefix
	}
	var tlsCfg *tls.Config
	if s.TLS != nil {
		var err error
		if tlsCfg, err = s.TLS.config(repl); err != nil {
			return err
		}
	}
	uo := &redis.UniversalOptions{
		Addrs:        addrs,
		MasterName:   repl.ReplaceKnown(s.MasterName, ""),
		Username:     repl.ReplaceKnown(s.Username, ""),
		Password:     repl.ReplaceKnown(s.Password, ""),
		DB:           s.DB,
		TLSConfig:    tlsCfg,
		DialTimeout:  orDefault(s.DialTimeout, defaultRedisDialTimeout),
		ReadTimeout:  orDefault(s.ReadTimeout, defaultRedisReadTimeout),
		WriteTimeout: orDefault(s.WriteTimeout, defaultRedisWriteTimeout),
		// The handshake budget arrives as a context deadline; it must cut
		// socket reads short, or a hung Redis would stall handshakes.
		ContextTimeoutEnabled: true,
		// One retry covers a pooled connection that died with a restarted
		// server; the budget still bounds the whole call.
		MaxRetries: 1,
		// A refused dial is not retried inside one call: the handshake
		// would only wait longer, and the circuit breaker takes over.
		DialerRetries:   1,
		DisableIdentity: true,
	}
	client := redis.NewUniversalClient(uo)
	if s.logger == nil {
		s.logger = ctx.Logger()
	}
	s.logSink = &redisLogSink{logger: s.logger}
	client.AddHook(redisStreakHook{s.logSink})
	registerRedisLog(s.logSink)
	s.backend = &redisBackend{client: client, prefix: prefix}
	s.store = s.backend
	if !s.NoLocalCache {
		n := s.LocalCacheEntries
		if n <= 0 { // (negative: refused by Validate)
			n = DefaultRedisLocalCacheEntries
		}
		s.store = newCachedStore(s.backend, prefix+"invalidate", n)
	}
	return nil
}

// Validate checks the fields Provision does not need.
func (s *RedisStore) Validate() error {
	if s.LocalCacheEntries < 0 {
		return fmt.Errorf("local_cache_entries: must be positive, got %d", s.LocalCacheEntries)
	}
	if s.DB < 0 {
		return fmt.Errorf("db: must not be negative, got %d", s.DB)
	}
	if s.DB != 0 && len(s.Addresses) > 1 && s.MasterName == "" {
		return fmt.Errorf("db: %d is not available in Redis Cluster (several addresses without master_name)", s.DB)
	}
	for _, t := range []struct {
		name string
		d    caddy.Duration
	}{{"dial_timeout", s.DialTimeout}, {"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout}} {
		if t.d < 0 {
			return fmt.Errorf("%s: must be positive, got %s", t.name, time.Duration(t.d))
		}
		if time.Duration(t.d) > maxRedisTimeout {
			return fmt.Errorf("%s: %s exceeds %s: Redis on a network answers in milliseconds, and the handshake budget cuts every call far sooner", t.name, time.Duration(t.d), maxRedisTimeout)
		}
	}
	return nil
}

func orDefault(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

func (t *RedisTLS) config(repl *caddy.Replacer) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: repl.ReplaceKnown(t.ServerName, "")}
	if t.CAFile != "" {
		path := repl.ReplaceKnown(t.CAFile, "")
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", path)
		}
		cfg.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("tls.cert_file and tls.key_file: set both or neither")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(repl.ReplaceKnown(t.CertFile, ""), repl.ReplaceKnown(t.KeyFile, ""))
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/tls.key_file: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// UnmarshalJSON decodes the module's config; see unmarshalStore.
func (s *RedisStore) UnmarshalJSON(b []byte) error {
	type plain RedisStore
	return unmarshalStore("redis", b, (*plain)(s))
}

// Put stores a session (see redisBackend.Put and cachedStore.Put).
func (s *RedisStore) Put(ctx context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error {
	return s.store.Put(ctx, handle, sealed, leaf, ttl)
}

// Get returns a stored session or ErrMiss.
func (s *RedisStore) Get(ctx context.Context, handle []byte) ([]byte, error) {
	return s.store.Get(ctx, handle)
}

// Take returns a stored session and deletes it, or ErrMiss.
func (s *RedisStore) Take(ctx context.Context, handle []byte) ([]byte, error) {
	return s.store.Take(ctx, handle)
}

// RevokeLeaf deletes every session indexed under a client certificate.
func (s *RedisStore) RevokeLeaf(ctx context.Context, leaf [32]byte) (int, error) {
	return s.store.RevokeLeaf(ctx, leaf)
}

// InvalidateAll deletes every session under the key prefix.
func (s *RedisStore) InvalidateAll(ctx context.Context) error {
	return s.store.InvalidateAll(ctx)
}

// ClaimEarlyData reports whether this is the first 0-RTT use of a session
// across every node sharing this Redis.
func (s *RedisStore) ClaimEarlyData(ctx context.Context, handle []byte) (bool, error) {
	return s.store.ClaimEarlyData(ctx, handle)
}

// Close stops the local cache, if any, and closes the client's
// connections.
func (s *RedisStore) Close() error {
	if s.store == nil {
		return nil // never provisioned
	}
	err := s.store.Close()
	unregisterRedisLog(s.logSink)
	return err
}

// Cleanup closes the client when Caddy unloads the config.
func (s *RedisStore) Cleanup() error { return s.Close() }

// UnmarshalCaddyfile sets up the store from a session_store block.
// Syntax:
//
//	session_store redis {
//		address           <host:port...>
//		master_name       <name>
//		username          <user>
//		password          <password>
//		db                <n>
//		tls {
//			ca          <file>
//			cert        <file> <key file>
//			server_name <name>
//		}
//		key_prefix        <prefix>
//		local_cache_entries <n>
//		no_local_cache
//		dial_timeout      <duration>
//		read_timeout      <duration>
//		write_timeout     <duration>
//	}
//
// `address` may be repeated; a bare `tls` verifies Redis against the
// system roots. The block may also hold the app's session_store_policy
// options, which the tls_resume parser takes out before this one runs.
func (s *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyfilex.NewOptionSet("session_store redis: duplicate option %q").Repeatable("address")
	for d.NextBlock(0) {
		opt := d.Val()
		if err := seen.Once(d, opt); err != nil {
			return err
		}
		switch opt {
		case "address":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("session_store redis: address needs at least one host:port")
			}
			s.Addresses = append(s.Addresses, args...)
		case "master_name", "username", "password", "key_prefix":
			var val string
			if !d.AllArgs(&val) {
				return d.Errf("session_store redis: %s takes exactly one value", opt)
			}
			switch opt {
			case "master_name":
				s.MasterName = val
			case "username":
				s.Username = val
			case "password":
				s.Password = val
			case "key_prefix":
				s.KeyPrefix = val
			}
		case "local_cache_entries":
			n, err := caddyfilex.PositiveInt(d, "session_store redis", opt)
			if err != nil {
				return err
			}
			s.LocalCacheEntries = n
		case "no_local_cache":
			if d.NextArg() {
				return d.Errf("session_store redis: no_local_cache takes no value, got %q", d.Val())
			}
			s.NoLocalCache = true
		case "db":
			var val string
			if !d.AllArgs(&val) {
				return d.Errf("session_store redis: db takes exactly one number")
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return d.Errf("session_store redis: db: must be a non-negative integer, got %q", val)
			}
			s.DB = n
		case "dial_timeout", "read_timeout", "write_timeout":
			dur, err := caddyfilex.PositiveDuration(d, "session_store redis", opt)
			if err != nil {
				return err
			}
			switch opt {
			case "dial_timeout":
				s.DialTimeout = caddy.Duration(dur)
			case "read_timeout":
				s.ReadTimeout = caddy.Duration(dur)
			case "write_timeout":
				s.WriteTimeout = caddy.Duration(dur)
			}
		case "tls":
			s.TLS = new(RedisTLS)
			if d.NextArg() {
				return d.Errf("session_store redis: tls takes a block, not %q", d.Val())
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				sub := d.Val()
				switch sub {
				case "ca":
					if !d.AllArgs(&s.TLS.CAFile) {
						return d.Errf("session_store redis: tls ca takes exactly one file")
					}
				case "cert":
					if !d.AllArgs(&s.TLS.CertFile, &s.TLS.KeyFile) {
						return d.Errf("session_store redis: tls cert takes a certificate file and a key file")
					}
				case "server_name":
					if !d.AllArgs(&s.TLS.ServerName) {
						return d.Errf("session_store redis: tls server_name takes exactly one name")
					}
				default:
					return d.Errf("session_store redis: unknown tls option %q", sub)
				}
			}
		default:
			return d.Errf("session_store redis: unknown option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Module          = (*RedisStore)(nil)
	_ SessionStore          = (*RedisStore)(nil)
	_ json.Unmarshaler      = (*RedisStore)(nil)
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.Validator       = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
)
