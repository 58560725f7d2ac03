#!/usr/bin/env bash
# Runs the tls_resume handshake benchmarks (plugin vs a bare crypto/tls
# server, full and resumed, ECDSA/RSA, TLS 1.2/1.3) and prints a Markdown
# table of medians and of the plugin's added cost per resumed handshake.
# Go runs the sub-benchmarks in the same order on each of the COUNT passes,
# so "bare" and "plugin" alternate (A B A B ...) and machine noise hits both.
#
# Usage: scripts/bench-handshake.sh [COUNT] [BENCHTIME] [FULL_BENCHTIME]
# (full handshakes cost 5-10x more, so they run fewer iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
benchtime=${2:-300x}
fulltime=${3:-40x}
raw=$(mktemp)
# -bench patterns match one sub-benchmark level per slash.
go test ./tlsresume -run '^$' -bench 'BenchmarkTicketHooks' \
	-benchmem -count "$count" -benchtime "$benchtime" | tee "$raw" >&2
go test ./tlsresume -run '^$' -bench 'BenchmarkHandshake/.+/.+/.+/resumed' \
	-benchmem -count "$count" -benchtime "$benchtime" | tee -a "$raw" >&2
go test ./tlsresume -run '^$' -bench 'BenchmarkHandshake/.+/.+/.+/full' \
	-benchmem -count "$count" -benchtime "$fulltime" | tee -a "$raw" >&2
echo
echo "Machine: $(nproc) cores, $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%d)"
echo "Command: scripts/bench-handshake.sh $count $benchtime $fulltime"
echo
awk '
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name)
	n[name]++; v[name, n[name]]=$3
	if ($5 ~ /^[0-9]+$/) b[name]=$5; if ($7 ~ /^[0-9]+$/) a[name]=$7
}
function median(name,   i, j, t, arr, c) {
	c=n[name]; for (i=1;i<=c;i++) arr[i]=v[name,i]
	for (i=1;i<=c;i++) for (j=i+1;j<=c;j++) if (arr[j]<arr[i]) {t=arr[i];arr[i]=arr[j];arr[j]=t}
	return (c%2) ? arr[(c+1)/2] : (arr[c/2]+arr[c/2+1])/2
}
END {
	print "| keys / version | bare full µs | bare resumed µs | plugin full µs | plugin resumed µs | plugin − bare (resumed) | added cost / bare resumed | allocs resumed bare → plugin |"
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	split("ecdsa-p256/tls12 ecdsa-p256/tls13 rsa-2048/tls12 rsa-2048/tls13", rows, " ")
	for (r=1; r<=4; r++) {
		p="BenchmarkHandshake/" rows[r] "/"
		bf=median(p "bare/full"); br=median(p "bare/resumed"); pf=median(p "plugin/full"); pr=median(p "plugin/resumed")
		printf "| %s | %.0f | %.0f | %.0f | %.0f | %+.1f µs | %+.1f%% | %s → %s |\n", rows[r], bf/1000, br/1000, pf/1000, pr/1000, (pr-br)/1000, 100*(pr-br)/br, a[p "bare/resumed"], a[p "plugin/resumed"]
	}
	hp=median("BenchmarkTicketHooks/plugin"); hb=median("BenchmarkTicketHooks/bare")
	printf "\nTicket seal + open alone (real mTLS session state): plugin %.1f µs, Go built-in %.1f µs.\n", hp/1000, hb/1000
}' "$raw"
rm -f "$raw"
