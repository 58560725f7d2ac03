// Package clientcert implements client-certificate identity policy: the
// `client_cert` HTTP request matcher (http.matchers.client_cert) and the
// `client_cert` TLS handshake verifier (tls.client_auth.verifier.client_cert),
// sharing one compiled policy.
//
// # Caddyfile
//
// As a named matcher (or one-line: `@web client_cert spiffe_id spiffe://…`):
//
//	@payments client_cert {
//		spiffe_id spiffe://prod.example.org/ns/payments/*
//		issuer    "CN=Payments Issuing CA" O=Example
//		min_remaining_validity 7d
//	}
//
// In a CEL expression:
//
//	@web expression client_cert({'spiffe_id': 'spiffe://prod.example.org/ns/web/*'})
//
// As a verifier, so that non-matching clients never complete the handshake:
//
//	tls {
//		client_auth {
//			mode require_and_verify
//			trust_pool file /etc/caddy/clients-ca.pem
//			verifier client_cert {
//				spiffe_id spiffe://prod.example.org/*
//			}
//		}
//	}
//
// # Fields
//
// subject, issuer: distinguished-name patterns. On a Caddyfile line the
// arguments are the terms of one pattern (all must hold), e.g.
// `subject CN=api-* O=Example`; repeat the line for alternatives. In JSON and
// CEL each string is one pattern with comma-separated terms,
// "CN=api-*, O=Example". Attribute types: CN, O, OU, C, L, ST, STREET,
// POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS, TITLE, GIVENNAME, SURNAME
// (any case) or a dotted OID. Values are globs compared case-sensitively with
// the parsed attribute values; `\,` is a literal comma.
//
// san_dns (case-insensitive; `*` stays within one DNS label), san_uri,
// san_email: globs. san_ip: CIDR prefixes or addresses. spiffe_id:
// `spiffe://<exact trust domain>[/<path glob>]`, where `*` in the path also
// spans `/`. fingerprint: SHA-256 of the leaf's DER, hex in any case,
// colons and spaces ignored. serial: decimal, 0x-hex, or colon-separated
// hex pairs, optionally negative (the spellings of the revoke admin API;
// see internal/certid). min_remaining_validity: a Caddy duration. allow_unverified:
// also consider certificates the handshake did not verify (off by default).
//
// Globs: `*` any run of characters, `?` one character, `\` escapes.
//
// # Semantics
//
// Values of one field are alternatives; all fields given must match; no
// client certificate means no match (and, for the verifier, no
// connection). Only the leaf certificate is examined. By default only a
// certificate the TLS handshake verified against the connection policy's
// trust pool is considered.
//
// A certificate's SPIFFE ID is its URI SAN, parsed per the SPIFFE ID
// specification (scheme `spiffe`, lower-case trust domain of [a-z0-9.-_],
// path segments of [a-zA-Z0-9.-_] that are not empty, `.` or `..`; no port,
// user info, query or fragment; at most 2048 bytes). Following the X509-SVID
// specification a certificate with more than one URI SAN has no SPIFFE ID.
//
// Every value is compiled at provision time (and while parsing the
// Caddyfile); a mistake is an error naming the field and the value.
// Matching allocates nothing.
package clientcert
