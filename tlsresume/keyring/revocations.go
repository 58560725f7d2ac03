package keyring

import (
	"time"
)

// Revocation state (the deny list and the invalidation time) lives in the
// ring document, and it only ever grows while it is in force: a node never
// lets a document it loads or writes drop a revocation it has seen. Storage
// that was corrupted, deleted or rolled back to an older authentic copy
// cannot lift a revocation, because every node merges what it holds into
// what it reads and writes, and keeps a sealed copy on local disk across
// restarts (local.go). Entries end only when the certificate they name
// expires (DeniedCert.Ends).

// denyPruneSlack keeps an entry a while past its certificate's expiry, for
// nodes whose clocks lag.
const denyPruneSlack = time.Hour

// mergeRevocations adds to dst every revocation of src that dst lacks and
// that is still in force at now: deny-list entries (for an entry in both,
// the later end wins) and a later invalidation time. It reports whether
// dst changed.
func mergeRevocations(dst, src *Document, now time.Time) bool {
	changed := false
	if src.InvalidatedBefore.After(dst.InvalidatedBefore) {
		dst.InvalidatedBefore = src.InvalidatedBefore
		changed = true
	}
	if len(src.Denied) == 0 {
		return changed
	}
	// Index dst by certificate: merging runs on every poll, and a deny
	// list can hold tens of thousands of entries.
	index := make(map[deniedKey]int, len(dst.Denied))
	for i, e := range dst.Denied {
		index[keyOf(e)] = i
	}
	for _, e := range src.Denied {
		if denyExpired(e, now) {
			continue
		}
		k := keyOf(e)
		if i, ok := index[k]; ok {
			if e.ends().After(dst.Denied[i].ends()) {
				dst.Denied[i] = e
				changed = true
			}
			continue
		}
		index[k] = len(dst.Denied)
		dst.Denied = append(dst.Denied, e)
		changed = true
	}
	return changed
}

// deniedKey names the certificate of a deny-list entry (as SameCertificate
// compares them).
type deniedKey struct{ sha256, issuer, serial string }

func keyOf(e DeniedCert) deniedKey {
	return deniedKey{e.SHA256, e.IssuerSHA256, e.Serial}
}

// pruneDenied drops deny-list entries whose certificates have expired. It
// reports whether d changed.
func pruneDenied(d *Document, now time.Time) bool {
	kept := d.Denied[:0]
	for _, e := range d.Denied {
		if !denyExpired(e, now) {
			kept = append(kept, e)
		}
	}
	changed := len(kept) != len(d.Denied)
	clear(d.Denied[len(kept):])
	d.Denied = kept
	return changed
}

func denyExpired(e DeniedCert, now time.Time) bool {
	return now.After(e.ends().Add(denyPruneSlack))
}

// holdsRevocationsOf reports whether d already has every revocation of src
// in force at now, so merging src would change nothing.
func holdsRevocationsOf(d, src *Document, now time.Time) bool {
	if src.InvalidatedBefore.After(d.InvalidatedBefore) {
		return false
	}
	if len(src.Denied) == 0 {
		return true
	}
	ends := make(map[deniedKey]time.Time, len(d.Denied))
	for _, e := range d.Denied {
		ends[keyOf(e)] = e.ends()
	}
	for _, e := range src.Denied {
		if denyExpired(e, now) {
			continue
		}
		if end, ok := ends[keyOf(e)]; !ok || e.ends().After(end) {
			return false
		}
	}
	return true
}
