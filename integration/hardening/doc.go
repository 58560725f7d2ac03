// Package hardening tests, end to end, the four holes of issue 14 and their
// fixes, the way an attacker would try them: real Caddy (in process through
// the harness, and as OS processes restarted over damaged storage), quic-go
// HTTP/3 clients sending requests in 0-RTT, Go TLS clients over TCP, and a
// real redis-server.
//
//   - checks before a ticket is accepted: a revoked client, a client a
//     reloaded verifier excludes, and a client another host refuses get
//     neither early data executed nor a new ticket (zerortt_test.go);
//   - revocations that cannot be erased: garbage in the ring file, the
//     storage directory deleted, an older authentic ring put back, on a
//     running node and across a restart (storage_attack_test.go);
//   - an absolute authentication age: ticket_lifetime forces a full
//     handshake however often a client resumes (lifetime_test.go);
//   - 0-RTT only where it cannot be replayed (replay_test.go);
//   - configuration that must fail at load (config_test.go).
package hardening
