#!/usr/bin/env bash
# The server's memory after hostile load (1,000 SSE streams, runaway runs, zip bombs), on
# the embedded backend. Usage: bench/hostile-memory.sh   (MORNINGAI_BIN=path to measure
# another binary; default: a release build of this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n ${MORNINGAI_BIN:-} ]]; then
  BIN=$MORNINGAI_BIN
else
  cargo build --release -q -p morningai
  BIN=$PWD/target/release/morningai
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL= REDIS_URL= MORNINGAI_LOG_LEVEL=warn "$BIN" serve --data-dir "$work" \
  --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python3 bench/hostile_memory.py "http://127.0.0.1:$port" "$pid"
echo "data directory at the end: $(du -sm "$work" | cut -f1) MiB"
