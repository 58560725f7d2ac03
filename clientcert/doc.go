// Package clientcert implements client-certificate identity policy: the
// client_cert HTTP request matcher and the tls.client_auth.verifier.client_cert
// handshake verifier, sharing one compiled policy.
package clientcert
