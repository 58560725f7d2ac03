package keyring

import (
	"testing"
	"time"
)

// seqKeys generates keys with IDs 1, 2, 3... so tests can name them.
func seqKeys() KeyGenerator {
	var n uint32
	return func() (Key, error) {
		n++
		s := make([]byte, TicketKeySize)
		s[0] = byte(n)
		return Key{ID: n, Secret: s}, nil
	}
}

var t0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func testSchedule() Schedule {
	return Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
}

func ids(d *Document) []uint32 {
	var out []uint32
	for _, k := range d.Keys {
		out = append(out, k.ID)
	}
	return out
}

func TestScheduleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		ok   bool
	}{
		{"defaults", Schedule{12 * time.Hour, 30 * time.Minute, 3 * time.Minute}, true},
		{"lead equals interval", Schedule{time.Minute, time.Minute, time.Minute}, false},
		{"no interval", Schedule{0, time.Minute, time.Second}, false},
		{"no lifetime", Schedule{time.Hour, 0, time.Second}, false},
		{"no lead", Schedule{time.Hour, time.Minute, 0}, false},
	} {
		if err := tc.s.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestMaintain(t *testing.T) {
	s := testSchedule()
	gen := seqKeys()

	// Bootstrap: one key sealing now, the next staged an interval ahead.
	d, err := s.Maintain(nil, t0, gen)
	if err != nil || d == nil {
		t.Fatalf("bootstrap: %v %v", d, err)
	}
	if got := ids(d); len(got) != 2 || !d.Keys[0].Activate.Equal(t0) || !d.Keys[1].Activate.Equal(t0.Add(time.Hour)) {
		t.Fatalf("bootstrap keys %v %+v", got, d.Keys)
	}
	d.Version = 1

	steps := []struct {
		at      time.Duration
		change  bool
		wantIDs []uint32
	}{
		{30 * time.Minute, false, []uint32{1, 2}},
		// key 2 activates at 1h: key 3 gets staged for 2h.
		{time.Hour, true, []uint32{1, 2, 3}},
		{time.Hour + time.Minute, false, []uint32{1, 2, 3}},
		// key 1 expires at 1h + lifetime + lead = 1h13m.
		{time.Hour + 13*time.Minute, false, []uint32{1, 2, 3}},
		{time.Hour + 13*time.Minute + time.Second, true, []uint32{2, 3}},
		{2 * time.Hour, true, []uint32{2, 3, 4}},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		next, err := s.Maintain(d, now, gen)
		if err != nil {
			t.Fatal(err)
		}
		if (next != nil) != st.change {
			t.Fatalf("at %s: changed=%v want %v", st.at, next != nil, st.change)
		}
		if next != nil {
			d = next
		}
		if got := ids(d); !equalIDs(got, st.wantIDs) {
			t.Fatalf("at %s: keys %v want %v", st.at, got, st.wantIDs)
		}
		// Invariant: every key but the first was published at least Lead
		// before it activated.
		for i, k := range d.Keys[1:] {
			if k.Activate.Sub(k.Published) < s.Lead {
				t.Fatalf("at %s: key %d published %s before activation", st.at, i+1, k.Activate.Sub(k.Published))
			}
		}
	}
	if d.Rotations != 2 {
		t.Errorf("rotations = %d, want 2", d.Rotations)
	}
}

func TestMaintainAfterOutageStagesProperly(t *testing.T) {
	s := testSchedule()
	gen := seqKeys()
	d, _ := s.Maintain(nil, t0, gen)
	// The whole fleet was down for a day.
	late := t0.Add(25 * time.Hour)
	d2, err := s.Maintain(d, late, gen)
	if err != nil {
		t.Fatal(err)
	}
	newest := d2.Keys[len(d2.Keys)-1]
	if newest.Activate.Before(late.Add(s.Lead)) {
		t.Fatalf("new key activates %s after publication, want at least %s", newest.Activate.Sub(late), s.Lead)
	}
	// Key 1 expired long ago and is pruned; key 2 keeps sealing meanwhile.
	if got := ids(d2); !equalIDs(got, []uint32{2, 3}) {
		t.Fatalf("keys %v", got)
	}
}

func TestRotateStagesBeforeSealing(t *testing.T) {
	s := testSchedule()
	gen := seqKeys()
	d, _ := s.Maintain(nil, t0, gen)

	// Forced rotation 10 minutes in: key 2 (published at t0) seals Lead from now.
	now := t0.Add(10 * time.Minute)
	r1, err := s.rotate(d, now, gen)
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Keys[1].Activate.Equal(now.Add(s.Lead)) {
		t.Fatalf("key 2 activates at %s, want %s", r1.Keys[1].Activate, now.Add(s.Lead))
	}
	if len(r1.Keys) != 3 || !r1.Keys[2].Activate.Equal(r1.Keys[1].Activate.Add(s.Interval)) {
		t.Fatalf("key 3 not staged an interval later: %+v", r1.Keys)
	}

	// A second forced rotation right away cannot make key 3 seal before it
	// was published for Lead.
	now2 := now.Add(time.Second)
	r2, err := s.rotate(r1, now2, gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range r2.Keys[1:] {
		if k.Activate.Sub(k.Published) < s.Lead {
			t.Fatalf("key %d seals %s after publication", k.ID, k.Activate.Sub(k.Published))
		}
	}
	for i := 1; i < len(r2.Keys); i++ {
		if r2.Keys[i].Activate.Before(r2.Keys[i-1].Activate) {
			t.Fatalf("ring not sorted after rotations: %+v", r2.Keys)
		}
	}
	if r2.Rotations != 2 {
		t.Errorf("rotations = %d", r2.Rotations)
	}
}

func equalIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
