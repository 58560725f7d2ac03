package smoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// designModuleIDs are the module IDs the plugin promises (README.md, xcaddy.md).
var designModuleIDs = []string{
	"tls_resume",
	"admin.api.tls_resume",
	"http.handlers.early_data_guard",
	"http.matchers.client_cert",
	"tls.client_auth.verifier.client_cert",
	"http.reverse_proxy.transport.http_resume",
}

// pluginModules returns the IDs of every module registered in this process
// (the harness imports the plugin's root package) by a package of the plugin.
func pluginModules(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, id := range caddy.Modules() {
		mod, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(mod.New())
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if strings.HasPrefix(typ.PkgPath(), harness.RootModule+"/") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func runBinary(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	bin := harness.BuildCaddy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy %s: %v\n%s%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

func TestBinaryListsPluginModules(t *testing.T) {
	out, _ := runBinary(t, "list-modules")
	listed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		listed[strings.TrimSpace(line)] = true
	}

	ours := pluginModules(t)
	if len(ours) == 0 {
		t.Fatal("no module of the plugin is registered in-process")
	}
	t.Logf("plugin modules: %v", ours)
	for _, id := range ours {
		if !listed[id] {
			t.Errorf("module %s is registered by the plugin but missing from `caddy list-modules`", id)
		}
	}
	// Every promised module that exists must be the plugin's own.
	registered := map[string]bool{}
	for _, id := range ours {
		registered[id] = true
	}
	for _, id := range designModuleIDs {
		if _, err := caddy.GetModule(id); err != nil {
			t.Logf("promised module %s is not registered yet", id)
			continue
		}
		if !registered[id] {
			t.Errorf("module %s is registered, but not by the plugin's packages", id)
		}
	}
	// the module everything else hangs on
	if !listed["tls_resume"] {
		t.Error("the tls_resume app is missing from `caddy list-modules`")
	}
}

func TestBinaryKeygen(t *testing.T) {
	re := regexp.MustCompile(`\A[A-Za-z0-9+/]{43}=\n\z`)
	a, errA := runBinary(t, "tls-resume", "keygen")
	b, _ := runBinary(t, "tls-resume", "keygen")
	for _, out := range []string{a, b} {
		if !re.MatchString(out) {
			t.Fatalf("caddy tls-resume keygen printed %q", out)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
		if err != nil || len(raw) != 32 {
			t.Fatalf("KEK %q: %d bytes, %v", out, len(raw), err)
		}
	}
	if a == b {
		t.Error("two keygen runs printed the same key")
	}
	if errA != "" {
		t.Errorf("keygen wrote to stderr: %q", errA)
	}
}
