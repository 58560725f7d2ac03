package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// pluginModules returns the IDs of the modules registered in this process
// (the harness imports the plugin's root package) by the plugin's packages.
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

var (
	// a row of xcaddy.md's module table: | `module.id` | what it is |
	tableRow = regexp.MustCompile("^\\| `([a-z0-9_.]+)` \\|")
	// the verification command: ./caddy list-modules | grep -E '...'
	grepCmd = regexp.MustCompile(`list-modules \| grep -E '([^']+)'`)
)

// TestXcaddyModuleTable checks xcaddy.md's "Verifying a build": its
// list-modules | grep command, run on the built binary, prints exactly the
// modules of its table, and those are every module the plugin registers.
func TestXcaddyModuleTable(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "xcaddy.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table []string
	var pattern string
	for _, l := range strings.Split(string(doc), "\n") {
		if m := tableRow.FindStringSubmatch(l); m != nil {
			table = append(table, m[1])
		}
		if m := grepCmd.FindStringSubmatch(l); m != nil {
			pattern = m[1]
		}
	}
	sort.Strings(table)
	if ours := pluginModules(t); !reflect.DeepEqual(table, ours) {
		t.Errorf("xcaddy.md's module table lists\n  %v\nthe plugin registers\n  %v", table, ours)
	}

	if pattern == "" {
		t.Fatal("xcaddy.md has no `./caddy list-modules | grep -E '...'` command")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("xcaddy.md's grep pattern %q: %v", pattern, err)
	}
	out, err := exec.Command(harness.BuildCaddy(t), "list-modules").Output()
	if err != nil {
		t.Fatalf("caddy list-modules: %v", err)
	}
	var printed []string
	for _, l := range strings.Split(string(out), "\n") {
		if re.MatchString(l) {
			printed = append(printed, strings.TrimSpace(l))
		}
	}
	sort.Strings(printed)
	if !reflect.DeepEqual(printed, table) {
		t.Errorf("`caddy list-modules | grep -E '%s'` prints\n  %v\nxcaddy.md's table lists\n  %v", pattern, printed, table)
	}
}
