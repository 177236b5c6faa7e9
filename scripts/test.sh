#!/usr/bin/env bash
# The whole test suite. Provisions throwaway PostgreSQL 18 + pgvector and Redis (unless
# DATABASE_URL / REDIS_URL point at existing ones), runs every test against them, and
# cleans up. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh

# The official langgraph-sdk Python client, for the LangGraph API compatibility test.
if [[ -z ${MORNINGAI_SDK_PYTHON:-} ]]; then
  sdk_venv="${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}/sdk-venv"
  if ! "$sdk_venv/bin/python" -c 'import langgraph_sdk' 2>/dev/null; then
    echo "test tools: pip install langgraph-sdk into $sdk_venv" >&2
    rm -rf "$sdk_venv"
    python3 -m venv "$sdk_venv"
    "$sdk_venv/bin/pip" install -q --disable-pip-version-check 'langgraph-sdk>=0.4,<0.5' >&2
  fi
  export MORNINGAI_SDK_PYTHON=$sdk_venv/bin/python
fi

# Real all-MiniLM-L6-v2 weights for the embedding tests.
if [[ -z ${MORNINGAI_EMBED_MODEL_DIR:-} ]]; then
  MORNINGAI_EMBED_MODEL_DIR=$(scripts/fetch-minilm.sh)
  export MORNINGAI_EMBED_MODEL_DIR
fi

cargo fmt --all -- --check
report=${CARGO_TARGET_DIR:-target}/tmp/crash-report.txt
rm -f "$report"
cargo test --workspace --locked "$@"
# What the crash tests measured (duplicate executions under SIGKILL and FLUSHALL).
[[ -f $report ]] && cat "$report"
exit 0
