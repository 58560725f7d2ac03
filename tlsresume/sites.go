package tlsresume

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// SitePolicy is the resumption policy of some host names, overriding the
// app's for them: a shorter ticket lifetime for high-risk sites, or no
// resumption at all. A ticket issued under one site policy opens only
// under the same one (the policy is bound into the ticket), so a session
// of a lenient site never resumes on a strict one, even with
// resume_across_hosts.
type SitePolicy struct {
	// Host names (SNI) this policy applies to: exact names or one
	// leading wildcard label (`*.example.com`), case-insensitive, as
	// Caddy's `sni` connection matcher takes them. Required.
	Hosts []string `json:"hosts,omitempty"`

	// How long a session of these hosts may resume after the client's
	// last full handshake; at most the app's ticket_lifetime (ticket keys
	// are kept only as long as that one needs). Default: the app's.
	TicketLifetime caddy.Duration `json:"ticket_lifetime,omitempty"`

	// `off` turns session resumption off for these hosts: every
	// connection is a full handshake (clients get tickets that never
	// open when the connection policy also serves other hosts). `on` (or
	// empty) keeps it.
	Resumption string `json:"resumption,omitempty"`
}

// Values of SitePolicy.Resumption.
const (
	resumptionOn  = "on"
	resumptionOff = "off"
)

// siteRule is a validated SitePolicy.
type siteRule struct {
	lifetime int64 // seconds
	off      bool
	// tag binds tickets to the rule: it is part of the tickets' associated
	// data, so a ticket of one rule opens under no other.
	tag [8]byte
}

// siteRules resolves the site policy of an SNI.
type siteRules struct {
	exact    map[string]*siteRule
	wildcard map[string]*siteRule // by the suffix after "*."
	def      *siteRule
}

// newSiteRules validates the site policies against the app's lifetime.
func newSiteRules(sites []SitePolicy, lifetime time.Duration) (*siteRules, error) {
	rs := &siteRules{def: &siteRule{lifetime: int64(lifetime / time.Second)}}
	for i, sp := range sites {
		where := fmt.Sprintf("sites[%d]", i)
		if len(sp.Hosts) == 0 {
			return nil, fmt.Errorf("%s: hosts: at least one host name is required", where)
		}
		r := &siteRule{lifetime: rs.def.lifetime}
		switch sp.Resumption {
		case "", resumptionOn:
		case resumptionOff:
			r.off = true
		default:
			return nil, fmt.Errorf("%s: resumption: %q is neither %s nor %s", where, sp.Resumption, resumptionOn, resumptionOff)
		}
		if lt := time.Duration(sp.TicketLifetime); lt != 0 {
			switch {
			case lt < time.Second:
				return nil, fmt.Errorf("%s: ticket_lifetime: %s is below the one-second resolution of tickets", where, lt)
			case lt > lifetime:
				return nil, fmt.Errorf("%s: ticket_lifetime: %s exceeds the app's ticket_lifetime %s: ticket keys are kept only as long as that one needs; raise it", where, lt, lifetime)
			}
			r.lifetime = int64(lt / time.Second)
		}
		h := sha256.New()
		h.Write([]byte("caddy-tlsresume site v1\x00"))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.lifetime)))
		if r.off {
			h.Write([]byte{1})
		}
		for _, host := range sp.Hosts {
			host = strings.ToLower(strings.TrimSpace(host))
			name, wild := strings.CutPrefix(host, "*.")
			if name == "" || strings.ContainsAny(name, "*/: ") {
				return nil, fmt.Errorf("%s: hosts: %q is not a host name or a *.wildcard", where, host)
			}
			m := &rs.exact
			if wild {
				m = &rs.wildcard
			}
			if *m == nil {
				*m = make(map[string]*siteRule)
			}
			if _, dup := (*m)[name]; dup {
				return nil, fmt.Errorf("%s: hosts: %q is in more than one site policy", where, host)
			}
			(*m)[name] = r
			h.Write([]byte(host + "\x00"))
		}
		copy(r.tag[:], h.Sum(nil))
	}
	return rs, nil
}

// rule returns the policy of sni: an exact name first, then the longest
// wildcard (one label), then the app's.
func (rs *siteRules) rule(sni string) *siteRule {
	if rs.exact == nil && rs.wildcard == nil {
		return rs.def
	}
	var buf [maxSNILen]byte
	name := appendLowerASCII(buf[:0], sni)
	if r, ok := rs.exact[string(name)]; ok { // no allocation for the lookup
		return r
	}
	if i := indexByte(name, '.'); i >= 0 && rs.wildcard != nil {
		if r, ok := rs.wildcard[string(name[i+1:])]; ok {
			return r
		}
	}
	return rs.def
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}
