package tlsresume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// running is the tls_resume app of the config Caddy is running, for the
// admin API: admin routers are provisioned outside the apps' lifecycle, so
// they look the app up here on every request. Start sets it; Stop clears it
// unless a newer config's app has already replaced it (Caddy starts the new
// config before it stops the old one).
var running atomic.Pointer[App]

// runningApp returns the started tls_resume app, or nil when none runs.
func runningApp() *App { return running.Load() }

// errNotRunning means the app's ring synchroniser has not started.
var errNotRunning = errors.New("tls_resume app is not running")

// Key states in Status.
const (
	KeyStaged  = "staged"  // published, not yet sealing
	KeySealing = "sealing" // seals new tickets
	KeyRetired = "retired" // opens tickets until it expires
)

// Status is a snapshot of the app for operators. It never holds key
// material.
type Status struct {
	Ring    string `json:"ring"`
	Version uint64 `json:"version"`
	// Rotations is the ring's count of recorded rotations.
	Rotations uint64 `json:"rotations"`
	// KEKID identifies (without revealing) the key-encryption key this
	// node seals the ring with.
	KEKID string `json:"kek_id"`
	// SealingKeyID is the ID of the key sealing tickets now. Empty (and
	// Keys empty, Version 0) when this node has no usable ring, for
	// example one sealed under a KEK it does not have: it then serves
	// full handshakes, and Store says why.
	SealingKeyID string      `json:"sealing_key_id,omitempty"`
	Keys         []KeyStatus `json:"keys"`
	// InvalidatedBefore: tickets issued earlier are refused everywhere.
	InvalidatedBefore *time.Time `json:"invalidated_before,omitempty"`
	// DeniedCertificates is the number of entries on the deny list.
	DeniedCertificates int `json:"denied_certificates"`
	// Denied is the deny list: each entry ends when the certificate it
	// names expires (not_after), or 400 days after it was added when
	// that is unknown.
	Denied []keyring.DeniedCert `json:"denied"`

	RotationInterval string `json:"rotation_interval"`
	TicketLifetime   string `json:"ticket_lifetime"`
	PollInterval     string `json:"poll_interval"`

	Store StoreStatus `json:"store"`

	// SessionStore is the session store's health; absent without one.
	SessionStore *SessionStoreStatus `json:"session_store,omitempty"`

	// The counts below span this configuration: since it was loaded,
	// on the servers this app manages (a reload starts them again from
	// zero; the Prometheus metrics at /metrics keep the process's
	// totals).
	Handshakes HandshakeCounts `json:"handshakes"`
	// Refusals counts refused handshakes, by reason (revoked, verifier;
	// every reason present, zero included, once a server is managed).
	Refusals map[string]uint64 `json:"refusals"`
	// TicketRejections counts tickets that did not resume, by reason
	// (every reason present, zero included).
	TicketRejections map[string]uint64 `json:"ticket_rejections"`
	// EarlyData counts the requests this configuration's
	// early_data_guard handlers saw arrive in early data, by outcome
	// (allowed, rejected; both present, zero included).
	EarlyData map[string]uint64 `json:"early_data"`
	// Now is when the snapshot was taken.
	Now time.Time `json:"now"`
}

// KeyStatus describes one ticket key: its ID, state and times.
type KeyStatus struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Published time.Time `json:"published"`
	Activate  time.Time `json:"activate"`
	// Expires is when the key stops opening tickets (absent while it
	// seals or is staged and no later key is scheduled).
	Expires *time.Time `json:"expires,omitempty"`
	// AgeSeconds is the time since activation; negative while staged.
	AgeSeconds float64 `json:"age_seconds"`
}

// StoreStatus is the health of the ring's storage as this node sees it.
type StoreStatus struct {
	LastSynced *time.Time `json:"last_synced,omitempty"`
	// LastError is the latest storage error of the current failure
	// streak (empty when the last attempt succeeded).
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures"`
	// LastRepair is the last damage found in storage and repaired by
	// writing back the ring this node holds: the document had been
	// deleted, or replaced by an older one.
	LastRepair   string     `json:"last_repair,omitempty"`
	LastRepairAt *time.Time `json:"last_repair_at,omitempty"`
}

// HandshakeCounts are the handshakes completed on the servers the app
// manages since its configuration was loaded.
type HandshakeCounts struct {
	Total         uint64 `json:"total"`
	Resumed       uint64 `json:"resumed"`
	Mutual        uint64 `json:"mutual"`
	MutualResumed uint64 `json:"mutual_resumed"`
	// ResumptionRatio is Resumed / Total (0 before the first handshake).
	ResumptionRatio float64 `json:"resumption_ratio"`
	// ByServer maps an HTTP server name to its total and resumed counts.
	ByServer map[string]ServerCounts `json:"by_server,omitempty"`
}

// ServerCounts are one HTTP server's handshake counts.
type ServerCounts struct {
	Total   uint64 `json:"total"`
	Resumed uint64 `json:"resumed"`
}

