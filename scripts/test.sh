#!/usr/bin/env bash
# The whole test suite. Provisions throwaway PostgreSQL 18 + pgvector and Redis (unless
# DATABASE_URL / REDIS_URL point at existing ones), runs every test against them, and
# cleans up. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh

cargo fmt --all -- --check
report=${CARGO_TARGET_DIR:-target}/tmp/crash-report.txt
rm -f "$report"
cargo test --workspace --locked "$@"
# What the crash tests measured (duplicate executions under SIGKILL and FLUSHALL).
[[ -f $report ]] && cat "$report"
exit 0
