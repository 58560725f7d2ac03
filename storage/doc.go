// Package storage provides the session-store modules of the tls_resume app
// (tls_resume.session_stores.memory and .redis) behind one interface,
// SessionStore, including each store's 0-RTT claim. How handshakes use a
// store (budget, fallback, circuit breaker) is the app's.
package storage
