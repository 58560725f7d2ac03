#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the three modules, one at a time, for
# FUZZTIME each, and keeps what it found under the package's testdata/fuzz.
#
#   FUZZTIME      how long each target runs (default 60s; any go test -fuzztime)
#   FUZZPARALLEL  fuzzing workers per target (default: 2, the cores of CI)
#   FUZZMINIMIZETIME  time Go may spend minimizing each new input (default
#                 10s; Go's own 60s default ate most of a 5-minute run)
#   FUZZMATCH     only targets whose "pkg.Name" matches this extended regexp
#   FUZZLOG       directory for one log per target and summary.tsv
#                 (default: fuzz-results/<UTC time>)
#
# Corpus: Go writes a crashing input to <pkg>/testdata/fuzz/<Name>/ itself.
# Inputs that reached new coverage it keeps only in its cache,
# $(go env GOCACHE)/fuzz/<import path>/<Name>/. After each target this script
# copies the cache entries created during that target's run into
# <pkg>/testdata/fuzz/<Name>/ (the names are content hashes, so nothing is
# copied twice), where `go test` replays them as regression seeds on every
# run and git can keep them. Entries from earlier runs are left in the cache.
#
# Exit status: 1 if any target crashed (its log names the input), else 0.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
FUZZTIME=${FUZZTIME:-60s}
FUZZPARALLEL=${FUZZPARALLEL:-2}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
FUZZMATCH=${FUZZMATCH:-.}
FUZZLOG=${FUZZLOG:-$root/fuzz-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$FUZZLOG"
cache=$(go env GOCACHE)/fuzz
summary=$FUZZLOG/summary.tsv
[ -e "$summary" ] || printf 'package\ttarget\tfuzztime\texecs\tnew_interesting\tkept\tresult\n' >"$summary"

# Discover: `go test -list` prints a package's fuzz targets before its
# "ok <import path>" line.
targets=()
for mod in . integration bench; do
	[ -n "$(cd "$mod" && go list ./... 2>/dev/null)" ] || continue
	pending=()
	while IFS= read -r line; do
		case "$line" in
		Fuzz*) pending+=("$line") ;;
		"ok "*)
			pkg=$(awk '{print $2}' <<<"$line")
			for n in "${pending[@]}"; do targets+=("$mod|$pkg|$n"); done
			pending=()
			;;
		esac
	done < <(cd "$mod" && go test -list '^Fuzz' ./... 2>&1)
done

failed=0
i=0
for t in "${targets[@]}"; do
	IFS='|' read -r mod pkg name <<<"$t"
	grep -Eq -- "$FUZZMATCH" <<<"$pkg.$name" || continue
	i=$((i + 1))
	dir=$(cd "$mod" && go list -f '{{.Dir}}' "$pkg")
	log=$FUZZLOG/$(basename "$pkg").$name.log
	marker=$(mktemp)
	echo "fuzz [$i/${#targets[@]}] $pkg $name for $FUZZTIME" >&2
	result=ok
	if ! (cd "$dir" && go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" -parallel "$FUZZPARALLEL" . >"$log" 2>&1); then
		result=FAIL
		failed=1
		echo "fuzz: $pkg $name FAILED; see $log" >&2
		grep -E 'Failing input written to|--- FAIL|panic:' "$log" | head -5 >&2 || true
	fi
	kept=0
	src=$cache/$pkg/$name
	if [ -d "$src" ]; then
		dst=$dir/testdata/fuzz/$name
		while IFS= read -r f; do
			mkdir -p "$dst"
			if [ ! -e "$dst/$(basename "$f")" ]; then
				cp "$f" "$dst/"
				kept=$((kept + 1))
			fi
		done < <(find "$src" -type f -newer "$marker")
	fi
	rm -f "$marker"
	last=$(grep -E '^fuzz: elapsed' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$name" "$FUZZTIME" "${execs:-?}" "${newi:-?}" "$kept" "$result" >>"$summary"
	echo "fuzz: $name: ${execs:-?} execs, ${newi:-?} new interesting, $kept kept, $result" >&2
done
column -t -s $'\t' "$summary" >&2 || cat "$summary" >&2
exit $failed
