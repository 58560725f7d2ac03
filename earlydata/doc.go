// Package earlydata implements the early_data_guard HTTP handler, which
// answers 425 Too Early (RFC 8470) to requests received in TLS or QUIC early
// data whose method is not safe to replay.
package earlydata
