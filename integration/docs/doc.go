// Package docs tests the configuration examples of the documentation:
// README.md, xcaddy.md and every docs/*.md file of the repository. Each
// example is run through the plugin's own Caddy (cmd/caddy, built by
// harness.BuildCaddy) the way a reader would paste it.
//
// # How an example is recognised
//
// Every fenced code block (``` or ~~~) must carry an info string; the first
// word is its language, and the words after it may mark a block the test
// must not run as a whole configuration:
//
//   - ```caddyfile (or Caddyfile): a whole Caddyfile. `caddy fmt` must find
//     it formatted, `caddy adapt` must succeed without warnings, and
//     `caddy validate` must succeed.
//   - ```caddyfile fragment: <reason>: part of a Caddyfile (a lone site block,
//     a snippet). Only `caddy fmt` runs. The reason is required.
//   - ```json: a whole Caddy JSON config; `caddy validate` must succeed.
//   - ```json not-config: <reason>: JSON that is not a Caddy config (an admin
//     API body, a status answer). Not run. The reason is required.
//   - ```sh (also shell, bash, console): each here-document written to a file
//     named Caddyfile or *.caddyfile (`cat > Caddyfile <<'EOF'`) is a whole
//     Caddyfile, and one written to *.json a whole JSON config, checked as
//     above.
//   - Any other language (text, go, promql, …) is not configuration. So that
//     a Caddyfile cannot hide there, such a block fails the test when it
//     looks like one: its first line that is not blank or a comment is `{`,
//     or a site address followed by `{`, or it is a JSON object with "apps".
//
// # What the examples get
//
// Each example runs in its own temporary directory (the working directory of
// every caddy command), with HOME and the XDG directories inside it, so
// Caddy's storage and a generated KEK never touch the machine's.
//
//   - Paths: examples name files where an operator keeps them, under
//     /etc/caddy/ (inputs: certificates, keys, KEK files) and /var/lib/
//     (state). Before `caddy validate` the test rewrites those two prefixes
//     to the same paths under the temporary directory (/etc/caddy/edge.pem
//     becomes $TMP/etc/caddy/edge.pem); `caddy fmt` and `caddy adapt` see the
//     example as written.
//   - Files: every /etc/caddy/NAME an example mentions must be one the test
//     knows how to write (see suppliedFiles: a client CA, the proxy's client
//     certificate and key, an old KEK), generated fresh with internal/pki and
//     `caddy tls-resume keygen`. An unknown name fails the test: add it to
//     suppliedFiles.
//   - Environment: every {env.NAME} or {$NAME} an example uses must be one
//     the test supplies (see suppliedEnv: TLS_RESUME_KEK, a fresh KEK).
//   - Redis: `caddy validate` provisions the apps without starting them.
//     Provisioning `session_store redis` creates its client and starts its
//     invalidation subscription in the background, and neither waits for
//     or fails on an unreachable Redis, so an example naming a Redis
//     address validates without a server (TestChecksCatchBrokenExamples
//     keeps that true).
//
// Besides the examples, the module table of xcaddy.md must list exactly the
// modules the plugin registers, and TestChecksCatchBrokenExamples feeds the
// same checks deliberately broken examples to show that each check fails.
//
// Run it alone from the integration directory:
//
//	go test -count=1 ./docs
package docs
