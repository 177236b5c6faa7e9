#!/usr/bin/env bash
# The whole test suite. Provisions throwaway PostgreSQL 18 + pgvector and Redis (unless
# DATABASE_URL / REDIS_URL point at existing ones), checks formatting and lints, runs every
# test against them, and cleans up. Extra arguments go to `cargo test` (e.g. a test name
# filter). Each phase prints how long it took, and a summary closes the run.
set -euo pipefail
cd "$(dirname "$0")/.."

_phases=()
_phase_t0=$SECONDS
# Ends the current phase: records its name and duration.
phase_done() {
  local took=$((SECONDS - _phase_t0))
  _phases+=("$(printf '%-18s %5d s' "$1" "$took")")
  echo "== phase $1: ${took} s" >&2
  _phase_t0=$SECONDS
}
summary() {
  echo "== test phases (total $SECONDS s):" >&2
  for p in "${_phases[@]}"; do echo "   $p" >&2; done
}

# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh
# The services' EXIT trap must still run; the summary prints first.
trap 'summary; morningai_services_cleanup' EXIT
phase_done services

# The official Python clients the compatibility tests drive (langgraph-sdk, mcp, openai),
# Slack's and LINE's SDKs and PyNaCl (Discord's Ed25519) that sign and check the webhook
# tests' requests, PyJWT and cryptography (a GitHub App's key, and its JWT checked),
# Standard Webhooks' reference library that verifies our outbound deliveries, an OpenAPI validator
# for the document generated clients are built from, and schemathesis.
if [[ -z ${MORNINGAI_SDK_PYTHON:-} ]]; then
  sdk_venv="${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}/sdk-venv"
  if ! "$sdk_venv/bin/python" -c 'import langgraph_sdk, mcp, openai, openapi_spec_validator, schemathesis, slack_sdk, linebot, nacl, standardwebhooks, jwt, cryptography' 2>/dev/null; then
    echo "test tools: pip install langgraph-sdk mcp openai openapi-spec-validator schemathesis slack-sdk line-bot-sdk pynacl standardwebhooks pyjwt cryptography into $sdk_venv" >&2
    rm -rf "$sdk_venv"
    python3 -m venv "$sdk_venv"
    "$sdk_venv/bin/pip" install -q --disable-pip-version-check 'langgraph-sdk>=0.4,<0.5' \
      'mcp==2.3.0' 'openai==3.57.0' 'openapi-spec-validator>=0.9,<0.10' 'schemathesis==4.32.5' \
      'slack-sdk==3.48.0' 'line-bot-sdk==3.27.0' \
      'pynacl==1.6.2' 'standardwebhooks==1.3.0' 'pyjwt==2.15.1' 'cryptography==50.0.2' >&2
  fi
  export MORNINGAI_SDK_PYTHON=$sdk_venv/bin/python
  export MORNINGAI_ST=${MORNINGAI_ST:-$sdk_venv/bin/st}
fi

# Real all-MiniLM-L6-v2 weights for the embedding tests.
if [[ -z ${MORNINGAI_EMBED_MODEL_DIR:-} ]]; then
  MORNINGAI_EMBED_MODEL_DIR=$(scripts/fetch-minilm.sh)
  export MORNINGAI_EMBED_MODEL_DIR
fi
phase_done tools

cargo fmt --all -- --check
# Clippy also builds the dashboard (crates/web's build script runs npm ci and vite build).
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd web && npm run --silent typecheck)
phase_done lint

# One build of every test binary (and the morningai binary the CLI tests run), then the run.
cargo test --workspace --locked --no-run "$@"
phase_done build
report=${CARGO_TARGET_DIR:-target}/tmp/crash-report.txt
rm -f "$report"
cargo test --workspace --locked "$@"
phase_done "rust tests"
# What the crash tests measured (duplicate executions under SIGKILL and FLUSHALL).
[[ -f $report ]] && cat "$report"
# Unless a test filter was given: the dashboard, the API fuzz and the soak.
if (($# == 0)); then
  # The dashboard: component tests (Vitest), then end to end in Debian's Chromium against the
  # release binary, as deployed (web/e2e/run.mjs; screenshots in web/e2e/screenshots/).
  (cd web && npm test --silent)
  command -v chromium >/dev/null || { apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }; }
  # The release binary, and the soak's load driver beside it (one build, shared features).
  cargo build --release --locked -p morningai -p morningai-bench --bin morningai --bin soak-load
  phase_done "release build"
  MORNINGAI_BIN="${CARGO_TARGET_DIR:-target}/release/morningai" node web/e2e/run.mjs
  phase_done dashboard
  # The served API against its OpenAPI document, on both backends (~3–4 minutes each).
  scripts/fuzz-api.sh
  phase_done "api fuzz"
  # The distributed deployment under faults for 60 s (bench/soak.sh: HAProxy, two serve,
  # two workers; a worker and a serve SIGKILLed, Redis and PostgreSQL restarted in the first
  # half, RSS judged in the second) with its reconciliation asserted; on services of its own, so it can restart them. The release
  # binary, as deployed (the fuzz keeps the debug one: its overflow checks are findings).
  env -u DATABASE_URL -u REDIS_URL SECONDS_TOTAL=60 RATE=20 \
    MORNINGAI_BIN="${CARGO_TARGET_DIR:-target}/release/morningai" bench/soak.sh
  phase_done "soak (60 s)"
fi
exit 0
