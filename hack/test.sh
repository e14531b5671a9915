#!/usr/bin/env bash
# make test: every phase CI runs, in order, each timed. A timing table is
# printed at the end, also when a phase failed: set-up phases (deps,
# binaries, Docker, node image) stop the run when they fail; test phases do
# not, so one run reports every failing package. Exit 1 when any phase failed.
# The two kind suites run side by side: each mostly waits for its cluster's
# kubelet and kube-apiserver, so together they take little more than the
# longer one (each has its own clusters, ledger entries and names).
set -uo pipefail
cd "$(dirname "$0")/.."
make=${MAKE:-make}
logs=$(mktemp -d)
rows=()   # phase<TAB>seconds<TAB>result
failed=0
started=$(date +%s)

# phase NAME KIND CMD...: runs CMD, its output shown and kept; KIND is setup
# or tests (test packages' own "ok"/"FAIL" lines become rows of their own).
phase() {
	local name=$1 kind=$2 start status
	shift 2
	echo "=== phase $name: $*"
	start=$(date +%s.%N)
	"$@" 2>&1 | tee "$logs/$name.log"
	status=${PIPESTATUS[0]}
	record "$name" "$kind" "$start" "$status" "$(date +%s.%N)"
}

# side NAME CMD...: starts the tests phase NAME in the background, its
# output shown as it comes, each line prefixed with [NAME]; joined records it.
side=()
side() {
	local name=$1
	shift
	echo "=== phase $name (side by side): $*"
	date +%s.%N >"$logs/$name.start"
	{
		"$@" 2>&1 | tee "$logs/$name.log" | sed -u "s/^/[$name] /"
		echo "${PIPESTATUS[0]}" >"$logs/$name.status"
		date +%s.%N >"$logs/$name.end"
	} &
	side+=("$name")
}

# joined waits for the side-by-side phases and records each.
joined() {
	wait
	for name in "${side[@]}"; do
		record "$name" tests "$(cat "$logs/$name.start")" "$(cat "$logs/$name.status" 2>/dev/null || echo 1)" "$(cat "$logs/$name.end" 2>/dev/null || date +%s.%N)"
	done
	side=()
}

# record NAME KIND START STATUS END adds the rows of a finished phase.
record() {
	local name=$1 kind=$2 start=$3 status=$4 end=$5
	rows+=("$(printf '%s\t%.0f\t%s' "$name" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" "$([ "$status" = 0 ] && echo ok || echo "FAIL (exit $status)")")")
	if [ "$kind" = tests ]; then
		# go test's summary lines: "ok  <pkg> <time>s" / "FAIL <pkg> <time>s".
		while IFS=$'\t' read -r res pkg secs; do
			rows+=("$(printf '  %s\t%.0f\t%s' "${pkg#github.com/anonlab/anonlab/}" "${secs%s}" "$res")")
		done < <(grep -E $'^(ok|FAIL) *\t[^ \t]+\t[0-9.]+s' "$logs/$name.log" | sed -E $'s/^(ok|FAIL) *\t([^\t]+)\t([0-9.]+s).*/\\1\t\\2\t\\3/')
	fi
	if [ "$status" != 0 ]; then
		failed=1
		[ "$kind" = setup ] && exit 1
	fi
	return 0
}

table() {
	local total=$(($(date +%s) - started))
	echo
	echo "make test: timings (seconds; package rows are go test's own, run in parallel within their phase)"
	printf '%-44s %8s  %s\n' PHASE SECONDS RESULT
	for r in "${rows[@]}"; do
		IFS=$'\t' read -r name secs res <<<"$r"
		printf '%-44s %8s  %s\n' "$name" "$secs" "$res"
	done
	printf '%-44s %8s  %s\n' total "$total" "$([ "$failed" = 0 ] && echo ok || echo FAIL)"
	rm -rf "$logs"
}
trap table EXIT

phase deps setup go mod download
phase build setup "$make" --no-print-directory build
phase binaries setup "$make" --no-print-directory binaries
phase cross setup "$make" --no-print-directory cross
phase docker setup "$make" --no-print-directory docker
phase node-image setup "$make" --no-print-directory kind-node-image
side test-kind "$make" --no-print-directory test-kind
side e2e-kind "$make" --no-print-directory e2e-kind
joined
phase test-local tests "$make" --no-print-directory test-local
exit "$failed"