// status returns a snapshot of the ring, its storage health and the app's
// counts.
func (a *App) status() (*Status, error) {
	s := a.sync
	if s == nil {
		return nil, errNotRunning
	}
	now := s.Now()
	st := &Status{
		Ring:             a.RingName,
		KEKID:            a.keks[0].ID(),
		Keys:             []KeyStatus{},
		Denied:           []keyring.DeniedCert{},
		RotationInterval: a.sched.Interval.String(),
		TicketLifetime:   a.sched.Lifetime.String(),
		PollInterval:     a.poll.String(),
		Now:              now.UTC(),
	}
	held := s.State()
	if d := held.Held; d != nil {
		st.Version, st.Rotations = d.Version, d.Rotations
		st.Keys = keyStatuses(d, a.sched, now)
		for _, k := range st.Keys {
			if k.State == KeySealing {
				st.SealingKeyID = k.ID
			}
		}
		if !d.InvalidatedBefore.IsZero() {
			t := d.InvalidatedBefore.UTC()
			st.InvalidatedBefore = &t
		}
		st.DeniedCertificates = len(d.Denied)
		st.Denied = append(st.Denied, d.Denied...)
	}
	if held.LastRepair != "" {
		st.Store.LastRepair = held.LastRepair
		t := held.LastRepairAt.UTC()
		st.Store.LastRepairAt = &t
	}
	if !held.LastSynced.IsZero() {
		t := held.LastSynced.UTC()
		st.Store.LastSynced = &t
	}
	if held.LastError != nil {
		st.Store.LastError = held.LastError.Error()
		t := held.LastErrorAt.UTC()
		st.Store.LastErrorAt = &t
	}
	st.Store.Failures = held.Failures

	if a.sessions != nil {
		st.SessionStore = a.sessions.status(now)
	}

	a.countInto(st)
	return st, nil
}

// countInto fills st's counts: what this app's bindings and early-data
// guards counted (bindingCounts, handshakeObs, earlyDataCounts).
func (a *App) countInto(st *Status) {
	st.Refusals = map[string]uint64{}
	st.TicketRejections = map[string]uint64{}
	for why := rejectMalformed; why < numRejections; why++ {
		st.TicketRejections[rejectionReasons[why]] = 0
	}
	h := &st.Handshakes
	for _, b := range a.bindings {
		if h.ByServer == nil {
			h.ByServer = map[string]ServerCounts{}
		}
		sc := h.ByServer[b.obs.server]
		for r := range 2 {
			for m := range 2 {
				v := b.counts.handshakes[r][m].Load()
				h.Total += v
				sc.Total += v
				if r == 1 {
					h.Resumed += v
					sc.Resumed += v
				}
				if m == 1 {
					h.Mutual += v
					if r == 1 {
						h.MutualResumed += v
					}
				}
			}
		}
		h.ByServer[b.obs.server] = sc
		for why := range numRefusals {
			st.Refusals[refusalReasons[why]] += b.obs.refusedCounts[why].Load()
		}
		for why := rejectMalformed; why < numRejections; why++ {
			st.TicketRejections[rejectionReasons[why]] += b.counts.rejections[why].Load()
		}
	}
	if h.Total > 0 {
		h.ResumptionRatio = float64(h.Resumed) / float64(h.Total)
	}
	st.EarlyData = map[string]uint64{"allowed": 0, "rejected": 0}
	if e := a.early; e != nil {
		st.EarlyData["allowed"], st.EarlyData["rejected"] = e.allowed.Load(), e.rejected.Load()
	}
}

// earlyDataCounts are the requests the early_data_guard handlers of the
// app's configuration saw arrive in early data (CountEarlyData). Provision
// allocates them (an App is a Caddy module value, which must not hold
// atomics by value).
type earlyDataCounts struct {
	allowed, rejected atomic.Uint64
}

// CountEarlyData counts, for Status, a request that arrived in early data,
// by the early_data_guard's outcome. The guards of the app's configuration
// call it (they find the app when they see their first early request).
func (a *App) CountEarlyData(allowed bool) {
	switch {
	case a.early == nil: // not provisioned
	case allowed:
		a.early.allowed.Add(1)
	default:
		a.early.rejected.Add(1)
	}
}

// keyStatuses describes doc's keys at now.
func keyStatuses(d *keyring.Document, sched keyring.Schedule, now time.Time) []KeyStatus {
	sealing := -1
	for i, k := range d.Keys {
		if !k.Activate.After(now) {
			sealing = i
		}
	}
	if sealing < 0 && len(d.Keys) > 0 {
		sealing = 0 // as Snapshot.SealingKey: a clock behind the ring uses the first key
	}
	out := make([]KeyStatus, 0, len(d.Keys))
	for i, k := range d.Keys {
		ks := KeyStatus{
			ID:         keyring.FormatKeyID(k.ID),
			Published:  k.Published.UTC(),
			Activate:   k.Activate.UTC(),
			AgeSeconds: now.Sub(k.Activate).Round(time.Second).Seconds(),
		}
		switch {
		case i == sealing:
			ks.State = KeySealing
		case i < sealing:
			ks.State = KeyRetired
		default:
			ks.State = KeyStaged
		}
		if exp := sched.KeyExpiry(d, i); !exp.IsZero() && ks.State != KeyStaged {
			exp = exp.UTC()
			ks.Expires = &exp
		}
		out = append(out, ks)
	}
	return out
}

