package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func TestClusterOfTwo(t *testing.T) {
	c := harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\trespond %q\n}\n", n.Port(), "hello from "+n.Name)
	})
	answers := func(n *harness.Node) error {
		got, err := httpGet(fmt.Sprintf("http://%s/", n.Addr()))
		if err != nil {
			return err
		}
		if got != "hello from "+n.Name {
			return fmt.Errorf("%s answered %q", n.Name, got)
		}
		return nil
	}
	for _, n := range c.Nodes {
		if err := answers(n); err != nil {
			t.Fatal(err)
		}
		// each node runs with the shared storage and its own admin address
		body, err := httpGet(n.AdminURL("/config/"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Admin struct {
				Listen string `json:"listen"`
			} `json:"admin"`
			Storage struct {
				Module string `json:"module"`
				Root   string `json:"root"`
			} `json:"storage"`
		}
		if err := json.Unmarshal([]byte(body), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Admin.Listen != n.AdminAddr || cfg.Storage.Module != "file_system" || cfg.Storage.Root != c.StorageDir {
			t.Errorf("%s runs with admin %q storage %+v; want admin %s and storage %s", n.Name, cfg.Admin.Listen, cfg.Storage, n.AdminAddr, c.StorageDir)
		}
	}
	if c.Node(0).AdminAddr == c.Node(1).AdminAddr || c.Node(0).Port() == c.Node(1).Port() {
		t.Fatal("nodes share ports")
	}

	// stop one node: it stops answering, the other keeps going
	n0, n1 := c.Node(0), c.Node(1)
	if err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	if n1.Running() {
		t.Fatal("node1 still running after Stop")
	}
	if err := answers(n1); err == nil {
		t.Fatal("a stopped node answered")
	}
	if err := answers(n0); err != nil {
		t.Fatal(err)
	}

	// crash the other one and bring both back on the same ports
	if err := n0.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := answers(n); err != nil {
			t.Fatal(err)
		}
	}

	// a new config through SetConfig and Reload
	if err := n1.SetConfig(fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"reloaded\"\n}\n", n1.Port())); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, err := httpGet(fmt.Sprintf("http://%s/", n1.Addr())); err != nil || got != "reloaded" {
		t.Fatalf("after reload node1 answered %q, %v", got, err)
	}
	if err := n1.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := httpGet(fmt.Sprintf("http://%s/", n1.Addr())); err != nil || got != "reloaded" {
		t.Fatalf("after restart node1 answered %q, %v", got, err)
	}

	// every run is in the node's log
	if runs := strings.Count(n1.Log(), "=== harness: run "); runs != 3 {
		t.Errorf("node1's log records %d runs, want 3:\n%s", runs, n1.LogTail(20))
	}
	if !strings.Contains(n0.Log(), "serving initial configuration") {
		t.Errorf("node0's log lacks Caddy's output:\n%s", n0.LogTail(20))
	}
}

func TestClusterNodeThatCannotStart(t *testing.T) {
	c := harness.NewCluster(t, 1, func(n harness.NodeInfo) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\tno_such_directive\n}\n", n.Port())
	})
	err := c.Node(0).Start()
	if err == nil {
		t.Fatal("a node with a broken config started")
	}
	if !strings.Contains(err.Error(), "exited during startup") || !strings.Contains(err.Error(), "no_such_directive") {
		t.Errorf("error does not say why: %v", err)
	}
}
