package harness

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
)

// handedOut remembers every port returned in this process so that two
// callers never get the same one, even after the first has closed its
// listener again.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// FreePort returns a port on 127.0.0.1 that is free for both TCP and UDP at
// the time of the call (so a site can serve HTTP/1.1, HTTP/2 and HTTP/3 on
// it). It fails the test when no port can be found.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

// FreePorts returns n distinct ports as FreePort does.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	return ports
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func freePort() (int, error) {
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("listening on a free TCP port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", Addr(port))
		if err != nil {
			// the TCP port is free but the UDP one is not: try another
			l.Close()
			lastErr = err
			continue
		}
		u.Close()
		l.Close()
		portsMu.Lock()
		seen := handedOut[port]
		handedOut[port] = true
		portsMu.Unlock()
		if !seen {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both TCP and UDP after 50 attempts (last: %v)", lastErr)
}
