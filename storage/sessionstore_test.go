package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"

	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

func newHandle(t testing.TB) []byte {
	t.Helper()
	h := make([]byte, 32)
	if _, err := rand.Read(h); err != nil {
		t.Fatal(err)
	}
	return h
}

func newRedisStore(t testing.TB, srv *testredis.Server, mod func(*RedisStore)) *RedisStore {
	t.Helper()
	s := &RedisStore{Addresses: []string{srv.Addr}}
	if mod != nil {
		mod(s)
	}
	s, err := provisionRedisStore(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stores returns a fresh memory store and a fresh Redis store (on a real
// redis-server) for the conformance tests.
func stores(t *testing.T) map[string]SessionStore {
	srv := testredis.Must(t)
	cluster := startCluster(t)
	// Without the local cache, every operation crosses the cluster's
	// slots (hash tags keep a session and its 0-RTT claim together).
	cs, err := provisionRedisStore(&RedisStore{Addresses: []string{cluster[0].Addr, cluster[1].Addr, cluster[2].Addr}, NoLocalCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return map[string]SessionStore{
		"memory":        newMemoryStore(1000),
		"redis":         newRedisStore(t, srv, nil),
		"redis-nocache": newRedisStore(t, srv, func(s *RedisStore) { s.NoLocalCache = true; s.KeyPrefix = "nc:" }),
		"redis-cluster": cs,
	}
}

// startCluster runs a three-master Redis Cluster on loopback, slots split
// evenly, set up with CLUSTER ADDSLOTSRANGE and MEET.
func startCluster(t *testing.T) []*testredis.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []*testredis.Server
	var buses []int
	for i := range 3 {
		bus, err := testredis.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, bus)
		nodes = append(nodes, testredis.Must(t, "--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--cluster-port", fmt.Sprint(bus), "--cluster-node-timeout", "2000"))
	}
	var clients []*redis.Client
	for i, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes[1:] {
		// The bus port is not port+10000 here, so MEET names it.
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.Port, buses[i+1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitForD(t, 15*time.Second, func() error {
		for i, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return fmt.Errorf("node %d: cluster not ready: %s", i, info)
			}
		}
		return nil
	})
	return nodes
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSessionStoreConformance(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			leafA, leafB := [32]byte{1}, [32]byte{2}

			t.Run("PutGet", func(t *testing.T) {
				h := newHandle(t)
				if _, err := s.Get(ctx, h); !errors.Is(err, ErrMiss) {
					t.Fatalf("Get of unknown handle: %v, want ErrMiss", err)
				}
				// (Its own client: RevokeLeaf below counts leafA's.)
				if err := s.Put(ctx, h, []byte("sealed"), [32]byte{3}, time.Minute); err != nil {
					t.Fatal(err)
				}
				for range 2 {
					got, err := s.Get(ctx, h)
					if err != nil || string(got) != "sealed" {
						t.Fatalf("Get = %q, %v", got, err)
					}
				}
			})

			t.Run("Expiry", func(t *testing.T) {
				h := newHandle(t)
				if err := s.Put(ctx, h, []byte("x"), leafA, 150*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(ctx, h); err != nil {
					t.Fatalf("fresh session: %v", err)
				}
				time.Sleep(300 * time.Millisecond)
				if _, err := s.Get(ctx, h); !errors.Is(err, ErrMiss) {
					t.Fatalf("expired session: %v, want ErrMiss", err)
				}
			})

			t.Run("TakeOnce", func(t *testing.T) {
				h := newHandle(t)
				if err := s.Put(ctx, h, []byte("once"), [32]byte{}, time.Minute); err != nil {
					t.Fatal(err)
				}
				if got, err := s.Take(ctx, h); err != nil || string(got) != "once" {
					t.Fatalf("first Take = %q, %v", got, err)
				}
				if _, err := s.Take(ctx, h); !errors.Is(err, ErrMiss) {
					t.Fatalf("second Take: %v, want ErrMiss", err)
				}
			})

			t.Run("RevokeLeaf", func(t *testing.T) {
				a1, a2, b1 := newHandle(t), newHandle(t), newHandle(t)
				for _, p := range []struct {
					h    []byte
					leaf [32]byte
				}{{a1, leafA}, {a2, leafA}, {b1, leafB}} {
					if err := s.Put(ctx, p.h, []byte("x"), p.leaf, time.Minute); err != nil {
						t.Fatal(err)
					}
				}
				n, err := s.RevokeLeaf(ctx, leafA)
				if err != nil || n != 2 {
					t.Fatalf("RevokeLeaf = %d, %v; want 2", n, err)
				}
				for _, h := range [][]byte{a1, a2} {
					if _, err := s.Get(ctx, h); !errors.Is(err, ErrMiss) {
						t.Fatalf("revoked session: %v, want ErrMiss", err)
					}
				}
				if _, err := s.Get(ctx, b1); err != nil {
					t.Fatalf("other client's session: %v", err)
				}
				if n, err := s.RevokeLeaf(ctx, leafA); err != nil || n != 0 {
					t.Fatalf("second RevokeLeaf = %d, %v; want 0", n, err)
				}
				// The zero fingerprint (no client certificate) revokes
				// nothing.
				if n, err := s.RevokeLeaf(ctx, [32]byte{}); err != nil || n != 0 {
					t.Fatalf("RevokeLeaf(zero) = %d, %v", n, err)
				}
			})

			t.Run("ClaimEarlyDataOnce", func(t *testing.T) {
				h := newHandle(t)
				if first, err := s.ClaimEarlyData(ctx, h); err != nil || first {
					t.Fatalf("claim of a missing session = %v, %v; want false", first, err)
				}
				if err := s.Put(ctx, h, []byte("x"), leafA, time.Minute); err != nil {
					t.Fatal(err)
				}
				if first, err := s.ClaimEarlyData(ctx, h); err != nil || !first {
					t.Fatalf("first claim = %v, %v", first, err)
				}
				for range 3 {
					if first, err := s.ClaimEarlyData(ctx, h); err != nil || first {
						t.Fatalf("replayed claim = %v, %v; want false", first, err)
					}
				}
				// The session itself still resumes.
				if _, err := s.Get(ctx, h); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("InvalidateAll", func(t *testing.T) {
				hs := [][]byte{newHandle(t), newHandle(t), newHandle(t)}
				for _, h := range hs {
					if err := s.Put(ctx, h, []byte("x"), leafB, time.Minute); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.InvalidateAll(ctx); err != nil {
					t.Fatal(err)
				}
				for _, h := range hs {
					if _, err := s.Get(ctx, h); !errors.Is(err, ErrMiss) {
						t.Fatalf("session after InvalidateAll: %v", err)
					}
				}
				// The store keeps working.
				h := newHandle(t)
				if err := s.Put(ctx, h, []byte("y"), leafB, time.Minute); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(ctx, h); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestMemoryStoreBounded(t *testing.T) {
	ctx := context.Background()
	s := newMemoryStore(3)
	hs := make([][]byte, 5)
	for i := range hs {
		hs[i] = []byte{byte(i)}
		if i == 3 {
			// Touch 0 so that 1 is the least recently used.
			if _, err := s.Get(ctx, hs[0]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Put(ctx, hs[i], []byte{byte(i)}, [32]byte{9}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.lru.Len(); n != 3 {
		t.Fatalf("%d sessions held, want 3", n)
	}
	for i, want := range []bool{true, false, false, true, true} {
		_, err := s.Get(ctx, hs[i])
		if got := err == nil; got != want {
			t.Errorf("session %d present = %v, want %v", i, got, want)
		}
	}
	// Evicted sessions left the leaf index too.
	if n, _ := s.RevokeLeaf(ctx, [32]byte{9}); n != 3 {
		t.Errorf("RevokeLeaf after evictions = %d, want 3", n)
	}
}

func TestRedisStoreKeyPrefixIsolates(t *testing.T) {
	srv := testredis.Must(t)
	ctx := ctxT(t)
	a := newRedisStore(t, srv, func(s *RedisStore) { s.KeyPrefix = "fleet-a:" })
	b := newRedisStore(t, srv, func(s *RedisStore) { s.KeyPrefix = "fleet-b:" })
	h := newHandle(t)
	if err := a.Put(ctx, h, []byte("a"), [32]byte{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, h, []byte("b"), [32]byte{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, h); err != nil || string(got) != "b" {
		t.Fatalf("other prefix after InvalidateAll = %q, %v", got, err)
	}
	// Keys carry the prefix; the stored value is what the caller sealed.
	keys, err := a.backend.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "fleet-b:") {
			t.Errorf("unexpected key %q", k)
		}
	}
}

func TestRedisStoreACL(t *testing.T) {
	srv := testredis.Must(t, "--requirepass", "s3cret")
	ctx := ctxT(t)
	// Default user with requirepass, and an ACL user.
	admin := newRedisStore(t, srv, func(s *RedisStore) { s.Password = "s3cret" })
	if err := admin.backend.client.Do(ctx, "ACL", "SETUSER", "edge", "on", ">edgepw", "~tls_resume:*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	h := newHandle(t)
	user := newRedisStore(t, srv, func(s *RedisStore) { s.Username = "edge"; s.Password = "edgepw" })
	if err := user.Put(ctx, h, []byte("x"), [32]byte{3}, time.Minute); err != nil {
		t.Fatalf("ACL user Put: %v", err)
	}
	if _, err := admin.Get(ctx, h); err != nil {
		t.Fatal(err)
	}
	wrong := newRedisStore(t, srv, func(s *RedisStore) { s.Username = "edge"; s.Password = "nope" })
	if _, err := wrong.Get(ctx, h); err == nil || errors.Is(err, ErrMiss) {
		t.Fatalf("wrong password: %v, want an authentication error", err)
	}
}

// TestRedisStoreFaultsBoundedByBudget: a hung Redis (SIGSTOP) costs each
// call its budget and no more, a killed one fails at once, and the store
// recovers by itself when Redis comes back.
func TestRedisStoreFaultsBoundedByBudget(t *testing.T) {
	srv := testredis.Must(t)
	// Socket timeouts far beyond the budget: only the budget can bound
	// the calls below.
	s := newRedisStore(t, srv, func(s *RedisStore) {
		s.NoLocalCache = true // every call goes to Redis
		s.DialTimeout = caddy.Duration(10 * time.Second)
		s.ReadTimeout = caddy.Duration(10 * time.Second)
		s.WriteTimeout = caddy.Duration(10 * time.Second)
	})
	h := newHandle(t)
	if err := s.Put(ctxT(t), h, []byte("x"), [32]byte{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	const budget = 50 * time.Millisecond
	call := func(op string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start := time.Now()
		var err error
		switch op {
		case "get":
			_, err = s.Get(ctx, h)
		case "put":
			err = s.Put(ctx, newHandle(t), []byte("y"), [32]byte{1}, time.Minute)
		case "claim":
			_, err = s.ClaimEarlyData(ctx, h)
		}
		return time.Since(start), err
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		for _, op := range []string{"get", "put", "claim"} {
			took, err := call(op)
			if err == nil {
				t.Fatalf("%s #%d succeeded against a paused Redis", op, i)
			}
			// The budget plus scheduling slack on a loaded machine; the
			// 10s socket timeouts would exceed it.
			if took > budget+time.Second {
				t.Errorf("%s #%d against a paused Redis took %v, budget %v", op, i, took, budget)
			}
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error { _, err := call("get"); return err })

	srv.Kill()
	for _, op := range []string{"get", "put"} {
		took, err := call(op)
		if err == nil {
			t.Fatalf("%s succeeded against a killed Redis", op)
		}
		if took > budget+time.Second {
			t.Errorf("%s against a killed Redis took %v", op, took)
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted server is empty (no persistence): a miss, not an error.
	waitFor(t, func() error {
		_, err := call("get")
		if errors.Is(err, ErrMiss) {
			return nil
		}
		return fmt.Errorf("get after restart: %v", err)
	})
	if _, err := call("put"); err != nil {
		t.Fatalf("put after restart: %v", err)
	}
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	waitForD(t, 5*time.Second, f)
}

func waitForD(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("did not happen within %v: %v", d, err)
}

func TestRedisStoreProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		s    RedisStore
		want string
	}{
		{RedisStore{}, "addresses:"},
		{RedisStore{Addresses: []string{"localhost"}}, `addresses[0]: "localhost"`},
		{RedisStore{Addresses: []string{"a:1", ":2"}}, "addresses[1]"},
		{RedisStore{Addresses: []string{"a:1"}, DB: -1}, "db:"},
		{RedisStore{Addresses: []string{"a:1"}, LocalCacheEntries: -1}, "local_cache_entries:"},
		{RedisStore{Addresses: []string{"a:1", "b:2"}, DB: 2}, "db: 2"},
		{RedisStore{Addresses: []string{"a:1"}, DialTimeout: -1}, "dial_timeout:"},
		{RedisStore{Addresses: []string{"a:1"}, TLS: &RedisTLS{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file:"},
		{RedisStore{Addresses: []string{"a:1"}, TLS: &RedisTLS{CertFile: "c.pem"}}, "tls.cert_file and tls.key_file"},
	} {
		s := tc.s
		_, err := provisionRedisStore(&s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.s, err, tc.want)
		}
	}
	s, err := provisionRedisStore(&RedisStore{Addresses: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	defer s.Close()
}

func TestSessionStoreCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input string
		want  string // JSON-ish check via fmt of the struct, or error substring
		err   bool
	}{
		{`redis {
			address 10.0.0.1:6379 10.0.0.2:6379
			address 10.0.0.3:6379
			master_name mymaster
			username edge
			password {env.REDIS_PW}
			db 2
			tls {
				ca /etc/ca.pem
				cert /etc/c.pem /etc/c.key
				server_name redis.internal
			}
			key_prefix fleet1:
			local_cache_entries 500
			no_local_cache
			dial_timeout 2s
			read_timeout 100ms
			write_timeout 100ms
		}`, "", false},
		{`redis {
			address
		}`, "address needs at least one", true},
		// The app's policy options are the tls_resume parser's (see
		// tlsresume's TestSessionStoreCaddyfileErrors).
		{`redis {
			budget 30ms
		}`, `unknown option "budget"`, true},
		{`redis {
			db x
		}`, `db: must be a non-negative integer, got "x"`, true},
		{`redis {
			tls {
				cert only-cert
			}
		}`, "tls cert takes a certificate file and a key file", true},
		{`redis {
			key_prefix a:
			key_prefix b:
		}`, `duplicate option "key_prefix"`, true},
		{`redis {
			sentinel x
		}`, `unknown option "sentinel"`, true},
		{`redis {
			local_cache_entries -2
		}`, `local_cache_entries: must be a positive integer, got "-2"`, true},
		{`redis extra`, "", true},
		{`memory {
			max_entries 0
		}`, `max_entries: must be a positive integer, got "0"`, true},
		{`memory {
			max_entries 10
		}`, "", false},
		{`memory {
			address a:1
		}`, `unknown option "address"`, true},
	} {
		d := caddyfile.NewTestDispenser(tc.input)
		var err error
		var got any
		if strings.HasPrefix(tc.input, "redis") {
			s := new(RedisStore)
			err, got = s.UnmarshalCaddyfile(d), s
		} else {
			s := new(MemoryStore)
			err, got = s.UnmarshalCaddyfile(d), s
		}
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: error %v, want %q", tc.input, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.input, err)
			continue
		}
		switch s := got.(type) {
		case *RedisStore:
			want := RedisStore{
				Addresses:  []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
				MasterName: "mymaster", Username: "edge", Password: "{env.REDIS_PW}", DB: 2,
				TLS:       &RedisTLS{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/c.key", ServerName: "redis.internal"},
				KeyPrefix: "fleet1:", LocalCacheEntries: 500, NoLocalCache: true, DialTimeout: caddyDur("2s"), ReadTimeout: caddyDur("100ms"), WriteTimeout: caddyDur("100ms"),
			}
			gotJSON, _ := json.Marshal(s)
			wantJSON, _ := json.Marshal(&want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("parsed\n%s\nwant\n%s", gotJSON, wantJSON)
			}
		case *MemoryStore:
			if s.MaxEntries != 10 {
				t.Errorf("parsed %+v", *s)
			}
		}
	}
}

// FuzzSessionStoreCaddyfile: no session_store block crashes the parsers.
func FuzzSessionStoreCaddyfile(f *testing.F) {
	f.Add("redis {\n address a:1\n budget 10ms\n tls {\n ca x\n }\n}")
	f.Add("memory {\n max_entries 5\n single_use\n}")
	f.Add("redis {\n fallback\n db -1\n}")
	// Found by make fuzz: NewTestDispenser calls log.Fatalf on text that
	// does not tokenize, which killed the fuzz worker.
	f.Add("<<000000000\x91\x00|u^)e\xc5_\n\x94\x96\xbf\xd9~\x18\x98A0\x17x\xca\xfb\xc1\xa6\x98\x014f\xdd0000000")
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "fuzz")
		if err != nil {
			return // the lexer refuses it before any parser sees it
		}
		for _, s := range []interface {
			UnmarshalCaddyfile(*caddyfile.Dispenser) error
		}{new(RedisStore), new(MemoryStore)} {
			_ = s.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
		}
	})
}

func caddyDur(s string) caddy.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return caddy.Duration(d)
}

// TestRedisStoreSentinel: through a Sentinel the store finds the master,
// and after the master dies and Sentinel promotes the replica, the store
// follows it by itself.
func TestRedisStoreSentinel(t *testing.T) {
	// No diskless-sync delay: the replica syncs at once, not after 5s.
	master := testredis.Must(t, "--repl-diskless-sync-delay", "0")
	replica := testredis.Must(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))
	sentinel := testredis.MustSentinel(t, "tlsmaster", master, 500)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr})
	defer sc.Close()
	// No local cache: every call below must reach the current master.
	s := newRedisStore(t, sentinel, func(s *RedisStore) { s.MasterName = "tlsmaster"; s.NoLocalCache = true })
	ctx := ctxT(t)
	h := newHandle(t)
	if err := s.Put(ctx, h, []byte("via sentinel"), [32]byte{7}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The session is on the master (and replicated).
	direct := newRedisStore(t, master, nil)
	if got, err := direct.Get(ctx, h); err != nil || string(got) != "via sentinel" {
		t.Fatalf("master holds %q, %v", got, err)
	}
	onReplica := newRedisStore(t, replica, nil)
	waitFor(t, func() error { _, err := onReplica.Get(ctx, h); return err })
	// Sentinel must know the replica before the master dies, or it has
	// nothing to promote.
	waitFor(t, func() error {
		r, err := sc.Replicas(ctx, "tlsmaster").Result()
		if err == nil && len(r) == 0 {
			err = errors.New("sentinel knows no replica yet")
		}
		return err
	})

	master.Kill()
	// Sentinel promotes the replica; the store reconnects to it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		got, err := s.Get(c, h)
		cancel()
		if err == nil && string(got) == "via sentinel" {
			if err := s.Put(ctxT(t), newHandle(t), []byte("after failover"), [32]byte{7}, time.Minute); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not follow the failover: %v\nsentinel log:\n%s", err, sentinel.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Sentinel may still be settling the switch; the first RevokeLeaf
	// that reaches the master must find both sessions.
	n := -1
	waitFor(t, func() error {
		var err error
		n, err = s.RevokeLeaf(ctxT(t), [32]byte{7})
		return err
	})
	if n != 2 {
		t.Fatalf("RevokeLeaf on the promoted master = %d; want 2", n)
	}
}

// TestRedisStoreCloseLeaksNothing: after Close (Caddy's Cleanup) the store
// holds no Redis connection and no goroutine, even after faults.
func TestRedisStoreCloseLeaksNothing(t *testing.T) {
	srv := testredis.Must(t)
	admin := newRedisStore(t, srv, nil)
	ctx := ctxT(t)
	clients := func() int {
		n, err := admin.backend.client.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(n, "\n")
	}
	baseClients := clients()
	baseGoroutines := runtime.NumGoroutine()

	for range 3 {
		s, err := provisionRedisStore(&RedisStore{Addresses: []string{srv.Addr}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := newHandle(t)
				_ = s.Put(ctx, h, []byte("x"), [32]byte{5}, time.Minute)
				_, _ = s.Get(ctx, h)
				_, _ = s.ClaimEarlyData(ctx, h)
			}()
		}
		wg.Wait()
		// A call cut short by its budget discards its connection.
		short, cancel := context.WithTimeout(ctx, time.Nanosecond)
		_, _ = s.Get(short, newHandle(t))
		cancel()
		if clients() <= baseClients {
			t.Fatal("the store opened no connection")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	waitFor(t, func() error {
		if c, g := clients(), runtime.NumGoroutine(); c != baseClients || g > baseGoroutines {
			return fmt.Errorf("%d Redis clients (want %d), %d goroutines (want at most %d)", c, baseClients, g, baseGoroutines)
		}
		return nil
	})
}

// TestRedisStoreLocalCache: each node serves sessions it stored or read
// from memory (even while Redis hangs), and revocations, takes and
// invalidations announced by one node empty the others' caches;
// a node that lost its subscription starts over with an empty cache.
func TestRedisStoreLocalCache(t *testing.T) {
	srv := testredis.Must(t)
	a := newRedisStore(t, srv, nil)
	b := newRedisStore(t, srv, nil)
	for _, s := range []*RedisStore{a, b} {
		waitSynced(t, s)
	}
	ctx := ctxT(t)
	leaf := [32]byte{4}
	put := func(h []byte) {
		t.Helper()
		if err := a.Put(ctx, h, []byte("x"), leaf, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, h); err != nil { // now cached on b
			t.Fatal(err)
		}
	}
	missOnB := func(h []byte) func() error {
		return func() error {
			if _, err := b.Get(ctx, h); !errors.Is(err, ErrMiss) {
				return fmt.Errorf("b.Get = %v, want ErrMiss", err)
			}
			return nil
		}
	}

	h := newHandle(t)
	put(h)
	// Redis hangs: both nodes still serve the session from memory.
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*RedisStore{a, b} {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := s.Get(short, h)
		cancel()
		if err != nil {
			t.Errorf("cached session while Redis hangs: %v", err)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}

	if _, err := a.Take(ctx, h); err != nil {
		t.Fatal(err)
	}
	waitFor(t, missOnB(h))

	h = newHandle(t)
	put(h)
	if n, err := a.RevokeLeaf(ctx, leaf); err != nil || n != 1 {
		t.Fatalf("RevokeLeaf = %d, %v", n, err)
	}
	waitFor(t, missOnB(h))

	h = newHandle(t)
	put(h)
	if err := a.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, missOnB(h))

	// Redis restarts empty; b only serves from memory what it can trust:
	// once its subscription is back, the cache is empty.
	h = newHandle(t)
	put(h)
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitForD(t, 15*time.Second, missOnB(h))
}

// BenchmarkRedisStoreGet: a session read from the in-process cache versus
// a round trip to Redis on loopback.
func BenchmarkRedisStoreGet(b *testing.B) {
	srv := testredis.Must(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		noCache bool
	}{{"local_cache_hit", false}, {"redis_round_trip", true}} {
		s := newRedisStore(b, srv, func(s *RedisStore) { s.NoLocalCache = tc.noCache })
		h := newHandle(b)
		if err := s.Put(ctx, h, bytes.Repeat([]byte{1}, 300), [32]byte{1}, time.Minute); err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := s.Get(ctx, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
