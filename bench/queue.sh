#!/usr/bin/env bash
# Queue benchmark, side by side in one run against one throwaway Redis:
#   - our Redis queue: enqueue rate; end-to-end no-op jobs/s with one and two worker
#     processes (64 jobs in flight each); idle pickup latency (enqueue → handler start);
#   - Python RQ 2.x (PyPI), same Redis: enqueue rate; end-to-end with its forking Worker
#     and its SimpleWorker, one and two processes (`rq worker --burst`);
#   - our SQLite queue alone (one process: it is the embedded mode).
# Usage: bench/queue.sh            (JOBS=100000 RQ_FORK_JOBS=2000 RQ_SIMPLE_JOBS=5000)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-100000}
RQ_FORK_JOBS=${RQ_FORK_JOBS:-2000}
RQ_SIMPLE_JOBS=${RQ_SIMPLE_JOBS:-5000}
TOOLS=${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}

DATABASE_URL=${DATABASE_URL:-unused} source scripts/test-services.sh
cargo build --release -q -p morningai-bench
B=$PWD/target/release/queue-bench
work=$(mktemp -d)
trap 'rm -rf "$work"; morningai_services_cleanup' EXIT

[[ -x $TOOLS/rq-venv/bin/rq ]] || { python3 -m venv "$TOOLS/rq-venv" && "$TOOLS/rq-venv/bin/pip" install -q 'rq>=2,<3'; }
RQ_VERSION=$("$TOOLS/rq-venv/bin/python" -c 'import rq; print(rq.__version__)')

# Windows printed by drains running in parallel → total jobs/s over their union.
combined() {
  python3 -c '
import re, sys
runs = [re.search(r"drained (\d+) jobs: \d+ jobs/s \(window (\d+)\.\.(\d+)\)", l).groups() for l in sys.stdin if "window" in l]
n = sum(int(r[0]) for r in runs); start = min(int(r[1]) for r in runs); end = max(int(r[2]) for r in runs)
print(f"drained {n} jobs with {len(runs)} processes: {n / ((end - start) / 1000):.0f} jobs/s")'
}

echo "== MorningAI Redis queue"
$B --backend redis --target "$REDIS_URL" --prefix one fill --jobs "$JOBS"
$B --backend redis --target "$REDIS_URL" --prefix one drain --concurrency 64
$B --backend redis --target "$REDIS_URL" --prefix two fill --jobs "$JOBS" >/dev/null
{ $B --backend redis --target "$REDIS_URL" --prefix two drain --concurrency 64 &
  $B --backend redis --target "$REDIS_URL" --prefix two drain --concurrency 64 & wait; } | combined
$B --backend redis --target "$REDIS_URL" --prefix lat latency --samples 1000

echo "== MorningAI SQLite queue (one process)"
$B --backend sqlite --target "$work/q.db" fill-drain --jobs 50000 --concurrency 64
$B --backend sqlite --target "$work/q.db" latency --samples 1000

echo "== Python RQ $RQ_VERSION"
rq() { (cd bench && PYTHONPATH=. "$TOOLS/rq-venv/bin/$1" "${@:2}"); }
for mode in Worker SimpleWorker; do
  n=$RQ_FORK_JOBS; [[ $mode == SimpleWorker ]] && n=$RQ_SIMPLE_JOBS
  for procs in 1 2; do
    echo "-- rq.worker.$mode, $procs process(es)"
    rq python rq_bench.py fill "$n"
    for _ in $(seq "$procs"); do rq rq worker --burst --quiet -w "rq.worker.$mode" --url "$REDIS_URL" bench >/dev/null 2>&1 & done
    wait
    rq python rq_bench.py span
  done
done
