package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows what the benchmark is doing. On a terminal it redraws one
// status line twice a second (step, what runs, elapsed, connections and
// rate so far, time left for the whole run); elsewhere (CI logs) it prints
// one line as each step starts.
type progress struct {
	w        io.Writer
	live     bool
	total    int           // steps in the whole run
	stepTime time.Duration // expected length of one step, for the estimate

	mu      sync.Mutex
	step    int
	label   string
	started time.Time
	length  time.Duration
	count   *atomic.Int64
	stop    chan struct{}
	stopped chan struct{}
}

func newProgress(w io.Writer, total int) *progress {
	live := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			live = true
		}
	}
	return &progress{w: w, live: live, total: total}
}

// begin starts a step expected to take length; count, if not nil, is read
// for the connection count and rate.
func (p *progress) begin(label string, length time.Duration, count *atomic.Int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.step++
	p.label, p.started, p.length, p.count = label, time.Now(), length, count
	p.stepTime = length
	p.mu.Unlock()
	if !p.live {
		fmt.Fprintf(p.w, "[%d/%d] %s\n", p.step, p.total, label)
		return
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := time.Since(p.started)
	line := fmt.Sprintf("[%d/%d] %s  %s/%s", p.step, p.total, p.label, el.Round(100*time.Millisecond), p.length)
	if p.count != nil {
		n := p.count.Load()
		line += fmt.Sprintf("  %d connections  %.0f/s", n, float64(n)/el.Seconds())
	}
	left := time.Duration(p.total-p.step)*p.stepTime + max(p.length-el, 0)
	line += fmt.Sprintf("  ~%s left", left.Round(time.Second))
	fmt.Fprint(p.w, "\r\033[K"+line)
}

// end finishes the current step.
func (p *progress) end() {
	if p == nil || !p.live {
		return
	}
	close(p.stop)
	<-p.stopped
}
