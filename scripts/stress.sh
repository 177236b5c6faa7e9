#!/usr/bin/env bash
# Proves the suite holds on a busy machine: runs scripts/test.sh N times in a row (default
# 3) while a CPU hog keeps one core fully busy (pinned to core 0 when `taskset` exists).
# Stops at the first failure. Usage: scripts/stress.sh [N] [cargo test args…]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
if command -v taskset >/dev/null; then
  taskset -c 0 bash -c 'while :; do :; done' &
else
  bash -c 'while :; do :; done' &
fi
hog=$!
trap 'kill $hog 2>/dev/null || true' EXIT
start=$SECONDS
for i in $(seq "$runs"); do
  echo "== stress run $i/$runs (a CPU hog takes one core)" >&2
  scripts/test.sh "$@"
done
echo "== stress: $runs runs in a row passed under load in $((SECONDS - start)) s" >&2
