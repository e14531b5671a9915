#!/usr/bin/env bash
# make stress: the article N times in a row on the local backend; afterwards
# nothing of the runs may remain (process, listening port, temp dir, state
# entry) and memory and disk may not have grown.
# usage: stress.sh ANONLAB [N]
set -euo pipefail
anonlab=$1 n=${2:-10}
state=$(mktemp -d)
export ANONLAB_STATE_DIR=$state
trap 'rm -rf "$state"' EXIT

listening() { ss -Hltn 2>/dev/null | wc -l; }
lab_procs() { grep -las 'anonlab-local-' /proc/[0-9]*/cmdline 2>/dev/null | wc -l; }
lab_dirs() { find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'anonlab-local-*' | wc -l; }
mem_used() { free -m | awk '/^Mem:/ {print $3}'; }
disk_used() { df -Pm "${TMPDIR:-/tmp}" | awk 'NR==2 {print $3}'; }

ports0=$(listening) procs0=$(lab_procs) dirs0=$(lab_dirs) mem0=$(mem_used) disk0=$(disk_used)
for i in $(seq 1 "$n"); do
  start=$(date +%s.%N)
  "$anonlab" run anonymous-auth --backend local --output json >/dev/null
  printf 'run %d/%d: ok (%.1fs)\n' "$i" "$n" "$(echo "$(date +%s.%N) - $start" | bc)"
done
ports1=$(listening) procs1=$(lab_procs) dirs1=$(lab_dirs) mem1=$(mem_used) disk1=$(disk_used)
entries=$(find "$state" -name '*.json' | wc -l)

fail=0
check() { # check WHAT BEFORE AFTER MAX_GROWTH
  local growth=$(( $3 - $2 ))
  if [ "$growth" -gt "$4" ]; then echo "FAIL: $1 grew from $2 to $3" >&2; fail=1; else echo "ok: $1 $2 → $3"; fi
}
check "lab processes" "$procs0" "$procs1" 0
check "listening TCP ports" "$ports0" "$ports1" 0
check "lab temp dirs" "$dirs0" "$dirs1" 0
check "state entries" 0 "$entries" 0
check "memory used (MB)" "$mem0" "$mem1" 200
check "disk used in temp (MB)" "$disk0" "$disk1" 20
exit $fail
