package keyring

import (
	"testing"
	"time"
)

func TestMergeRevocations(t *testing.T) {
	now := t0
	a := DeniedCert{SHA256: "aa", Added: now, NotAfter: now.Add(time.Hour)}
	aLater := a
	aLater.NotAfter = now.Add(2 * time.Hour)
	b := DeniedCert{IssuerSHA256: "ii", Serial: "7", Added: now}
	expired := DeniedCert{SHA256: "ee", Added: now.Add(-48 * time.Hour), NotAfter: now.Add(-2 * time.Hour)}
	for _, tc := range []struct {
		name        string
		dst, src    Document
		wantChanged bool
		wantDenied  int
		wantInv     time.Time
	}{
		{"nothing", Document{}, Document{}, false, 0, time.Time{}},
		{"new entry", Document{}, Document{Denied: []DeniedCert{a}}, true, 1, time.Time{}},
		{"duplicate", Document{Denied: []DeniedCert{a}}, Document{Denied: []DeniedCert{a}}, false, 1, time.Time{}},
		{"later end wins", Document{Denied: []DeniedCert{a}}, Document{Denied: []DeniedCert{aLater}}, true, 1, time.Time{}},
		{"earlier end loses", Document{Denied: []DeniedCert{aLater}}, Document{Denied: []DeniedCert{a}}, false, 1, time.Time{}},
		{"by issuer and serial", Document{Denied: []DeniedCert{a}}, Document{Denied: []DeniedCert{b}}, true, 2, time.Time{}},
		{"expired entries not merged", Document{}, Document{Denied: []DeniedCert{expired}}, false, 0, time.Time{}},
		{"later invalidation", Document{InvalidatedBefore: now}, Document{InvalidatedBefore: now.Add(time.Minute)}, true, 0, now.Add(time.Minute)},
		{"earlier invalidation", Document{InvalidatedBefore: now}, Document{InvalidatedBefore: now.Add(-time.Minute)}, false, 0, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst.Clone()
			if got := mergeRevocations(dst, &tc.src, now); got != tc.wantChanged {
				t.Errorf("changed = %v, want %v", got, tc.wantChanged)
			}
			if len(dst.Denied) != tc.wantDenied || !dst.InvalidatedBefore.Equal(tc.wantInv) {
				t.Errorf("after merge: %d denied, invalidated %v", len(dst.Denied), dst.InvalidatedBefore)
			}
			if tc.name == "later end wins" && !dst.Denied[0].NotAfter.Equal(aLater.NotAfter) {
				t.Error("kept the earlier end")
			}
		})
	}
}

func TestPruneDenied(t *testing.T) {
	now := t0
	d := &Document{Denied: []DeniedCert{
		{SHA256: "live", Added: now, NotAfter: now.Add(time.Hour)},
		{SHA256: "just expired", Added: now, NotAfter: now.Add(-time.Minute)}, // within the slack
		{SHA256: "expired", Added: now, NotAfter: now.Add(-2 * time.Hour)},
		{SHA256: "unknown expiry, recent", Added: now.Add(-24 * time.Hour)},
		{SHA256: "unknown expiry, old", Added: now.Add(-denyRetention - 2*time.Hour)},
	}}
	if !pruneDenied(d, now) {
		t.Fatal("nothing pruned")
	}
	var kept []string
	for _, e := range d.Denied {
		kept = append(kept, e.SHA256)
	}
	want := []string{"live", "just expired", "unknown expiry, recent"}
	if len(kept) != len(want) {
		t.Fatalf("kept %q, want %q", kept, want)
	}
	for i := range want {
		if kept[i] != want[i] {
			t.Fatalf("kept %q, want %q", kept, want)
		}
	}
	if pruneDenied(d, now) {
		t.Fatal("second prune changed something")
	}
}
