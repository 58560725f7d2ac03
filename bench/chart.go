package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chartColors are the bar colours of the servers, in report order.
var chartColors = []string{"#1f77b4", "#9e9e9e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// chartSVG draws handshakes per second (median of rounds) as grouped bars:
// one group per cell (chain, TLS version, mode), one bar per server.
func (r *report) chartSVG() string {
	const (
		width, height            = 1000, 460
		left, right, top, bottom = 70, 20, 60, 80
	)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	servers := r.res.Servers
	var peak float64
	for _, c := range r.cells {
		for _, s := range servers {
			peak = math.Max(peak, r.agg(c, s.ID).hs)
		}
	}
	step := niceStep(peak / 5)
	yMax := math.Max(step, math.Ceil(peak/step)*step)
	y := func(v float64) float64 { return float64(top) + plotH*(1-v/yMax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="16" font-weight="bold">mTLS handshakes per second, one server core (median of %d rounds)</text>`+"\n", left, r.res.Settings.Rounds)
	// legend
	x := float64(left)
	for i, s := range servers {
		fmt.Fprintf(&b, `<rect x="%.0f" y="34" width="12" height="12" fill="%s"/><text x="%.0f" y="45">%s</text>`+"\n", x, chartColors[i%len(chartColors)], x+16, html.EscapeString(s.Label))
		x += 24 + 7.5*float64(len(s.Label))
	}
	// grid and y axis
	for v := 0.0; v <= yMax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/><text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, width-right, y(v), y(v), left-6, y(v)+4, v)
	}
	// bars
	if n := len(r.cells); n > 0 && len(servers) > 0 {
		groupW := plotW / float64(n)
		barW := groupW * 0.8 / float64(len(servers))
		for ci, c := range r.cells {
			gx := float64(left) + groupW*float64(ci) + groupW*0.1
			for si, s := range servers {
				a := r.agg(c, s.ID)
				if !a.ok {
					continue
				}
				bx := gx + barW*float64(si)
				title := fmt.Sprintf("%s, %s: %.0f handshakes/s", s.Label, c, a.hs)
				if c.Resumed {
					title += fmt.Sprintf(", %.0f%% resumed", 100*a.resumed)
				}
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
					bx, y(a.hs), barW*0.92, y(0)-y(a.hs), chartColors[si%len(chartColors)], html.EscapeString(title))
			}
			cx := gx + groupW*0.4
			short := strings.NewReplacer("ECDSA P-256", "ECDSA", "RSA-2048", "RSA").Replace(c.Chain)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s TLS %s</text><text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n",
				cx, height-bottom+18, short, c.Version, cx, height-bottom+34, c.mode())
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, width-right, y(0), y(0))
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">Resumed groups: stock Caddy cannot resume mTLS sessions, so its bars there are full handshakes.</text>`+"\n", left, height-12)
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}
