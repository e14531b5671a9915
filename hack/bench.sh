#!/usr/bin/env bash
# make bench: every benchmark with a budget in docs/architecture.md, then a
# summary of the budgets (the "BUDGET" lines internal/budget logs): each
# one's measured value, ok or OVER. Exit 1 when a budget is over, when a
# benchmark failed, or when one could not run (kind with no Docker).
set -uo pipefail
cd "$(dirname "$0")/.."
make=${MAKE:-make}
go=${GO:-go}
version=${KUBERNETES_VERSION:-v1.37.2}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
missing=()

bench() {
	echo "=== $*"
	"$@" 2>&1 | tee -a "$log"
	[ "${PIPESTATUS[0]}" = 0 ] || status=1
}

bench "$go" test -run '^$' -bench . -benchtime 20x ./cmd/anonlab/app/ ./cmd/anonlab/tui/
bench "$go" test -run '^$' -bench . -benchtime 50x ./steps/audit/
bench "$go" test -run '^$' -bench . -benchtime 3x -timeout 30m ./steps/
bench "$go" test -run '^$' -bench . -benchtime 3x ./steps/cluster/binaries/
if "$make" -s kind-node-image >"$log.kind" 2>&1; then
	bench env ANONLAB_NODE_IMAGE="anonlab/node:$version" "$go" test -run '^$' -bench . -benchtime 1x -timeout 30m ./steps/cluster/kind/
else
	tail -5 "$log.kind"
	missing+=("kind: not measured: no Docker engine or node image (make kind-node-image failed)")
	status=1
fi
rm -f "$log.kind"

echo
echo "make bench: budgets (docs/architecture.md)"
# The last line for each budget: go test runs a benchmark more than once
# when it sizes b.N.
grep -o $'BUDGET\t.*' "$log" | tac | awk -F'\t' '!seen[$2]++' | tac |
	awk -F'\t' '{ printf "%-4s  %-70s %10s  (budget %s)\n      %s\n", $5, $2, $3, $4, $6 }'
grep -q $'\tOVER\t' "$log" && status=1
for m in "${missing[@]}"; do echo "MISSING  $m"; done
if [ "$status" != 0 ]; then
	echo 'make bench: FAIL: a budget is over or not measured, or a benchmark failed (see above)' >&2
fi
exit "$status"
