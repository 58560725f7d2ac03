// Package harness is the shared test harness of the integration module: free
// loopback ports, an in-process Caddy through caddytest with a private admin
// port per test process, a multi-process helper that builds cmd/caddy once
// and runs clusters of real Caddy processes over one shared storage
// directory, and real TLS clients (Go crypto/tls and openssl s_client) that
// report whether a session was resumed.
//
// Every integration test package imports it. Test packages run as parallel
// processes, so nothing here uses a fixed port or a fixed directory: ports
// come from FreePort, per-test state lives in t.TempDir, and per-process state
// (the in-process Caddy's data directory, this process's copy of the Caddy
// binary) lives in integration/.build/proc/<pid>, which later runs delete once
// that process is gone.
package harness
