package earlydata

import (
	"net"
	"sync"
	"testing"
	"time"
)

// latencyRelay is a UDP relay between QUIC clients and a server that delays
// every datagram from the server to the client by a fixed time, like a long
// network path. It makes 0-RTT deterministic on loopback: the client cannot
// finish its handshake before it has received the server's first flight, so
// anything it sends within that delay travels as 0-RTT early data, and the
// server handles it before the client's Finished can possibly arrive
// (at least twice the delay after the ClientHello).
type latencyRelay struct {
	t      testing.TB
	conn   *net.UDPConn // client-facing socket
	target *net.UDPAddr
	delay  time.Duration

	mu    sync.Mutex
	peers map[string]*net.UDPConn // client address → socket towards the server
}

type delayedPacket struct {
	data []byte
	due  time.Time
}

// newLatencyRelay starts a relay on 127.0.0.1 in front of target and returns
// it; it stops at the end of the test.
func newLatencyRelay(t testing.TB, target string, delay time.Duration) *latencyRelay {
	t.Helper()
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &latencyRelay{t: t, conn: conn, target: taddr, delay: delay, peers: map[string]*net.UDPConn{}}
	t.Cleanup(r.close)
	go r.forward()
	return r
}

// Addr is the address clients dial instead of the server's.
func (r *latencyRelay) Addr() string { return r.conn.LocalAddr().String() }

func (r *latencyRelay) close() {
	r.conn.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, up := range r.peers {
		up.Close()
	}
}

// forward passes client datagrams to the server without delay.
func (r *latencyRelay) forward() {
	buf := make([]byte, 64<<10)
	for {
		n, client, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up, err := r.upstream(client)
		if err != nil {
			r.t.Logf("relay: %v", err)
			continue
		}
		_, _ = up.Write(buf[:n])
	}
}

// upstream returns the socket towards the server for a client, creating it
// (and the goroutines that carry the server's answers back) on first use.
func (r *latencyRelay) upstream(client *net.UDPAddr) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up, ok := r.peers[client.String()]; ok {
		return up, nil
	}
	up, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return nil, err
	}
	r.peers[client.String()] = up
	queue := make(chan delayedPacket, 1024)
	go func() { // server → queue
		defer close(queue)
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			queue <- delayedPacket{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(r.delay)}
		}
	}()
	go func() { // queue → client, in order, each packet at its due time
		for p := range queue {
			time.Sleep(time.Until(p.due))
			if _, err := r.conn.WriteToUDP(p.data, client); err != nil {
				return
			}
		}
	}()
	return up, nil
}
