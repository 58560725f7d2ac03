package tlsresume

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// What the handshake metrics measure, per policy binding:
//
//   - handshake_duration_seconds spans, on the server, from the first
//     callback Go makes for the handshake on this policy's configuration
//     (UnwrapSession when the client offers a ticket, else GetCertificate;
//     both right after the ClientHello is read and the policy chosen) to
//     VerifyConnection accepting the client. It includes the wait for the
//     client's second flight on full handshakes with client certificates,
//     and excludes reading the ClientHello and the client's final
//     Finished. Handshakes are told apart by their SNI string (see
//     conntable.go), so handshakes without SNI are not timed; refused and
//     abandoned ones are not observed (abandoned entries expire).
//   - verify_duration_seconds spans the client-authentication checks alone:
//     the policy's own verification (every client_auth verifier module) and
//     the deny list, in VerifyConnection on full handshakes and in
//     UnwrapSession (admit) before a resumption's ticket is accepted.
//   - handshake_refusals_total counts each refused handshake once: when a
//     resumption is refused before its ticket is accepted, the full
//     handshake that follows is the same handshake and is not counted again.
type handshakeObs struct {
	server string
	// conns[sni] is the handshake in progress (see handshakeTrack).
	conns connTable[handshakeTrack]

	// Resolved once: observing is lock-free and allocation-free.
	duration [2][2]prometheus.Observer // [resumed][mutual]
	verify   [2]prometheus.Observer    // [resumed]
	refusals [numRefusals]prometheus.Counter
	// refusedCounts counts the same refusals for the app's status
	// (Status).
	refusedCounts [numRefusals]atomic.Uint64
}

type handshakeTrack struct {
	start   time.Time // with its monotonic reading
	refused bool      // already counted as refused
}

// refusal is why the plugin refused a client.
type refusal uint8

const (
	refusedRevoked refusal = iota
	refusedVerifier
	numRefusals
)

var refusalReasons = [numRefusals]string{refusedRevoked: "revoked", refusedVerifier: "verifier"}

func newHandshakeObs(server string) *handshakeObs {
	o := &handshakeObs{server: server}
	for r := range 2 {
		o.verify[r] = metrics.VerifyDuration.WithLabelValues(server, metrics.Bool(r == 1))
		for m := range 2 {
			o.duration[r][m] = metrics.HandshakeDuration.WithLabelValues(server, metrics.Bool(r == 1), metrics.Bool(m == 1))
		}
	}
	for i := range numRefusals {
		o.refusals[i] = metrics.HandshakeRefusals.WithLabelValues(server, refusalReasons[i])
	}
	return o
}

// sniKey identifies a handshake by the address of its SNI string, which Go
// allocates once per ClientHello and hands to every callback. unsafe is
// only used to read that address; nothing is dereferenced.
func sniKey(sni string) uintptr {
	if len(sni) < 2 {
		// Go does not allocate one-byte strings (they share a static
		// table), so their address names no handshake.
		return 0
	}
	return uintptr(unsafe.Pointer(unsafe.StringData(sni)))
}

// sameHandshake keeps a start recorded less than this long ago: a later
// callback of the same handshake (GetCertificate after UnwrapSession, or
// UnwrapSession for the client's next ticket) comes within microseconds;
// an older entry under the address belongs to a connection now gone.
const sameHandshake = time.Second

// A nil *handshakeObs (bindings built by tests) observes nothing.

// started records the first callback of a handshake.
func (o *handshakeObs) started(sni string, now time.Time) {
	if o == nil {
		return
	}
	o.conns.put(sniKey(sni), handshakeTrack{start: now}, now, func(_ handshakeTrack, age time.Duration) bool {
		return age < sameHandshake
	})
}

// completed observes a handshake VerifyConnection accepted.
func (o *handshakeObs) completed(cs *tls.ConnectionState, mutual bool, now time.Time) {
	if o == nil {
		return
	}
	if tr, ok := o.conns.take(sniKey(cs.ServerName), now); ok {
		o.duration[boolIndex(cs.DidResume)][boolIndex(mutual)].Observe(now.Sub(tr.start).Seconds())
	}
}

// refused counts and logs a refused handshake, once per handshake.
func (o *handshakeObs) refused(why refusal, cs *tls.ConnectionState, leaf *x509.Certificate, err error, now time.Time) {
	if o == nil {
		return
	}
	first := true
	key := sniKey(cs.ServerName)
	if !o.conns.update(key, now, func(tr *handshakeTrack) {
		first = !tr.refused
		tr.refused = true
	}) {
		// Not tracked (no SNI, or an expired entry): record it now so a
		// full handshake after a refused resumption is not counted twice.
		o.conns.put(key, handshakeTrack{start: now, refused: true}, now, nil)
	}
	if !first {
		return
	}
	o.refusals[why].Inc()
	o.refusedCounts[why].Add(1)
	refusalLog.log(o.server, why, cs, leaf, err)
}

// verified observes the time the client-authentication checks took.
func (o *handshakeObs) verified(resumed bool, d time.Duration) {
	if o != nil {
		o.verify[boolIndex(resumed)].Observe(d.Seconds())
	}
}

// finished forgets a handshake that ended without completing (refused).
func (o *handshakeObs) finished(cs *tls.ConnectionState, now time.Time) {
	if o != nil {
		o.conns.take(sniKey(cs.ServerName), now)
	}
}

// refusalLog writes one INFO line per refused handshake, at most
// refusalLogRate a second with bursts of refusalLogBurst: a flood of
// refused clients cannot fill the log. The next line written says how many
// were left out; the metric counts them all.
var refusalLog = &rateLimitedLog{limit: rate.NewLimiter(refusalLogRate, refusalLogBurst)}

const (
	refusalLogRate  = 10
	refusalLogBurst = 20
)

type rateLimitedLog struct {
	logger     atomic.Pointer[zap.Logger]
	limit      *rate.Limiter
	suppressed atomic.Int64
}

func (l *rateLimitedLog) log(server string, why refusal, cs *tls.ConnectionState, leaf *x509.Certificate, err error) {
	logger := l.logger.Load()
	if logger == nil {
		return
	}
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return
	}
	fields := []zap.Field{
		zap.String("server", server),
		zap.String("reason", refusalReasons[why]),
		zap.Bool("resumption", cs.DidResume),
		zap.String("server_name", cs.ServerName),
	}
	if leaf != nil {
		sum := sha256.Sum256(leaf.Raw)
		fields = append(fields,
			zap.String("fingerprint", hex.EncodeToString(sum[:])),
			zap.String("subject", leaf.Subject.String()))
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	if n := l.suppressed.Swap(0); n > 0 {
		fields = append(fields, zap.Int64("refusals_not_logged_before", n))
	}
	logger.Info("TLS handshake refused", fields...)
}
