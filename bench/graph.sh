#!/usr/bin/env bash
# Workflow engine beside LangGraph (Python, PyPI), same graphs, trivial nodes, one run:
# per-step overhead of a 10-node linear graph and a 20-way fan-out/fan-in graph with no
# checkpointer, the in-memory one and SQLite in sync mode (both sides WAL, synchronous=NORMAL); bytes stored per step for a
# 500-step append-only conversation. Usage: bench/graph.sh [RUNS]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1000}
TOOLS=${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}
[[ -x $TOOLS/lg-venv/bin/python ]] || { python3 -m venv "$TOOLS/lg-venv" && "$TOOLS/lg-venv/bin/pip" install -q langgraph langgraph-checkpoint-sqlite; }
cargo build --release -q -p morningai-bench
echo "== MorningAI graph engine"
RUST_BACKTRACE=0 target/release/graph-bench "$RUNS"
echo "== LangGraph $("$TOOLS/lg-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("langgraph"))')"
"$TOOLS/lg-venv/bin/python" bench/langgraph_bench.py "$RUNS"
