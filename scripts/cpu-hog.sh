#!/usr/bin/env bash
# Runs a command with CPU hogs beside it: N busy loops (default 2, one per core here) that
# compete for the CPU for as long as the command runs, then are stopped. How the suite is shown
# to pass on a loaded machine (issue 17, docs/testing.md#on-a-loaded-machine):
#
#   bash scripts/cpu-hog.sh -- npm test
#   HOGS=4 bash scripts/cpu-hog.sh -- npx vitest run --project qemu
#
# Exits with the command's exit code; prints the load average before and after.
set -euo pipefail
hogs="${HOGS:-2}"
if [[ "${1:-}" == "--" ]]; then shift; fi
if [[ $# -eq 0 ]]; then
  echo "usage: [HOGS=N] bash scripts/cpu-hog.sh -- COMMAND [ARGS...]" >&2
  exit 3
fi
pids=()
stop_hogs() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT
for _ in $(seq 1 "$hogs"); do
  # A busy loop of the shell itself: no allocation, no I/O, just CPU.
  bash -c 'while :; do :; done' &
  pids+=("$!")
done
echo "cpu-hog: ${hogs} busy loops (pids ${pids[*]}); load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
status=0
"$@" || status=$?
echo "cpu-hog: load after: $(cut -d' ' -f1-3 /proc/loadavg); command exited ${status}" >&2
exit "$status"
