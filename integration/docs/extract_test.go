package docs

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// kind is what the test does with an example.
type kind int

const (
	caddyfileWhole    kind = iota // fmt, adapt, validate
	caddyfileFragment             // fmt only
	jsonConfig                    // validate
)

func (k kind) String() string {
	switch k {
	case caddyfileWhole:
		return "Caddyfile"
	case caddyfileFragment:
		return "Caddyfile fragment"
	case jsonConfig:
		return "JSON config"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// example is one configuration taken from a Markdown file.
type example struct {
	file string // as given to extract, e.g. "docs/tls_resume.md"
	line int    // 1-based line of its first content line
	kind kind
	text string
}

// name identifies the example in test names and messages.
func (e example) name() string { return fmt.Sprintf("%s:%d", e.file, e.line) }

// fence is one fenced code block of a Markdown file.
type fence struct {
	line int    // 1-based line of the opening fence
	lang string // first word of the info string, lower-cased
	mark string // the rest of the info string, trimmed
	body []string
}

var fenceOpen = regexp.MustCompile("^(\\s*)(`{3,}|~{3,})\\s*([^`]*)$")

// fences returns the fenced code blocks of a CommonMark document. A fence may
// be indented (inside a list item); that indentation is removed from its
// content lines. An unclosed fence runs to the end of the document, as in
// CommonMark.
func fences(doc string) []fence {
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	var out []fence
	for i := 0; i < len(lines); i++ {
		m := fenceOpen.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, marker, info := m[1], m[2], strings.TrimSpace(m[3])
		f := fence{line: i + 1}
		if info != "" {
			lang, rest, _ := strings.Cut(info, " ")
			f.lang = strings.ToLower(lang)
			f.mark = strings.TrimSpace(rest)
		}
		for i++; i < len(lines); i++ {
			l := lines[i]
			t := strings.TrimLeft(l, " \t")
			if strings.HasPrefix(t, marker[:1]) && strings.TrimRight(t, marker[:1]+" \t") == "" &&
				len(strings.TrimRight(t, " \t")) >= len(marker) {
				break
			}
			f.body = append(f.body, strings.TrimPrefix(l, indent))
		}
		out = append(out, f)
	}
	return out
}

// heredoc matches `cat > FILE <<'EOF'` (quotes optional, <<- too).
var heredoc = regexp.MustCompile(`^\s*cat\s+>\s*(\S+)\s+<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\s*$`)

// markRe is the mark of a block the test does not run as a whole config.
var markRe = regexp.MustCompile(`^(fragment|not-config):\s*(\S.*)$`)

// extract returns the examples of one Markdown document, or the problems
// that keep it from being tested: an untagged fence, a mark without a
// reason, a configuration hidden in a fence of another language.
func extract(file, doc string) ([]example, []error) {
	var exs []example
	var errs []error
	bad := func(f fence, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: "+format, append([]any{file, f.line}, args...)...))
	}
	for _, f := range fences(doc) {
		body := strings.Join(f.body, "\n") + "\n"
		var mark string
		if f.mark != "" {
			m := markRe.FindStringSubmatch(f.mark)
			if m == nil {
				bad(f, "info string %q: after the language only `fragment: <reason>` or `not-config: <reason>` may follow", f.lang+" "+f.mark)
				continue
			}
			mark = m[1]
		}
		switch f.lang {
		case "":
			bad(f, "fence without an info string: name its language (caddyfile, json, sh, text, …)")
		case "caddyfile":
			switch mark {
			case "":
				exs = append(exs, example{file, f.line + 1, caddyfileWhole, body})
			case "fragment":
				exs = append(exs, example{file, f.line + 1, caddyfileFragment, body})
			default:
				bad(f, "a caddyfile block can be marked `fragment: <reason>`, not %q", mark)
			}
		case "json":
			switch mark {
			case "":
				exs = append(exs, example{file, f.line + 1, jsonConfig, body})
			case "not-config":
			default:
				bad(f, "a json block can be marked `not-config: <reason>`, not %q", mark)
			}
		case "sh", "shell", "bash", "console":
			if mark != "" {
				bad(f, "a %s block takes no mark", f.lang)
				continue
			}
			exs = append(exs, heredocs(file, f)...)
		default:
			if mark != "" {
				bad(f, "a %s block takes no mark", f.lang)
				continue
			}
			if looksLikeConfig(body) {
				bad(f, "this %s block looks like Caddy configuration: tag it caddyfile or json (with `fragment: <reason>` if it is not whole)", f.lang)
			}
		}
	}
	return exs, errs
}

// heredocs returns the configurations a shell block writes with
// `cat > Caddyfile <<'EOF'` (or to *.caddyfile, *.json).
func heredocs(file string, f fence) []example {
	var exs []example
	for i := 0; i < len(f.body); i++ {
		m := heredoc.FindStringSubmatch(f.body[i])
		if m == nil {
			continue
		}
		target, delim := path.Base(m[1]), m[2]
		var k kind
		switch {
		case target == "Caddyfile" || strings.HasSuffix(strings.ToLower(target), ".caddyfile"):
			k = caddyfileWhole
		case strings.HasSuffix(target, ".json"):
			k = jsonConfig
		default:
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(f.body) && strings.TrimSpace(f.body[i]) != delim; i++ {
			body = append(body, f.body[i])
		}
		exs = append(exs, example{file, f.line + 1 + start, k, strings.Join(body, "\n") + "\n"})
	}
	return exs
}

// siteBlockStart is a first Caddyfile line that opens a site block: one or
// more addresses (a host with a dot or a port, localhost, a URL, :port)
// followed by `{`.
var siteBlockStart = regexp.MustCompile(`^((https?://)?([A-Za-z0-9*_-]+(\.[A-Za-z0-9*_-]+)+|localhost|\[[0-9a-fA-F:]+\])?(:[0-9]+)?,?\s+)+\{$`)

// looksLikeConfig reports whether a block of another language holds what a
// reader would take for a Caddyfile or a Caddy JSON config.
func looksLikeConfig(body string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &obj) == nil {
		_, apps := obj["apps"]
		return apps
	}
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return l == "{" || siteBlockStart.MatchString(l)
	}
	return false
}
