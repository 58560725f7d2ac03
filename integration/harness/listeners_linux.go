package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// waitReloadSettled waits until process pid has at most one listening TCP
// socket per port. Caddy binds with SO_REUSEPORT, so during a config reload
// the old and the new server each have a socket on the same port, and the
// kernel spreads new connections over both; when the old socket closes, the
// connections still queued on it are reset. A test that connects right after
// a reload can hit that window (seen under load: "connection reset by peer"
// or an EOF before the response), so the harness waits for the old sockets
// to be gone. It gives up silently after timeout: the test then runs and
// shows whatever is wrong.
func waitReloadSettled(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		dup, err := duplicateListeners(pid)
		if err != nil || !dup {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// duplicateListeners reports whether pid has two listening TCP sockets on
// one port.
func duplicateListeners(pid int) (bool, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return false, err
	}
	ports := map[string]int{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, port, _ := strings.Cut(fields[1], ":")
			ports[table+port]++
			if ports[table+port] > 1 {
				f.Close()
				return true, nil
			}
		}
		f.Close()
	}
	return false, nil
}

// socketInodes returns the inodes of pid's open sockets.
func socketInodes(pid int) (map[string]bool, error) {
	fds, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/fd/*")
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes, nil
}