// rotate forces a fleet-wide rotation: the staged key seals as soon as
// every node can know it (one poll cycle plus the clock-skew allowance).
// It returns the status after the rotation.
//
// With emergency set (a ticket key leaked) every key is dropped at once, a
// fresh key seals immediately and every earlier ticket is invalidated; see
// keyring.Sync.EmergencyRotate.
func (a *App) rotate(ctx context.Context, emergency bool) (*Status, error) {
	if a.sync == nil {
		return nil, errNotRunning
	}
	rotate := a.sync.Rotate
	if emergency {
		rotate = a.sync.EmergencyRotate
	}
	if err := rotate(ctx); err != nil {
		return nil, err
	}
	return a.status()
}

// invalidate makes every ticket issued before the given time (the zero
// time: now) unusable on every node sharing the ring. An earlier time than
// the one already in force changes nothing; a time more than a minute
// ahead is refused. It returns the time in force afterwards.
func (a *App) invalidate(ctx context.Context, before time.Time) (time.Time, error) {
	if a.sync == nil {
		return time.Time{}, errNotRunning
	}
	now := a.sync.Now()
	if before.IsZero() {
		before = now
	} else if before.After(now.Add(maxInvalidateAhead)) {
		return time.Time{}, invalidInput{fmt.Errorf("before: %s is in the future (now %s)", before.Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	}
	inForce, err := a.sync.Invalidate(ctx, before)
	if err != nil {
		return time.Time{}, err
	}
	// Every stored session predates a "before" that is not in the past
	// (tickets carry whole seconds, so "now" means this second): delete
	// them all from the session store. This is only clean-up: the ring's
	// invalidation time already refuses them on every node.
	if a.sessions != nil && before.Unix() >= now.Unix() {
		a.cleanUpStore("invalidate", func(ctx context.Context) error { return a.sessions.store.InvalidateAll(ctx) })
	}
	return inForce, nil
}

// revoke adds a client certificate to the fleet's deny list: on every node
// that has loaded the ring, its sessions no longer resume and its full
// handshakes are refused. A certificate this fleet has never seen may be
// revoked (it may be presented later); a duplicate entry changes nothing.
// An entry without Added gets the current time. It returns the entry as
// stored and the number of entries on the deny list afterwards.
func (a *App) revoke(ctx context.Context, entry keyring.DeniedCert) (keyring.DeniedCert, int, error) {
	if a.sync == nil {
		return entry, 0, errNotRunning
	}
	if entry.SHA256 == "" && (entry.IssuerSHA256 == "" || entry.Serial == "") {
		return entry, 0, invalidInput{errors.New("revoke: a leaf SHA-256, or an issuer digest and a serial, is required")}
	}
	if entry.Added.IsZero() {
		entry.Added = a.sync.Now().UTC()
	}
	denied, err := a.sync.Deny(ctx, entry)
	if err != nil {
		return entry, 0, err
	}
	// Delete the certificate's stored sessions everywhere (only clean-up:
	// the deny list already refuses it on every handshake). Sessions are
	// indexed by leaf fingerprint, so an issuer-and-serial entry leaves
	// them to expire.
	if a.sessions != nil && entry.SHA256 != "" {
		if raw, err := hex.DecodeString(entry.SHA256); err == nil && len(raw) == sha256.Size {
			leaf := [sha256.Size]byte(raw)
			a.cleanUpStore("revoke", func(ctx context.Context) error {
				_, err := a.sessions.store.RevokeLeaf(ctx, leaf)
				return err
			})
		}
	}
	return entry, denied, nil
}

// maxInvalidateAhead is how far in the future an invalidation may reach:
// a little clock skew is fine, but a time far ahead would silently turn
// resumption off until then.
const maxInvalidateAhead = time.Minute

// invalidInput is an operation refused for what it was asked (the admin
// API answers 400), not for a storage failure.
type invalidInput struct{ error }

func (e invalidInput) Unwrap() error { return e.error }

// cleanUpStore runs a session-store deletion for an admin operation. A
// failure is logged, not returned: the operation is already in force through
// the ring, and the stored sessions expire with the ticket lifetime.
func (a *App) cleanUpStore(op string, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx); err != nil {
		a.logger.Warn("session store clean-up failed; the ring already enforces the operation",
			zap.String("operation", op), zap.Error(err))
	}
}
