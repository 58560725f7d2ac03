package tlsresume

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func TestSiteRulesValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sites []SitePolicy
		err   string
	}{
		{"no hosts", []SitePolicy{{Resumption: "off"}}, "sites[0]: hosts: at least one"},
		{"lifetime above the app's", []SitePolicy{{Hosts: []string{"a.example"}, TicketLifetime: caddy.Duration(time.Hour)}}, "sites[0]: ticket_lifetime: 1h0m0s exceeds the app's ticket_lifetime 30m0s"},
		{"lifetime below a second", []SitePolicy{{Hosts: []string{"a.example"}, TicketLifetime: caddy.Duration(time.Millisecond)}}, "one-second resolution"},
		{"bad resumption", []SitePolicy{{Hosts: []string{"a.example"}, Resumption: "maybe"}}, `resumption: "maybe" is neither on nor off`},
		{"host twice", []SitePolicy{{Hosts: []string{"a.example"}, Resumption: "off"}, {Hosts: []string{"A.example"}, Resumption: "on"}}, `sites[1]: hosts: "a.example" is in more than one`},
		{"not a host", []SitePolicy{{Hosts: []string{"a.*.example"}, Resumption: "off"}}, "is not a host name"},
		{"url", []SitePolicy{{Hosts: []string{"https://a.example"}, Resumption: "off"}}, "is not a host name"},
		{"good", []SitePolicy{{Hosts: []string{"a.example", "*.b.example"}, TicketLifetime: caddy.Duration(5 * time.Minute)}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newSiteRules(tc.sites, 30*time.Minute)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestSiteRuleLookup(t *testing.T) {
	rs, err := newSiteRules([]SitePolicy{
		{Hosts: []string{"pay.example.com", "Admin.example.com"}, TicketLifetime: caddy.Duration(5 * time.Minute)},
		{Hosts: []string{"*.public.example.com"}, Resumption: "off"},
		{Hosts: []string{"keep.public.example.com"}, Resumption: "on"},
	}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]struct {
		lifetime int64
		off      bool
	}{
		"pay.example.com":         {300, false},
		"ADMIN.example.com":       {300, false},
		"www.public.example.com":  {1800, true},
		"keep.public.example.com": {1800, false}, // exact beats wildcard
		"a.b.public.example.com":  {1800, false}, // a wildcard is one label
		"public.example.com":      {1800, false},
		"other.example.com":       {1800, false},
		"":                        {1800, false},
	} {
		r := rs.rule(sni)
		if r.lifetime != want.lifetime || r.off != want.off {
			t.Errorf("%q: lifetime %d off %v, want %+v", sni, r.lifetime, r.off, want)
		}
	}
}

// A site's tickets are bound to its policy: they never open under another
// one, even where tickets may cross hosts and the realm is the same; the
// site's lifetime applies; a site with resumption off opens none.
func TestSiteBoundTickets(t *testing.T) {
	r, _ := testRing(t)
	rs, err := newSiteRules([]SitePolicy{
		{Hosts: []string{"pay.example.com"}, TicketLifetime: caddy.Duration(5 * time.Minute)},
		{Hosts: []string{"off.example.com"}, Resumption: "off"},
	}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b := testBinding(1, true) // resume_across_hosts
	b.lifetime = 1800
	b.sites = rs
	k := r.SealingKey(t0)
	pay, _ := b.sealTicket(k, t0, t0, "pay.example.com", []byte("s"))
	www, _ := b.sealTicket(k, t0, t0, "www.example.com", []byte("s"))
	for _, tc := range []struct {
		name   string
		ticket []byte
		sni    string
		at     time.Duration
		want   rejection
	}{
		{"site ticket on its site", pay, "pay.example.com", 4 * time.Minute, accepted},
		{"past the site's lifetime", pay, "pay.example.com", 6 * time.Minute, rejectExpired},
		{"site ticket elsewhere", pay, "www.example.com", time.Minute, rejectWrongRealm},
		{"other ticket on the site", www, "pay.example.com", time.Minute, rejectWrongRealm},
		{"default ticket, default lifetime", www, "api.example.com", 20 * time.Minute, accepted},
		{"resumption off", www, "off.example.com", time.Minute, rejectDisabled},
	} {
		if _, why := b.openTicket(r, tc.ticket, t0.Add(tc.at), tc.sni); why != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, why, tc.want)
		}
	}
	pb := &policyBinding{ticketBinding: *b, rings: new(keyring.Holder), now: func() time.Time { return t0 }}
	pb.rings.Store(r)
	if tk, _ := pb.wrapSession(tlsConnState("off.example.com"), realSessionState(t)); string(tk) != string(placeholderDisabled) {
		t.Fatalf("site with resumption off got ticket %x", tk)
	}
}

func tlsConnState(sni string) tls.ConnectionState { return tls.ConnectionState{ServerName: sni} }
