// Package keyring is the fleet's ticket-key ring: the document every node
// shares (document.go), sealed under the key-encryption key (kek.go,
// seal.go) and kept in CertMagic storage (store.go); the pure rules of its
// key schedule (schedule.go); the immutable snapshot handshakes read
// (snapshot.go); and the synchroniser that keeps a node's snapshot in step
// with storage, rotates under the storage lock, and never lets damaged
// storage lift a revocation or roll the ring back (sync.go,
// revocations.go, local.go).
//
// It knows nothing of TLS handshakes and, beyond resolving placeholders in
// a configured KEK, of Caddy's configuration: the tls_resume app (package
// tlsresume) builds a Sync from its config and seals tickets with the
// snapshot's keys.
package keyring
