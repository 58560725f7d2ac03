package tlsresume

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// sessions puts a session store behind the ticket hooks (stateful
// resumption). The client's ticket is only a random handle; the session
// state, sealed exactly like a stateless ticket (ring key, realm, SNI,
// issued-at), is stored under SHA-256(handle), so neither a store dump nor
// a captured ticket alone can resume anything, and a session can be
// deleted (revocation, invalidate, single use).
//
// Every store call runs under the policy's budget and through a circuit
// breaker; any failure means a full handshake (or, with fallback
// stateless, a stateless ticket), never a failed connection.
type sessions struct {
	store     storage.SessionStore
	budget    time.Duration
	stateless bool // fallback stateless
	singleUse bool
	lifetime  time.Duration
	breaker   breaker

	// ops[op][result] and latency[op], resolved once.
	ops     [numStoreOps][numStoreResults]prometheus.Counter
	latency [numStoreOps]prometheus.Observer
}

type storeOp uint8

const (
	opPut storeOp = iota
	opGet
	opTake
	opClaim
	numStoreOps
)

var storeOpNames = [numStoreOps]string{opPut: "put", opGet: "get", opTake: "take", opClaim: "claim_early_data"}

type storeResult uint8

const (
	resultOK storeResult = iota
	resultMiss
	resultError
	resultTimeout
	resultOpenCircuit
	resultReplayed
	numStoreResults
)

var storeResultNames = [numStoreResults]string{
	resultOK: "ok", resultMiss: "miss", resultError: "error", resultTimeout: "timeout",
	resultOpenCircuit: "open_circuit", resultReplayed: "replayed",
}

func newSessions(store storage.SessionStore, opts SessionStorePolicy, lifetime time.Duration, logger *zap.Logger) *sessions {
	s := &sessions{
		store:     store,
		budget:    time.Duration(opts.Budget),
		stateless: opts.Fallback == fallbackStateless,
		singleUse: opts.SingleUse,
		lifetime:  lifetime,
		breaker: breaker{
			threshold: int64(opts.BreakerThreshold),
			cooldown:  time.Duration(opts.BreakerCooldown),
			logger:    logger,
		},
	}
	metrics.StoreCircuitOpen.Set(0) // a new config starts with a closed circuit
	for o := range numStoreOps {
		s.latency[o] = metrics.StoreOperationDuration.WithLabelValues(storeOpNames[o])
		for r := range numStoreResults {
			s.ops[o][r] = metrics.StoreOperations.WithLabelValues(storeOpNames[o], storeResultNames[r])
		}
	}
	return s
}

// classify turns a store error into a result, feeds the breaker, and
// counts and times the operation, which started at start.
func (s *sessions) classify(op storeOp, err error, now, start time.Time) storeResult {
	s.latency[op].Observe(time.Since(start).Seconds())
	r := s.result(err, now)
	s.ops[op][r].Inc()
	return r
}

// result turns a store error into a result and feeds the breaker.
func (s *sessions) result(err error, now time.Time) storeResult {
	var r storeResult
	switch {
	case err == nil:
		r = resultOK
	case errors.Is(err, storage.ErrMiss):
		r = resultMiss
	case isTimeout(err):
		r = resultTimeout
	default:
		r = resultError
	}
	if r == resultOK || r == resultMiss {
		s.breaker.success()
	} else {
		s.breaker.failure(now, err)
	}
	return r
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// storeID is the store key of a handle.
func storeID(handle []byte) []byte {
	sum := sha256.Sum256(handle)
	return sum[:]
}

// wrapStored stores the sealed session and returns the handle ticket, or
// false when the store is unusable (the caller falls back).
func (b *policyBinding) wrapStored(s *sessions, cs tls.ConnectionState, sealed []byte, now time.Time) ([]byte, bool) {
	if !s.breaker.allow(now) {
		s.ops[opPut][resultOpenCircuit].Inc()
		return nil, false
	}
	ticket := make([]byte, storeTicketLen)
	ticket[0] = storeTicketVersion
	if _, err := rand.Read(ticket[1:]); err != nil {
		return nil, false
	}
	var leaf [32]byte
	if len(cs.PeerCertificates) > 0 {
		leaf = sha256.Sum256(cs.PeerCertificates[0].Raw)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.budget)
	err := s.store.Put(ctx, storeID(ticket[1:]), sealed, leaf, s.lifetime)
	cancel()
	if s.classify(opPut, err, now, start) != resultOK {
		return nil, false
	}
	return ticket, true
}

// openStored looks a handle ticket up and opens the stored session. It
// returns the session's store ID too, for the early-data claim.
func (b *policyBinding) openStored(s *sessions, r *keyring.Snapshot, ticket []byte, sni string, now time.Time) (openedTicket, []byte, rejection) {
	if len(ticket) != storeTicketLen {
		return openedTicket{}, nil, rejectMalformed
	}
	if !s.breaker.allow(now) {
		op := opGet
		if s.singleUse {
			op = opTake
		}
		s.ops[op][resultOpenCircuit].Inc()
		return openedTicket{}, nil, rejectStoreError
	}
	id := storeID(ticket[1:])
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.budget)
	defer cancel()
	var sealed []byte
	var err error
	var op storeOp
	if s.singleUse {
		op = opTake
		sealed, err = s.store.Take(ctx, id)
	} else {
		op = opGet
		sealed, err = s.store.Get(ctx, id)
	}
	switch s.classify(op, err, now, start) {
	case resultOK:
	case resultMiss:
		return openedTicket{}, nil, rejectStoreMiss
	default:
		return openedTicket{}, nil, rejectStoreError
	}
	t, why := b.openTicket(r, sealed, now, sni)
	return t, id, why
}

