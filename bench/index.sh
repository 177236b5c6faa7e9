#!/usr/bin/env bash
# Indexing a real source tree of about 1,000 files nobody here wrote: the sources of four
# crates from Cargo's registry (tokio, candle-core, candle-transformers, redis — all
# dependencies of this workspace, so `cargo fetch` puts them there), copied into one tree.
# Measures `morningai index` cold and with nothing changed, lexical-only and with the local
# MiniLM embedder (the summary line says when the collection became searchable — the end
# of the files pass — and when its vectors were complete) (that part with --with-model: about
# 4 minutes with the int8 encoder on 2 cores, the better part of an hour with candle's fp32).
# Usage: bench/index.sh [--with-model]
# INDEX_CRATES="redis" (space-separated crate names) indexes other registry crates instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch -q
cargo build --release -q -p morningai
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree"
for crate in ${INDEX_CRATES:-tokio candle-core candle-transformers redis}; do
  src=$(ls -d "$registry$crate"-[0-9]* | sort -V | tail -1)
  cp -r "$src" "$work/tree/"
done
echo "tree: $(find "$work/tree" -type f | wc -l) files, $(du -sh "$work/tree" | cut -f1)"
bin=target/release/morningai
index() { # DATA_DIR LABEL [model dir]   (always the collection "tree")
  local start end
  start=$(date +%s.%N)
  env MORNINGAI_DATA_DIR="$1" ${3:+MORNINGAI_EMBED_MODEL_DIR="$3"} "$bin" index "$work/tree" --tenant bench --collection tree > "$work/report.json" 2> "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
  end=$(date +%s.%N)
  # The CLI's summary: files, chunks, when the collection became searchable, vectors.
  printf '%-20s %7.1f s  %s\n' "$2" "$(echo "$end - $start" | bc)" "$(tail -1 "$work/err.txt")"
}
setup() { # DATA_DIR
  MORNINGAI_DATA_DIR=$1 MORNINGAI_PASSWORD=bench-password-123 "$bin" user create --email bench@example.com > /dev/null
  MORNINGAI_DATA_DIR=$1 "$bin" tenant create --name Bench --slug bench --owner bench@example.com > /dev/null
}
setup "$work/lexical"
index "$work/lexical" lexical-cold
index "$work/lexical" lexical-unchanged
if [[ ${1:-} == --with-model ]]; then
  model=$(scripts/fetch-minilm.sh)
  setup "$work/dense"
  index "$work/dense" minilm-cold "$model"
  index "$work/dense" minilm-unchanged "$model"
fi
