package tlsresume

import "fmt"

// earlyDataMode is the parsed early_data option: which tickets may carry
// 0-RTT (TLS early data, which Caddy's HTTP/3 listener accepts). Early data
// is sent before the handshake completes, so an attacker who captured it can
// replay it; a server must make each ticket usable for 0-RTT at most once
// (RFC 8446, section 8).
type earlyDataMode uint8

const (
	// earlyDataOnce ("once", the default): 0-RTT only on tickets a
	// session store makes single-use across its scope (the store claims
	// each session's early data once). Stateless tickets carry no early
	// data.
	earlyDataOnce earlyDataMode = iota
	// earlyDataReplayable ("replayable"): stateless tickets carry 0-RTT
	// too, and any of them can be replayed as early data as often as an
	// attacker likes until it expires. Only for sites whose 0-RTT requests
	// are all safe to repeat (with early_data_guard answering 425 to the
	// rest).
	earlyDataReplayable
	// earlyDataOff ("off"): no ticket carries 0-RTT.
	earlyDataOff
)

// earlyDataNames are the values of the early_data option, by mode.
var earlyDataNames = [...]string{earlyDataOnce: "once", earlyDataReplayable: "replayable", earlyDataOff: "off"}

func parseEarlyDataMode(s string) (earlyDataMode, error) {
	if s == "" {
		return earlyDataOnce, nil
	}
	for m, name := range earlyDataNames {
		if s == name {
			return earlyDataMode(m), nil
		}
	}
	return 0, fmt.Errorf("early_data: unknown value %q (want %s, %s or %s)", s, earlyDataNames[earlyDataOnce], earlyDataNames[earlyDataReplayable], earlyDataNames[earlyDataOff])
}

// allows reports whether a ticket may carry early data: single reports
// that the session is in a session store, which grants its 0-RTT once.
func (m earlyDataMode) allows(single bool) bool {
	switch m {
	case earlyDataReplayable:
		return true
	case earlyDataOnce:
		return single
	}
	return false
}
