// Package caddyfilex holds the small Caddyfile parsing helpers the modules
// of this plugin share: refusing an option given twice in a block, and
// reading one positive duration (into one of several fields) or count.
package caddyfilex

import (
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// OptionSet remembers the options of one Caddyfile block, so that an option
// given twice is refused. The zero value is not usable; call NewOptionSet.
type OptionSet struct {
	format     string
	args       []any
	repeatable []string
	seen       map[string]bool
}

// NewOptionSet returns an empty set whose error for a repeated option is
// fmt.Sprintf(format, args..., opt): the format's last verb takes the
// option name, e.g. NewOptionSet("tls_resume: duplicate option %q").
func NewOptionSet(format string, args ...any) *OptionSet {
	return &OptionSet{format: format, args: args, seen: make(map[string]bool)}
}

// Repeatable lets opts be given any number of times; it returns s.
func (s *OptionSet) Repeatable(opts ...string) *OptionSet {
	s.repeatable = append(s.repeatable, opts...)
	return s
}

// Once records opt and returns an error at d's position if opt was seen
// before and is not repeatable.
func (s *OptionSet) Once(d *caddyfile.Dispenser, opt string) error {
	if s.seen[opt] && !slices.Contains(s.repeatable, opt) {
		return d.Errf(s.format, append(slices.Clip(s.args), opt)...)
	}
	s.seen[opt] = true
	return nil
}

// PositiveDuration reads the one remaining argument of the current line as
// a Caddy duration (Go syntax, or a number of days such as "2d") greater
// than zero. Errors start with "<module>: <opt>", e.g.
// `tls_resume: ticket_lifetime: must be positive, got "-5m"`.
func PositiveDuration(d *caddyfile.Dispenser, module, opt string) (time.Duration, error) {
	var val string
	if !d.AllArgs(&val) {
		return 0, d.Errf("%s: %s takes exactly one duration", module, opt)
	}
	dur, err := caddy.ParseDuration(val)
	if err != nil {
		return 0, d.Errf("%s: %s: invalid duration %q: %v", module, opt, val, err)
	}
	if dur <= 0 {
		return 0, d.Errf("%s: %s: must be positive, got %q", module, opt, val)
	}
	return dur, nil
}

// PositiveDurationInto reads opt's duration as PositiveDuration does and
// stores it in fields[opt], for a block with several duration options.
func PositiveDurationInto(d *caddyfile.Dispenser, module, opt string, fields map[string]*caddy.Duration) (time.Duration, error) {
	dur, err := PositiveDuration(d, module, opt)
	if err != nil {
		return 0, err
	}
	*fields[opt] = caddy.Duration(dur)
	return dur, nil
}

// PositiveInt reads the one remaining argument of the current line as a
// decimal integer greater than zero. Errors start with "<module>: <opt>",
// e.g. `session_store memory: max_entries: must be a positive integer, got "0"`.
func PositiveInt(d *caddyfile.Dispenser, module, opt string) (int, error) {
	var val string
	if !d.AllArgs(&val) {
		return 0, d.Errf("%s: %s takes exactly one number", module, opt)
	}
	n, err := strconv.Atoi(val)
	if err != nil || n <= 0 {
		return 0, d.Errf("%s: %s: must be a positive integer, got %q", module, opt, val)
	}
	return n, nil
}
