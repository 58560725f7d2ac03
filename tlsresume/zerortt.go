package tlsresume

import "fmt"

// Values of the early_data option: which tickets may carry 0-RTT (TLS early
// data, which Caddy's HTTP/3 listener accepts). Early data is sent before
// the handshake completes, so an attacker who captured it can replay it; a
// server must make each ticket usable for 0-RTT at most once (RFC 8446,
// section 8).
const (
	// EarlyDataOnce (the default): 0-RTT only on tickets a session store
	// makes single-use across its scope (the store claims each session's
	// early data once). Stateless tickets carry no early data.
	EarlyDataOnce = "once"
	// EarlyDataReplayable: stateless tickets carry 0-RTT too, and any of
	// them can be replayed as early data as often as an attacker likes
	// until it expires. Only for sites whose 0-RTT requests are all safe
	// to repeat (with early_data_guard answering 425 to the rest).
	EarlyDataReplayable = "replayable"
	// EarlyDataOff: no ticket carries 0-RTT.
	EarlyDataOff = "off"
)

// earlyDataMode is the parsed early_data option.
type earlyDataMode uint8

const (
	earlyDataOnce earlyDataMode = iota
	earlyDataReplayable
	earlyDataOff
)

var earlyDataNames = [...]string{earlyDataOnce: EarlyDataOnce, earlyDataReplayable: EarlyDataReplayable, earlyDataOff: EarlyDataOff}

func parseEarlyDataMode(s string) (earlyDataMode, error) {
	switch s {
	case "", EarlyDataOnce:
		return earlyDataOnce, nil
	case EarlyDataReplayable:
		return earlyDataReplayable, nil
	case EarlyDataOff:
		return earlyDataOff, nil
	}
	return 0, fmt.Errorf("early_data: unknown value %q (want %s, %s or %s)", s, EarlyDataOnce, EarlyDataReplayable, EarlyDataOff)
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
