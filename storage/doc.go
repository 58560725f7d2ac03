// Package storage persists the ticket-key ring in CertMagic storage (sealed
// under a key-encryption key) and provides the session stores (memory, Redis)
// and the 0-RTT strike register.
package storage
