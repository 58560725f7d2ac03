package harness

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// GlobalOptions returns the options set in a Caddyfile's global options
// block, keyed by option name, each with its arguments on the option's first
// line (for `storage file_system /x` that is ["file_system", "/x"]). A
// Caddyfile without a global block yields an empty map.
func GlobalOptions(caddyfileText string) (map[string][]string, error) {
	blocks, err := caddyfile.Parse("Caddyfile", []byte(caddyfileText))
	if err != nil {
		return nil, fmt.Errorf("parsing Caddyfile: %w", err)
	}
	opts := map[string][]string{}
	if len(blocks) == 0 || len(blocks[0].Keys) > 0 {
		return opts, nil
	}
	for _, seg := range blocks[0].Segments {
		if len(seg) == 0 {
			continue
		}
		var args []string
		for _, tok := range seg[1:] {
			if tok.Line != seg[0].Line || tok.Text == "{" {
				break
			}
			args = append(args, tok.Text)
		}
		opts[seg.Directive()] = args
	}
	return opts, nil
}

// AddGlobalOptions returns caddyfileText with each of options (whole option
// lines such as "admin localhost:2999" or "skip_install_trust") added to its
// global options block, unless the block already sets an option of that name.
// A global block is created when there is none. The opening brace of an
// existing global block must end its line (as `caddy fmt` writes it).
func AddGlobalOptions(caddyfileText string, options ...string) (string, error) {
	existing, err := GlobalOptions(caddyfileText)
	if err != nil {
		return "", err
	}
	var add []string
	for _, o := range options {
		name, _, _ := strings.Cut(strings.TrimSpace(o), " ")
		if name == "" {
			continue
		}
		if _, ok := existing[name]; !ok {
			add = append(add, "\t"+strings.TrimSpace(o))
		}
	}
	if len(add) == 0 {
		return caddyfileText, nil
	}
	toks, err := caddyfile.Tokenize([]byte(caddyfileText), "Caddyfile")
	if err != nil {
		return "", fmt.Errorf("tokenizing Caddyfile: %w", err)
	}
	if len(toks) == 0 || toks[0].Text != "{" {
		// no global block: prepend one
		return "{\n" + strings.Join(add, "\n") + "\n}\n\n" + caddyfileText, nil
	}
	braceLine := toks[0].Line
	if len(toks) > 1 && toks[1].Line == braceLine {
		return "", fmt.Errorf("harness: the global options block's '{' must end its line (line %d) so options can be added", braceLine)
	}
	lines := strings.SplitAfter(caddyfileText, "\n")
	if braceLine < 1 || braceLine > len(lines) {
		return "", fmt.Errorf("harness: global block brace on line %d of a %d-line Caddyfile", braceLine, len(lines))
	}
	head := strings.Join(lines[:braceLine], "")
	if !strings.HasSuffix(head, "\n") {
		head += "\n"
	}
	return head + strings.Join(add, "\n") + "\n" + strings.Join(lines[braceLine:], ""), nil
}

// jsonDefaults are the values SetJSONDefaults fills into a JSON config.
type jsonDefaults struct {
	adminListen string // admin.listen
	noPersist   bool   // admin.config.persist = false
	storageRoot string // storage = file_system at this root
	httpPort    int    // apps.http.http_port, when the http app is configured
	httpsPort   int    // apps.http.https_port, likewise
}

// setJSONDefaults fills the fields of d into a JSON config where the config
// leaves them unset. It returns the admin listen address the config ends up
// with.
func setJSONDefaults(raw string, d jsonDefaults) (string, string, error) {
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return "", "", fmt.Errorf("harness: config is not a JSON object: %w", err)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	admin := childObject(cfg, "admin")
	if d.adminListen != "" {
		if _, ok := admin["listen"]; !ok {
			admin["listen"] = d.adminListen
		}
	}
	if d.noPersist {
		ac := childObject(admin, "config")
		if _, ok := ac["persist"]; !ok {
			ac["persist"] = false
		}
	}
	if d.storageRoot != "" {
		if _, ok := cfg["storage"]; !ok {
			cfg["storage"] = map[string]any{"module": "file_system", "root": d.storageRoot}
		}
	}
	if apps, ok := cfg["apps"].(map[string]any); ok {
		if httpApp, ok := apps["http"].(map[string]any); ok {
			if _, set := httpApp["http_port"]; !set && d.httpPort != 0 {
				httpApp["http_port"] = d.httpPort
			}
			if _, set := httpApp["https_port"]; !set && d.httpsPort != 0 {
				httpApp["https_port"] = d.httpsPort
			}
		}
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return "", "", err
	}
	listen, _ := admin["listen"].(string)
	return string(out), listen, nil
}

func childObject(parent map[string]any, key string) map[string]any {
	if m, ok := parent[key].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	parent[key] = m
	return m
}
