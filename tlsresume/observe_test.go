package tlsresume

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// Handshakes are timed from their first callback to VerifyConnection, the
// checks alone too, resumed and full apart; refused handshakes are counted
// once each, a resumption refused before its ticket was accepted included,
// and logged.
func TestHandshakeObservations(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	core, logs := observer.New(zap.InfoLevel)
	refusalLog.logger.Store(zap.New(core))
	t.Cleanup(func() { refusalLog.logger.Store(nil) })
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			r, _ := testRing(t)
			ts := newTestServer(t, set, v, r)
			ts.cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				c := set.Server.TLSCertificate()
				return &c, nil
			}
			ts.cfg.Certificates = nil
			// bindPolicy wrapped GetCertificate before the test replaced
			// it: wrap again as bindPolicy does.
			getCert := ts.cfg.GetCertificate
			ts.cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
				ts.binding.obs.started(h.ServerName, time.Now())
				return getCert(h)
			}
			obs := ts.binding.obs
			// The series are shared by every binding of server "test".
			full0, res0 := histogramCount(t, obs.duration[0][1]), histogramCount(t, obs.duration[1][1])
			vfull0, vres0 := histogramCount(t, obs.verify[0]), histogramCount(t, obs.verify[1])
			cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
			for range 3 {
				if _, err := dial(t, ts.addr, cfg); err != nil {
					t.Fatal(err)
				}
			}
			if n := histogramCount(t, obs.duration[0][1]) - full0; n != 1 {
				t.Errorf("full mTLS handshakes timed: %d, want 1", n)
			}
			if n := histogramCount(t, obs.duration[1][1]) - res0; n != 2 {
				t.Errorf("resumed mTLS handshakes timed: %d, want 2", n)
			}
			if full, resumed := histogramCount(t, obs.verify[0])-vfull0, histogramCount(t, obs.verify[1])-vres0; full != 1 || resumed != 2 {
				t.Errorf("checks timed: full %d resumed %d, want 1 and 2", full, resumed)
			}
			if n := obs.conns.len(); n != 0 {
				t.Errorf("%d handshakes still tracked after completing", n)
			}

			// Refused: a resumption (refused before its ticket, then its
			// full handshake), and a full handshake with no ticket.
			ts.refuse.Store(true)
			before := testutil.ToFloat64(obs.refusals[refusedVerifier])
			logged := logs.Len()
			if _, err := dial(t, ts.addr, cfg); err == nil {
				t.Fatal("refused client connected")
			}
			if d := testutil.ToFloat64(obs.refusals[refusedVerifier]) - before; d != 1 {
				t.Errorf("refused resumption counted %v times, want 1", d)
			}
			cfg.ClientSessionCache = nil
			if _, err := dial(t, ts.addr, cfg); err == nil {
				t.Fatal("refused client connected")
			}
			if d := testutil.ToFloat64(obs.refusals[refusedVerifier]) - before; d != 2 {
				t.Errorf("two refused handshakes counted %v times", d)
			}
			if got := logs.Len() - logged; got != 2 {
				t.Errorf("%d refusal log lines, want 2", got)
			}
			last := logs.All()[logs.Len()-1]
			if f := last.ContextMap(); f["reason"] != "verifier" || f["fingerprint"] == "" || f["subject"] == "" {
				t.Errorf("refusal log line %v", f)
			}
		})
	}
}

// A flood of refusals is counted in full but logged at a bounded rate; the
// next line says how many were left out.
func TestRefusalLogRateLimited(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	refusalLog.logger.Store(zap.New(core))
	t.Cleanup(func() { refusalLog.logger.Store(nil) })
	o := newHandshakeObs("flood")
	before := testutil.ToFloat64(o.refusals[refusedRevoked])
	now := time.Now()
	for range 1000 {
		o.refused(refusedRevoked, &tls.ConnectionState{}, nil, errDenied, now)
	}
	if d := testutil.ToFloat64(o.refusals[refusedRevoked]) - before; d != 1000 {
		t.Fatalf("counted %v refusals, want 1000", d)
	}
	if n := logs.Len(); n > refusalLogBurst+5 {
		t.Fatalf("%d lines logged for a flood", n)
	}
	time.Sleep(200 * time.Millisecond)
	o.refused(refusedRevoked, &tls.ConnectionState{}, nil, errDenied, time.Now())
	last := logs.All()[logs.Len()-1].ContextMap()
	if n, _ := last["refusals_not_logged_before"].(int64); n < 900 {
		t.Fatalf("last line %v does not report the suppressed refusals", last)
	}
}

// A TLS 1.2 client offering no ticket is not a rejection; placeholder
// tickets come back counted under their true cause.
func TestRejectionLabels(t *testing.T) {
	r, _ := testRing(t)
	holder := new(keyring.Holder)
	holder.Store(r)
	pb := &policyBinding{ticketBinding: *testBinding(1, false), rings: holder, now: func() time.Time { return t0 }}
	total := func() float64 {
		var sum float64
		for _, c := range rejectionCounters[rejectMalformed:] {
			sum += testutil.ToFloat64(c)
		}
		return sum
	}
	before := total()
	if ss, _ := pb.unwrapSession(nil, tls.ConnectionState{}); ss != nil || total() != before {
		t.Fatalf("an empty ticket counted as a rejection (%v)", total()-before)
	}
	for ticket, want := range map[string]rejection{
		string(placeholderNoRing): rejectNoRing,
		string(placeholderStore):  rejectStoreError,
		string(placeholderReauth): rejectExpired,
	} {
		b := testutil.ToFloat64(rejectionCounters[want])
		if ss, _ := pb.unwrapSession([]byte(ticket), tls.ConnectionState{}); ss != nil {
			t.Fatal("placeholder opened")
		}
		if testutil.ToFloat64(rejectionCounters[want])-b != 1 {
			t.Errorf("placeholder %x not counted as %s", ticket, want)
		}
	}
	// With a store that fails and fallback full, the ticket handed out is
	// the store placeholder.
	pb.sessions = testSessions(t, failingStore{}, time.Minute)
	tk, _ := pb.wrapSession(tls.ConnectionState{ServerName: "a"}, realSessionState(t))
	if string(tk) != string(placeholderStore) {
		t.Fatalf("ticket on a failing store: %x", tk)
	}
}

// failingStore fails every call.
type failingStore struct{ storage.SessionStore }

func (failingStore) Put(_ context.Context, _, _ []byte, _ [32]byte, _ time.Duration) error {
	return errors.New("store down")
}
