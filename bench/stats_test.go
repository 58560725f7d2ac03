package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // reversed: must be sorted
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100", hundred, 100, 100 * time.Millisecond},
	} {
		if got := percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v) = %s, want %s", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestPairRatios(t *testing.T) {
	// Each pair ran back to back; the machine slowed down in the second
	// pair, but the ratio stays 2.
	got := pairRatios([]float64{200, 100, 210}, []float64{100, 50, 100})
	want := ratioStats{Median: 2, Min: 2, Max: 2.1, Pairs: 3}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Pairs with a zero side (a failed sample) are left out.
	if got := pairRatios([]float64{0, 10}, []float64{5, 5}); got.Pairs != 1 || got.Median != 2 {
		t.Fatalf("zero side: got %+v", got)
	}
	if got := pairRatios(nil, nil); got.Pairs != 0 {
		t.Fatalf("no pairs: got %+v", got)
	}
}
