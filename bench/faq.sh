#!/usr/bin/env bash
# The documentation agent without an LLM: time from POST /api/v1/tasks (kind faq, offline
# provider) to the published document, over 20 questions, on an indexed tree of about
# 1,000 files (the sources of tokio, candle-core, candle-transformers and redis from Cargo's
# registry, as in bench/index.sh; lexical memory, no embedding model). Embedded mode, the
# release binary. Usage: bench/faq.sh [--with-model]
# --with-model: the local MiniLM embeds the tree (waited for to the last vector before the
# questions start) and serves the questions; the tree is then the redis crate alone by
# default (~3,700 chunks, ~5 minutes of embedding here) — FAQ_CRATES="…" picks others;
# FAQ_BESIDE=1 runs another indexing process during the questions.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch -q
cargo build --release -q -p morningai
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
# FAQ_WORK=DIR keeps the tree and the data directory there for the next run (whose index
# pass then finds every file unchanged: no waiting for the model again).
work=${FAQ_WORK:-$(mktemp -d)}
bin=${CARGO_TARGET_DIR:-target}/release/morningai
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; [[ -n ${FAQ_WORK:-} ]] || rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/tree"
model=
if [[ ${1:-} == --with-model ]]; then
  model=$(scripts/fetch-minilm.sh)
  export MORNINGAI_EMBED_MODEL_DIR=$model
fi
for crate in ${FAQ_CRATES:-$([[ -n $model ]] && echo redis || echo tokio candle-core candle-transformers redis)}; do
  cp -r "$(ls -d "$registry$crate"-[0-9]* | sort -V | tail -1)" "$work/tree/"
done
echo "tree: $(find "$work/tree" -type f | wc -l) files"
export MORNINGAI_DATA_DIR=$work/data
if [[ ! -d $work/data ]]; then
  MORNINGAI_PASSWORD=bench-password-123 "$bin" user create --email bench@example.com > /dev/null
  "$bin" tenant create --name Bench --slug bench --owner bench@example.com > /dev/null
fi
"$bin" index "$work/tree" --tenant bench --collection tree 2>&1 > /dev/null | tail -1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MORNINGAI_LOG_LEVEL=warn "$bin" serve --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
beside=
if [[ -n ${FAQ_BESIDE:-} && -n $model ]]; then
  # FAQ_BESIDE=1: another process embeds another tree (candle-core) during the questions,
  # competing for the same two cores.
  cp -r "$(ls -d "${registry}candle-core"-[0-9]* | sort -V | tail -1)" "$work/beside"
  MORNINGAI_DATA_DIR=$work/beside-data MORNINGAI_PASSWORD=bench-password-123 "$bin" user create --email b@example.com > /dev/null
  MORNINGAI_DATA_DIR=$work/beside-data "$bin" tenant create --name B --slug b --owner b@example.com > /dev/null
  MORNINGAI_DATA_DIR=$work/beside-data "$bin" index "$work/beside" --tenant b --collection beside > /dev/null 2>&1 &
  beside=$!
  sleep 5
fi
python3 bench/faq_bench.py "http://127.0.0.1:$port" bench@example.com bench-password-123
if [[ -n $beside ]]; then
  kill -0 "$beside" 2> /dev/null && echo "(the indexer beside was still embedding when the last question finished)"
  kill "$beside" 2> /dev/null || true
  rm -rf "$work/beside" "$work/beside-data"
fi
