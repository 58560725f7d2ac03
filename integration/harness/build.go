package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RootModule is the module path of the plugin, whose repository BuildCaddy
// builds from.
const RootModule = "github.com/tlsresume/caddy-tlsresume"

// RepoRoot returns the root of the plugin's repository: two directories above
// this source file, checked by reading the module line of its go.mod.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("harness: cannot locate harness source file")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("harness: repository root: %w", err)
	}
	first, _, _ := strings.Cut(string(mod), "\n")
	if strings.TrimSpace(first) != "module "+RootModule {
		return "", fmt.Errorf("harness: %s/go.mod is %q, not module %s", root, first, RootModule)
	}
	return root, nil
}

// buildDir is integration/.build in the repository (ignored by git).
func buildDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "integration", ".build"), nil
}

var (
	procDirOnce sync.Once
	procDir     string
	procDirErr  error
)

// ProcessDir returns this test process's private directory,
// integration/.build/proc/<pid>. It holds the process's copy of the Caddy
// binary and the in-process Caddy's data. Directories of processes that no
// longer run are removed the first time ProcessDir is called.
func ProcessDir() (string, error) {
	procDirOnce.Do(func() {
		base, err := buildDir()
		if err != nil {
			procDirErr = err
			return
		}
		parent := filepath.Join(base, "proc")
		removeDeadProcessDirs(parent)
		procDir = filepath.Join(parent, strconv.Itoa(os.Getpid()))
		procDirErr = os.MkdirAll(procDir, 0o755)
	})
	return procDir, procDirErr
}

func removeDeadProcessDirs(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// signal 0 checks for existence; ESRCH means the process is gone
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// BuildCaddy builds cmd/caddy (standard Caddy plus this plugin) once per
// test process and returns the path of the binary. The build runs from the
// repository root into integration/.build/caddy under a file lock, so
// parallel test processes do not link at the same time and an unchanged tree
// costs no relinking; each process then runs its own hard-linked copy, which
// a later rebuild by another process cannot change under it.
func BuildCaddy(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildBin, buildErr = buildCaddy() })
	if buildErr != nil {
		t.Fatalf("harness: building cmd/caddy: %v", buildErr)
	}
	return buildBin
}

func buildCaddy() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	base, err := buildDir()
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(base, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(base, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	shared := filepath.Join(base, "caddy")
	// go test puts its own GOROOT/bin first in PATH, so this is the go
	// command running the tests.
	cmd := exec.Command("go", "build", "-o", shared, "./cmd/caddy")
	cmd.Dir = root
	// GOTMPDIR on the same file system as the output makes the go command
	// move the new binary into place with a rename, which never disturbs a
	// process still running the old one.
	cmd.Env = append(os.Environ(), "GOTMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy in %s: %v\n%s", root, err, out.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		fmt.Fprintf(os.Stderr, "harness: built cmd/caddy in %s\n", d.Round(time.Second))
	}

	dir, err := ProcessDir()
	if err != nil {
		return "", err
	}
	own := filepath.Join(dir, "caddy")
	os.Remove(own)
	if err := os.Link(shared, own); err != nil {
		if err := copyFile(own, shared); err != nil {
			return "", err
		}
	}
	return own, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lockFile takes an exclusive flock on path, waiting for other holders.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
