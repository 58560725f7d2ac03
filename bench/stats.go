package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method; ds is sorted in place. It is 0 for no samples.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	return ds[min(max(rank, 1), len(ds))-1]
}

// median returns the median of xs (the mean of the middle two for an even
// count); 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratioStats summarises the ratios a/b of measurements taken pair by pair
// (a and b of one pair ran back to back, so a slow moment of the machine
// shows in both and cancels in their ratio).
type ratioStats struct {
	Median, Min, Max float64
	Pairs            int
}

// pairRatios computes a[i]/b[i] for every pair where both are positive.
func pairRatios(a, b []float64) ratioStats {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if a[i] > 0 && b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return ratioStats{}
	}
	return ratioStats{Median: median(rs), Min: slices.Min(rs), Max: slices.Max(rs), Pairs: len(rs)}
}
