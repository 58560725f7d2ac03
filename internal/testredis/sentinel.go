package testredis

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StartSentinel launches a Redis Sentinel on a free port monitoring master
// under masterName with a quorum of one. It notices a dead master after
// downAfterMs milliseconds and fails over to a replica.
func StartSentinel(masterName string, master *Server, downAfterMs int) (*Server, error) {
	return startOnFreePort("testredis-sentinel-", "redis sentinel", nil, func(dir string, port int) ([]string, error) {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		// Sentinel rewrites its config file, so it gets its own.
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s 3000\n",
			port, dir, filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)),
			masterName, master.Port, masterName, downAfterMs, masterName)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return nil, err
		}
		return []string{conf, "--sentinel"}, nil
	})
}

// MustSentinel is StartSentinel stopped when the test ends.
func MustSentinel(t testing.TB, masterName string, master *Server, downAfterMs int) *Server {
	t.Helper()
	s, err := StartSentinel(masterName, master, downAfterMs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
