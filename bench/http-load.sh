#!/usr/bin/env bash
# Load benchmark of POST /api/v1/tasks and GET /api/v1/tasks/{id} with API-key auth, on
# SQLite and on PostgreSQL (a throwaway PostgreSQL 18 unless DATABASE_URL is set).
#   - throughput: wrk, 2 threads, 64 connections, DURATION seconds per endpoint;
#   - latency at a fixed 1,000 req/s: oha -q 1000, p50/p99.
# The load generator runs on the same 2-core machine as the server.
# Usage: bench/http-load.sh [sqlite|postgres ...]   (default: both)
# MORNINGAI_BIN=path measures that binary instead of building this checkout's (e.g. an
# older commit's, for a before/after comparison in one session).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
TOOLS=${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}
OHA=$TOOLS/oha/bin/oha
backends=("${@:-sqlite postgres}")
read -r -a backends <<<"${backends[*]}"

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
[[ -x $OHA ]] || cargo install oha --locked --root "$TOOLS/oha"
if [[ -n ${MORNINGAI_BIN:-} ]]; then
  BIN=$MORNINGAI_BIN
else
  cargo build --release -q -p morningai
  BIN=$PWD/target/release/morningai
fi

if [[ " ${backends[*]} " == *" postgres "* && ( -z ${DATABASE_URL:-} || -z ${REDIS_URL:-} ) ]]; then
  source scripts/test-services.sh
  PG_URL=$DATABASE_URL
  unset DATABASE_URL
else
  PG_URL=${DATABASE_URL:-}
fi
# PostgreSQL mode queues in Redis; SQLite mode is embedded (no Redis).
RD_URL=${REDIS_URL:-}
unset REDIS_URL

work=$(mktemp -d)
server_pid=
stop_server() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; server_pid=; }
trap 'stop_server; rm -rf "$work"; declare -F morningai_services_cleanup >/dev/null && morningai_services_cleanup' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"kind":"echo","input":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
LUA

for backend in "${backends[@]}"; do
  export MORNINGAI_DATA_DIR=$work/$backend MORNINGAI_LOG_LEVEL=warn
  if [[ $backend == postgres ]]; then
    export DATABASE_URL=$PG_URL REDIS_URL=$RD_URL
  else
    unset DATABASE_URL REDIS_URL
  fi
  email="bench-$RANDOM$RANDOM@example.com"
  MORNINGAI_PASSWORD=benchmark-password "$BIN" user create --email "$email" >/dev/null
  slug="bench-$RANDOM$RANDOM"
  "$BIN" tenant create --name Bench --slug "$slug" --owner "$email" >/dev/null
  key=$("$BIN" apikey create --tenant "$slug" --user "$email" --role member 2>/dev/null)
  "$BIN" serve --listen "127.0.0.1:$port" >"$work/$backend.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  base="http://127.0.0.1:$port/api/v1"
  task=$(curl -fs -X POST "$base/tasks" -H "x-api-key: $key" -H 'content-type: application/json' \
    -d '{"kind":"echo","input":{"n":1}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

  # Latency first, on an idle system (the throughput runs leave a backlog of echo tasks
  # for the workers); three runs per endpoint, the median p99 is the figure quoted.
  echo "== $backend: latency at 1,000 req/s (oha -q 1000 -z ${DURATION}s, 3 runs)"
  for ep in GET POST; do
    if [[ $ep == GET ]]; then args=("$base/tasks/$task"); else args=(-m POST -T application/json -d '{"kind":"echo","input":{"n":1}}' "$base/tasks"); fi
    for run in 1 2 3; do
      "$OHA" --no-tui -q 1000 -z "${DURATION}s" -c 16 --output-format json -H "x-api-key: $key" "${args[@]}" >"$work/oha-$ep-$run.json"
    done
    python3 - "$ep" "$work"/oha-$ep-*.json <<'PY'
import json, statistics, sys
rs = [json.load(open(f)) for f in sys.argv[2:]]
p50 = [r["latencyPercentiles"]["p50"] * 1e3 for r in rs]
p99 = [r["latencyPercentiles"]["p99"] * 1e3 for r in rs]
codes = {}
for r in rs:
    for k, v in r.get("statusCodeDistribution", {}).items():
        codes[k] = codes.get(k, 0) + v
print(f"{sys.argv[1]:5} p50 {statistics.median(p50):.2f} ms, p99 median {statistics.median(p99):.2f} ms (runs: {', '.join(f'{x:.2f}' for x in p99)}) status={codes}")
PY
  done
  echo "== $backend: throughput (wrk -t2 -c64 -d${DURATION}s)"
  wrk -t2 -c64 -d"${DURATION}s" --latency -H "x-api-key: $key" "$base/tasks/$task" | grep -E "Requests/sec|  50%|  99%|Non-2xx"
  wrk -t2 -c64 -d"${DURATION}s" --latency -H "x-api-key: $key" -s "$work/post.lua" "$base/tasks" | grep -E "Requests/sec|  50%|  99%|Non-2xx"
  stop_server
done