// claimEarlyData reports whether the stored session id may use 0-RTT now:
// a single-use session was just taken, so nobody can replay it; otherwise
// only the first resumption of the session across the store gets it.
func (s *sessions) claimEarlyData(id []byte, now time.Time) bool {
	if s.singleUse {
		return true
	}
	if !s.breaker.allow(now) {
		s.ops[opClaim][resultOpenCircuit].Inc()
		return false
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.budget)
	first, err := s.store.ClaimEarlyData(ctx, id)
	cancel()
	s.latency[opClaim].Observe(time.Since(start).Seconds())
	r := s.result(err, now)
	if r == resultOK && !first {
		r = resultReplayed
	}
	s.ops[opClaim][r].Inc()
	return r == resultOK
}

// breaker skips the store after threshold consecutive failures for
// cooldown; then a single probe goes through, and its success closes it.
// Two atomics, no lock on the handshake path; a library breaker (such as
// sony/gobreaker, under a mutex) would be a new module in every Caddy
// build for about forty lines.
type breaker struct {
	threshold int64
	cooldown  time.Duration
	logger    *zap.Logger

	failures  atomic.Int64
	openUntil atomic.Int64 // Unix nanoseconds; 0 = closed
}

// allow reports whether a store call may be made now.
func (br *breaker) allow(now time.Time) bool {
	until := br.openUntil.Load()
	if until == 0 {
		return true
	}
	n := now.UnixNano()
	if n < until {
		return false
	}
	// Cool-down over: exactly one caller probes, the others wait for
	// another cool-down or for the probe's success.
	return br.openUntil.CompareAndSwap(until, n+int64(br.cooldown))
}

func (br *breaker) success() {
	if br.failures.Swap(0) >= br.threshold && br.threshold > 0 {
		br.openUntil.Store(0)
		metrics.StoreCircuitOpen.Set(0)
		br.logger.Info("session store reachable again; circuit breaker closed")
	}
}

func (br *breaker) failure(now time.Time, err error) {
	n := br.failures.Add(1)
	if n < br.threshold {
		return
	}
	br.openUntil.Store(now.UnixNano() + int64(br.cooldown))
	if n == br.threshold {
		metrics.StoreCircuitOpen.Set(1)
		br.logger.Warn("session store failing; circuit breaker open, resuming without it",
			zap.Int64("consecutive_failures", n),
			zap.Duration("cooldown", br.cooldown),
			zap.Error(err))
	}
}

// SessionStoreStatus is the session store's health as this node sees it.
type SessionStoreStatus struct {
	// ConsecutiveFailures counts store calls failed in a row (errors and
	// budget timeouts); any success resets it.
	ConsecutiveFailures int64 `json:"consecutive_failures"`
	// CircuitOpenUntil, while set, is when handshakes will next try the
	// store; until then they resume without it (see `fallback`).
	CircuitOpenUntil *time.Time `json:"circuit_open_until,omitempty"`
	// Fallback is what handshakes do without the store: full or stateless.
	Fallback string `json:"fallback"`
}

func (s *sessions) status(now time.Time) *SessionStoreStatus {
	st := &SessionStoreStatus{ConsecutiveFailures: s.breaker.failures.Load(), Fallback: "full"}
	if s.stateless {
		st.Fallback = "stateless"
	}
	if until := s.breaker.openUntil.Load(); until != 0 && until > now.UnixNano() {
		t := time.Unix(0, until).UTC()
		st.CircuitOpenUntil = &t
	}
	return st
}
