package tlsresume

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// BenchmarkHandshake measures mutual-TLS handshakes, full and resumed, for
// ECDSA P-256 and RSA-2048 chains over TLS 1.2 and 1.3, against two servers
// in the same run: a bare crypto/tls server using Go's own session tickets
// ("bare") and the same server with this plugin's hooks ("plugin").
// Client and server run over loopback TCP; the client side is
// identical for both servers, so the difference between "plugin/resumed"
// and "bare/resumed" is the plugin's added server-side cost.
//
//	go test ./tlsresume -run '^$' -bench Handshake -benchmem -count 6 | benchstat -
func BenchmarkHandshake(b *testing.B) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048} {
		set, err := pki.NewSet(kt)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, server := range []string{"bare", "plugin"} {
				cfg := benchServerConfig(b, set, v, server == "plugin")
				for _, mode := range []string{"full", "resumed"} {
					name := kt.String() + "/" + versionShort(v) + "/" + server + "/" + mode
					b.Run(name, func(b *testing.B) {
						cache := tls.NewLRUClientSessionCache(4)
						client := clientConfig(set, set.ClientA, cache)
						if mode == "full" {
							client.ClientSessionCache = nil
						} else if resumed := handshakeOnce(b, cfg, client); resumed {
							b.Fatal("priming handshake resumed")
						}
						b.ReportAllocs()
						b.ResetTimer()
						cpu0 := processCPU()
						for range b.N {
							resumed := handshakeOnce(b, cfg, client)
							if resumed != (mode == "resumed") {
								b.Fatalf("resumed=%v in %s mode", resumed, mode)
							}
						}
						// CPU time (client and server together) is steadier
						// than wall time on a busy machine.
						b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
					})
				}
			}
		}
	}
}

// BenchmarkTicketHooks isolates the per-resumption work: sealing a ticket
// (WrapSession) and opening it (UnwrapSession), plugin vs Go's own ticket
// encryption, on a real mTLS session state.
func BenchmarkTicketHooks(b *testing.B) {
	ss := realSessionState(b)
	r, _ := testRing(b)
	holder := new(keyring.Holder)
	holder.Store(r)
	pb := &policyBinding{ticketBinding: *testBinding(1, false), rings: holder, now: func() time.Time { return t0 }}
	cs := tls.ConnectionState{ServerName: "api.example.com"}
	bare := &tls.Config{}

	b.Run("plugin", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			t, _ := pb.wrapSession(cs, ss)
			if got, _ := pb.unwrapSession(t, cs); got == nil {
				b.Fatal("did not open")
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			t, err := bare.EncryptTicket(cs, ss)
			if err != nil {
				b.Fatal(err)
			}
			if got, _ := bare.DecryptTicket(t, cs); got == nil {
				b.Fatal("did not open")
			}
		}
	})
}

func versionShort(v uint16) string {
	if v == tls.VersionTLS12 {
		return "tls12"
	}
	return "tls13"
}

func benchServerConfig(b *testing.B, set *pki.Set, v uint16, plugin bool) *tls.Config {
	cfg := &tls.Config{
		Certificates: []tls.Certificate{set.Server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    set.Root.Pool(),
		MinVersion:   v,
		MaxVersion:   v,
	}
	// Both servers get the VerifyConnection Caddy installs on every
	// client-auth policy (it runs the verifier modules; none here), so the
	// plugin's checks before a ticket is accepted are measured as in Caddy.
	clientAuth := &caddytls.ClientAuthentication{Mode: "require_and_verify"}
	if err := clientAuth.ConfigureTLSConfig(cfg); err != nil {
		b.Fatal(err)
	}
	if plugin {
		r, _ := testRing(b)
		holder := new(keyring.Holder)
		holder.Store(r)
		pol := &caddytls.ConnectionPolicy{
			TLSConfig:            cfg,
			ClientAuthentication: clientAuth,
		}
		pb := bindPolicy(pol, "bench", holder, bindOptions{lifetime: 10 * time.Minute})
		pb.now = func() time.Time { return t0.Add(time.Minute) }
	}
	return cfg
}

// handshakeOnce runs one client/server handshake over a loopback TCP
// connection, lets the client read the TLS 1.3 tickets, and reports whether
// it resumed. (An in-memory net.Pipe would deadlock: it does not buffer, and
// a TLS 1.3 server writes its ticket while the client writes Finished.)
func handshakeOnce(b *testing.B, serverCfg, clientCfg *tls.Config) bool {
	ln := benchListener(b)
	errc := make(chan error, 1)
	var resumed bool
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		resumed = c.ConnectionState().DidResume
		var buf [1]byte
		_, err = c.Read(buf[:])
		errc <- err
	}()
	raw, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	s := tls.Server(raw, serverCfg)
	if err := s.Handshake(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Write([]byte{1}); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return resumed
}

var benchListeners = map[*testing.B]net.Listener{}

// benchListener returns one loopback listener per benchmark.
func benchListener(b *testing.B) net.Listener {
	if ln, ok := benchListeners[b]; ok {
		return ln
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	benchListeners[b] = ln
	b.Cleanup(func() { ln.Close(); delete(benchListeners, b) })
	return ln
}
