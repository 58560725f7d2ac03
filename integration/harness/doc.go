// Package harness is the shared test harness of the integration module: free
// loopback ports, an in-process Caddy through caddytest with a private admin
// port per test process, a multi-process helper that builds cmd/caddy once
// and runs clusters of real Caddy processes over one shared storage
// directory, and real TLS clients (Go crypto/tls and openssl s_client) that
// report whether a session was resumed.
//
// Every integration test package imports it (and through it every module of
// the plugin). Test packages run as parallel processes, so nothing here uses
// a fixed port or a fixed directory: ports come from FreePort, per-test state
// lives in t.TempDir, and per-process state (the in-process Caddy's data
// directory, this process's copy of the Caddy binary) lives in
// integration/.build/proc/<pid>, which later runs delete once that process is
// gone.
//
// In-process (one Caddy per test process; such tests must not use
// t.Parallel):
//
//	set, files := harness.NewPKI(t)     // keys named *-key.pem: caddytest rewrites *.key paths
//	tester := harness.NewTester(t)
//	port := harness.FreePort(t)
//	tester.InitServer(caddyfile, "caddyfile") // admin, ports, persist_config off are added
//	resp, err := harness.Get(ctx, harness.Addr(port), harness.ClientConfig(set, set.ClientA, "localhost"), "/")
//
// Several Caddy processes sharing one storage directory:
//
//	c := harness.StartCluster(t, 3, func(n harness.NodeInfo) string {
//		return fmt.Sprintf("https://localhost:%d {\n\t...\n}\n", n.Port())
//	}, harness.WithEnv("TLS_RESUME_KEK="+kek))
//	c.Node(1).Kill()     // crash; Stop is graceful; Start/Restart bring it back on the same ports
//
// Resumption, as clients see it:
//
//	cfg := harness.ClientConfig(set, set.ClientA, "localhost") // one session cache per config
//	first, _ := harness.Handshake(ctx, addr, cfg)
//	second, _ := harness.Handshake(ctx, addr, cfg)              // second.DidResume
//	_, again, _ := harness.SClientResume(ctx, t, harness.SClientOptions{Addr: addr, CAFile: files.CA,
//		CertFile: files.ClientACert, KeyFile: files.ClientAKey, TLSVersion: "1.3"}) // again.Reused
package harness
