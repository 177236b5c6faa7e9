#!/usr/bin/env bash
# Latency of the surfaces other clients speak, at a fixed rate, in embedded mode with the
# MiniLM embedding model, over three of this checkout's crates (core, worker, redis: ~4,100
# lines of Rust) indexed as three collections:
#   - POST /v1/chat/completions, extractive (the query embedded, hybrid search, selection);
#   - POST /v1/embeddings, one sentence;
#   - MCP tools/call search_memory (JSON-RPC over Streamable HTTP, stateless),
#     beside POST /api/v1/memory/search with the same query (the REST equivalent).
# oha -q RATE -z DURATION, 3 runs per endpoint; the medians of p50 and p99 are quoted.
# The load generator runs on the same 2-core machine as the server.
# Usage: bench/surfaces.sh   (RATE=20 DURATION=15 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20}
DURATION=${DURATION:-15}
TOOLS=${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}
OHA=$TOOLS/oha/bin/oha
[[ -x $OHA ]] || cargo install oha --locked --root "$TOOLS/oha"
cargo build --release -q -p morningai
BIN=$PWD/target/release/morningai
MODEL=${MORNINGAI_EMBED_MODEL_DIR:-$(scripts/fetch-minilm.sh)}

work=$(mktemp -d)
server_pid=
trap '[[ -n $server_pid ]] && kill "$server_pid"; rm -rf "$work"' EXIT
unset DATABASE_URL REDIS_URL
export MORNINGAI_DATA_DIR=$work/data MORNINGAI_LOG_LEVEL=warn MORNINGAI_EMBED_MODEL_DIR=$MODEL
MORNINGAI_PASSWORD=benchmark-password "$BIN" user create --email bench@example.com >/dev/null
"$BIN" tenant create --name Bench --slug bench --owner bench@example.com >/dev/null
key=$("$BIN" apikey create --tenant bench --user bench@example.com --role member 2>/dev/null)
start=$SECONDS
for crate in core worker redis; do
  "$BIN" index "crates/$crate" --tenant bench --collection "$crate" >/dev/null
done
echo "== indexed crates/{core,worker,redis} with MiniLM in $((SECONDS - start)) s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port"
model=$(curl -fs "$url/v1/models" -H "authorization: Bearer $key" |
  python3 -c 'import json,sys; print(next(m["id"] for m in json.load(sys.stdin)["data"] if m.get("dimensions")))')

question='How does the queue lease a job and retry it?'
chat='{"model":"faq","messages":[{"role":"user","content":"'$question'"}]}'
embed='{"model":"'$model'","input":"'$question'"}'
mcp='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_memory","arguments":{"query":"'$question'","k":8}}}'
search='{"query":"'$question'","k":8}'

measure() { # name path body [headers...]
  local name=$1 path=$2 body=$3
  shift 3
  for run in 1 2 3; do
    "$OHA" --no-tui -q "$RATE" -z "${DURATION}s" -c 8 --output-format json -m POST -T application/json \
      -H "authorization: Bearer $key" "$@" -d "$body" "$url$path" >"$work/$name-$run.json"
  done
  python3 - "$name" "$work"/"$name"-*.json <<'PY'
import json, statistics, sys
rs = [json.load(open(f)) for f in sys.argv[2:]]
p50 = [r["latencyPercentiles"]["p50"] * 1e3 for r in rs]
p99 = [r["latencyPercentiles"]["p99"] * 1e3 for r in rs]
codes = {}
for r in rs:
    for k, v in r.get("statusCodeDistribution", {}).items():
        codes[k] = codes.get(k, 0) + v
print(f"{sys.argv[1]:22} p50 {statistics.median(p50):7.2f} ms  p99 {statistics.median(p99):7.2f} ms"
      f"  (p99 runs: {', '.join(f'{x:.2f}' for x in p99)}) status={codes}")
PY
}

echo "== latency at $RATE req/s (oha -q $RATE -z ${DURATION}s, 3 runs each)"
measure chat-completions /v1/chat/completions "$chat"
measure embeddings /v1/embeddings "$embed"
measure mcp-search_memory /mcp "$mcp" -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2025-06-18'
measure rest-memory-search /api/v1/memory/search "$search"
