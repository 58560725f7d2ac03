//go:build race

package upstream

// raceEnabled reports whether the race detector is on (see TestTransportHTTP3).
const raceEnabled = true
