package docs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// docFiles returns the Markdown files whose examples are tested, relative to
// the repository root: README.md, xcaddy.md and docs/*.md.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "xcaddy.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(more)
	for _, m := range more {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

// fixtures are the secrets and certificates examples are given.
type fixtures struct {
	set    *pki.Set
	kek    string // TLS_RESUME_KEK
	oldKEK string // /etc/caddy/kek.old
}

// suppliedEnv are the environment variables an example may use, as
// {env.NAME} or {$NAME}.
var suppliedEnv = map[string]func(*fixtures) string{
	"TLS_RESUME_KEK": func(f *fixtures) string { return f.kek },
}

// suppliedFiles are the files an example may name under /etc/caddy/.
var suppliedFiles = map[string]func(*fixtures) []byte{
	// the CA that issues client certificates (a trust_pool file)
	"clients-ca.pem": func(f *fixtures) []byte { return f.set.Root.CertPEM() },
	// the proxy's own client certificate and key towards upstreams
	// (http_resume's tls_client_auth)
	"edge.pem": func(f *fixtures) []byte { return f.set.ClientA.CertPEM() },
	"edge.key": func(f *fixtures) []byte { return f.set.ClientA.KeyPEM() },
	// a previous KEK ({file./etc/caddy/kek.old} in kek_previous)
	"kek.old": func(f *fixtures) []byte { return []byte(f.oldKEK + "\n") },
}

// rewrittenPrefixes are the absolute path prefixes mapped into the
// example's temporary directory before `caddy validate`.
var rewrittenPrefixes = []string{"/etc/caddy/", "/var/lib/"}

var (
	envRef     = regexp.MustCompile(`\{(?:env\.|\$)([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}`)
	etcCaddyRe = regexp.MustCompile(`/etc/caddy/([A-Za-z0-9._-]+)`)
)

// checker runs the checks of one example with the plugin's Caddy.
type checker struct {
	bin string
	fx  *fixtures
}

var (
	checkerOnce sync.Once
	sharedCheck *checker
	checkerErr  error
)

// newChecker builds cmd/caddy (once per test process) and generates the
// fixtures: a PKI and two KEKs from `caddy tls-resume keygen`.
func newChecker(t *testing.T) *checker {
	t.Helper()
	bin := harness.BuildCaddy(t)
	checkerOnce.Do(func() {
		set, err := pki.NewSet(pki.ECDSAP256)
		if err != nil {
			checkerErr = err
			return
		}
		fx := &fixtures{set: set}
		for _, k := range []*string{&fx.kek, &fx.oldKEK} {
			out, err := exec.Command(bin, "tls-resume", "keygen").Output()
			if err != nil {
				checkerErr = fmt.Errorf("caddy tls-resume keygen: %v", err)
				return
			}
			*k = strings.TrimSpace(string(out))
		}
		sharedCheck = &checker{bin: bin, fx: fx}
	})
	if checkerErr != nil {
		t.Fatal(checkerErr)
	}
	return sharedCheck
}

// check runs every check that applies to ex in dir (an empty directory of
// its own) and returns what failed.
func (c *checker) check(ctx context.Context, dir string, ex example) error {
	env, err := c.prepare(dir, ex)
	if err != nil {
		return err
	}
	var errs []error
	switch ex.kind {
	case caddyfileWhole, caddyfileFragment:
		if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(ex.text), 0o644); err != nil {
			return err
		}
		if out, err := c.run(ctx, dir, env, "fmt", "Caddyfile"); err != nil {
			errs = append(errs, fmt.Errorf("caddy fmt: %v\n%s\n`caddy fmt` would write:\n%s", err, out.stderr, out.stdout))
		}
		if ex.kind == caddyfileFragment {
			break
		}
		out, err := c.run(ctx, dir, env, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile")
		if err != nil {
			errs = append(errs, fmt.Errorf("caddy adapt: %v\n%s", err, out.stderr))
			break // validate would fail the same way
		}
		for _, l := range strings.Split(out.stderr, "\n") {
			if strings.Contains(l, `"level":"warn"`) && !strings.Contains(l, "Caddyfile input is not formatted") {
				errs = append(errs, fmt.Errorf("caddy adapt warns: %s", l))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(rewritePaths(ex.text, dir)), 0o644); err != nil {
			return err
		}
		if out, err := c.run(ctx, dir, env, "validate", "--config", "Caddyfile", "--adapter", "caddyfile"); err != nil {
			errs = append(errs, fmt.Errorf("caddy validate (paths under %s): %v\n%s", dir, err, lastLines(out.stderr, 5)))
		}
	case jsonConfig:
		if err := os.WriteFile(filepath.Join(dir, "caddy.json"), []byte(rewritePaths(ex.text, dir)), 0o644); err != nil {
			return err
		}
		if out, err := c.run(ctx, dir, env, "validate", "--config", "caddy.json"); err != nil {
			errs = append(errs, fmt.Errorf("caddy validate (paths under %s): %v\n%s", dir, err, lastLines(out.stderr, 5)))
		}
	}
	return errors.Join(errs...)
}

// prepare writes the files ex names under dir/etc/caddy, creates dir/var/lib
// and returns the environment of the caddy commands: HOME and the XDG
// directories inside dir, and the variables ex uses.
func (c *checker) prepare(dir string, ex example) ([]string, error) {
	var missing []string
	env := append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		"XDG_DATA_HOME="+filepath.Join(dir, "home", "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "home", "config"),
	)
	for _, m := range envRef.FindAllStringSubmatch(ex.text, -1) {
		val, ok := suppliedEnv[m[1]]
		if !ok {
			missing = append(missing, fmt.Sprintf("environment variable %s (add it to suppliedEnv)", m[1]))
			continue
		}
		env = append(env, m[1]+"="+val(c.fx))
	}
	if err := os.MkdirAll(filepath.Join(dir, "var", "lib"), 0o755); err != nil {
		return nil, err
	}
	for _, m := range etcCaddyRe.FindAllStringSubmatch(ex.text, -1) {
		content, ok := suppliedFiles[m[1]]
		if !ok {
			missing = append(missing, fmt.Sprintf("file %s (add it to suppliedFiles)", m[0]))
			continue
		}
		p := filepath.Join(dir, "etc", "caddy", m[1])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, content(c.fx), 0o600); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the example names what the test cannot supply: %s", strings.Join(missing, "; "))
	}
	return env, nil
}

// rewritePaths maps /etc/caddy/ and /var/lib/ into dir.
func rewritePaths(text, dir string) string {
	for _, p := range rewrittenPrefixes {
		text = strings.ReplaceAll(text, p, filepath.Join(dir, p)+"/")
	}
	return text
}

type output struct{ stdout, stderr string }

func (c *checker) run(ctx context.Context, dir string, env []string, args ...string) (output, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return output{o.String(), e.String()}, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDocExamples checks every example of README.md, xcaddy.md and
// docs/*.md (see the package documentation for what counts as one).
func TestDocExamples(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker(t)
	count := map[kind]int{}
	for _, file := range docFiles(t, root) {
		doc, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		exs, errs := extract(file, string(doc))
		for _, err := range errs {
			t.Error(err)
		}
		for _, ex := range exs {
			count[ex.kind]++
			t.Run(ex.name(), func(t *testing.T) {
				t.Parallel()
				if err := c.check(t.Context(), t.TempDir(), ex); err != nil {
					t.Errorf("%s example at %s:\n%s\n--- the example:\n%s", ex.kind, ex.name(), err, ex.text)
				}
			})
		}
	}
	t.Logf("examples: %d Caddyfiles, %d Caddyfile fragments, %d JSON configs",
		count[caddyfileWhole], count[caddyfileFragment], count[jsonConfig])
	// README, xcaddy.md and docs/tls_resume.md each have at least one; fewer
	// means the extraction broke, not that the docs are fine.
	if count[caddyfileWhole] < 3 {
		t.Errorf("only %d whole Caddyfile examples found", count[caddyfileWhole])
	}
}
