package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// TestHTTP3Memory measures what a Caddy node keeps in its Go heap after
// closed HTTP/3 connections: the same HTTP/3 load (new connection, one
// GET, close) against stock Caddy and Caddy with tls_resume, with Caddy's
// default idle_timeout (5 minutes) and with 10 s. It explains the soak's
// RSS climb (RELIABILITY.md, "Memory"); it takes about five minutes and
// runs only with H3MEM=1 (H3MEM_DURATION changes the load's length).
//
//	H3MEM=1 go test -run TestHTTP3Memory -v -timeout 20m
func TestHTTP3Memory(t *testing.T) {
	if os.Getenv("H3MEM") == "" {
		t.Skip("set H3MEM=1: a five-minute measurement, not a test")
	}
	d := time.Minute
	if v := os.Getenv("H3MEM_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	stock, plugin, err := buildCaddys(filepath.Join(work, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	files, err := set.WriteFiles(filepath.Join(work, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := set.Intermediate.IssueClient(pki.Options{CommonName: "h3mem"})
	if err != nil {
		t.Fatal(err)
	}
	kek := "TLS_RESUME_KEK=" + base64.StdEncoding.EncodeToString(randomBytes(32))
	for _, v := range []struct {
		name, bin, idle string
		plugin          bool
	}{
		{"stock Caddy", stock, "", false},
		{"Caddy + tls_resume", plugin, "", true},
		{"stock Caddy, idle_timeout 10s", stock, "10s", false},
		{"Caddy + tls_resume, idle_timeout 10s", plugin, "10s", true},
	} {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		global := ""
		if v.plugin {
			global += "\ttls_resume {\n\t\tkek {env.TLS_RESUME_KEK}\n\t}\n"
		}
		idle := ""
		if v.idle != "" {
			idle = "\t\ttimeouts {\n\t\t\tidle " + v.idle + "\n\t\t}\n"
		}
		globals := "\tservers {\n\t\tprotocols h1 h2 h3\n" + idle + "\t}\n" + global
		config := caddyGlobals(ports[1], filepath.Join(work, "storage"), globals) +
			mtlsSiteWith(ports[0], files.ServerCert, files.ServerKey, files.CA, "\trespond \"ok\"\n")
		dir, err := os.MkdirTemp(work, "caddy-")
		if err != nil {
			t.Fatal(err)
		}
		p, err := launchCaddy(&benchEnv{dir: work}, v.name, v.bin, dir, config, "caddyfile", []string{kek})
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
		base := &tls.Config{ServerName: "localhost", RootCAs: set.Root.Pool(), Certificates: []tls.Certificate{leaf.TLSCertificate()}}
		ctx := context.Background()
		if err := p.waitTLS(ctx, addr, base); err != nil {
			p.stop()
			t.Fatal(err)
		}
		admin := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		before := heapAfterGC(t, admin)
		var conns, resumed, failed atomic.Int64
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := base.Clone()
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				for time.Now().Before(deadline) {
					res, err := h3Once(ctx, addr, ports[0], cfg.Clone(), http.MethodGet)
					conns.Add(1)
					if err != nil {
						failed.Add(1)
					} else if res.resumed {
						resumed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		after := heapAfterGC(t, admin)
		if dir := os.Getenv("H3MEM_PROFILES"); dir != "" {
			name := strings.NewReplacer(" ", "-", ",", "", "+", "plus").Replace(v.name)
			if err := fetchToFile(ctx, admin+"/debug/pprof/heap", filepath.Join(dir, "heap-"+name+".pb.gz")); err != nil {
				t.Error(err)
			}
		}
		rss, _ := procRSS(p.pid())
		time.Sleep(15 * time.Second)
		later := heapAfterGC(t, admin)
		rssLater, _ := procRSS(p.pid())
		n := conns.Load()
		t.Logf("%-38s %6d HTTP/3 connections (%d resumed, %d failed) in %s; heap in use after GC: %4d MiB before, %4d MiB after (%.1f KiB per connection), %4d MiB 15 s later; RSS %4d MiB, %4d MiB 15 s later",
			v.name, n, resumed.Load(), failed.Load(), d, before>>20, after>>20, float64(after-before)/1024/float64(n), later>>20, rss>>20, rssLater>>20)
		p.stop()
	}
}

// heapAfterGC forces a collection through Caddy's admin pprof endpoint and
// returns the heap in use it reports (runtime.MemStats.HeapInuse).
func heapAfterGC(t *testing.T, admin string) int64 {
	t.Helper()
	resp, err := http.Get(admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no HeapInuse in %s's heap profile (%v)", admin, sc.Err())
	return 0
}
