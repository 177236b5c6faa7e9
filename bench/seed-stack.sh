#!/usr/bin/env bash
# The distributed write path side by side with the seed's stack, in one run, on one
# throwaway PostgreSQL 18 and Redis (scripts/test-services.sh):
#   - ours: `morningai serve` on PostgreSQL + Redis (API only; no worker runs, on either side);
#   - the seed's: bench/seed_app.py under Gunicorn with 5 sync workers, psycopg 3 on a role
#     under row-level security, an RQ enqueue per created task.
# Both authenticate a JWT bearer (ours: an access token from /auth/login). wrk -t2 -c64,
# DURATION seconds per cell, ROUNDS rounds alternating the two stacks; medians and ratios.
# EVENT_LOCK_AB=1 adds a third side, ours with the task_events commit-order trigger
# (migration 14) disabled during its cells: what the per-tenant event lock costs.
# MORNINGAI_TEST_PG_DURABLE=1 starts the throwaway PostgreSQL with fsync and synchronous
# commit on (scripts/test-services.sh), as production runs.
# Usage: bench/seed-stack.sh        (DURATION=10 ROUNDS=3; MORNINGAI_BIN=path skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
TOOLS=${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}
VENV=$TOOLS/seed-venv

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
[[ -x $VENV/bin/gunicorn ]] || {
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'flask>=3.1,<4' 'gunicorn>=23,<24' 'psycopg[binary]>=3.2,<4' 'rq>=2,<3' 'pyjwt>=2.9,<3'
}
if [[ -n ${MORNINGAI_BIN:-} ]]; then
  BIN=$MORNINGAI_BIN
else
  cargo build --release -q -p morningai
  BIN=$PWD/target/release/morningai
fi
unset DATABASE_URL REDIS_URL # always throwaway services
source scripts/test-services.sh
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; morningai_services_cleanup' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Any HTTP answer counts (the seed's routes all need a token).
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; echo "$1 did not come up" >&2; exit 1; }

# The seed's schema in a database of its own: RLS forced, the app's role cannot bypass it.
seed_db=seed_$RANDOM$RANDOM
psql -q "$DATABASE_URL" -c "CREATE DATABASE $seed_db"
seed_admin=${DATABASE_URL%/*}/$seed_db
psql -q "$seed_admin" <<SQL
CREATE ROLE $seed_db LOGIN PASSWORD 'seed' NOSUPERUSER NOBYPASSRLS;
CREATE TABLE tasks (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL, kind text NOT NULL, status text NOT NULL,
    input jsonb NOT NULL, result jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX tasks_tenant ON tasks (tenant_id, id);
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON tasks USING (tenant_id = current_setting('app.tenant_id', true)::uuid);
GRANT SELECT, INSERT, UPDATE ON tasks TO $seed_db;
SQL
seed_port=$(free_port)
secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
(cd bench && SEED_DATABASE_URL="postgresql://$seed_db:seed@${seed_admin#*@}" SEED_JWT_SECRET=$secret \
  exec "$VENV/bin/gunicorn" -w 5 -b "127.0.0.1:$seed_port" --log-level warning seed_app:app) &
pids+=($!)
seed_token=$("$VENV/bin/python" -c 'import jwt, sys, uuid; print(jwt.encode({"sub": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4())}, sys.argv[1], algorithm="HS256"))' "$secret")

# Ours on the same PostgreSQL and Redis.
export MORNINGAI_DATA_DIR=$work/ours MORNINGAI_LOG_LEVEL=warn
email="bench-$RANDOM$RANDOM@example.com"
MORNINGAI_PASSWORD=benchmark-password "$BIN" user create --email "$email" >/dev/null
"$BIN" tenant create --name Bench --slug "bench-$RANDOM$RANDOM" --owner "$email" >/dev/null
ours_port=$(free_port)
"$BIN" serve --listen "127.0.0.1:$ours_port" >"$work/ours.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$ours_port/healthz"
ours_token=$(curl -fs -X POST "http://127.0.0.1:$ours_port/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"benchmark-password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"kind":"echo","input":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
LUA
declare -A task
for side in ours seed; do
  port_var=${side}_port token_var=${side}_token
  base="http://127.0.0.1:${!port_var}/api/v1"
  wait_up "$base/tasks/00000000-0000-0000-0000-000000000000"
  task[$side]=$(curl -fs -X POST "$base/tasks" -H "authorization: Bearer ${!token_var}" -H 'content-type: application/json' \
    -d '{"kind":"echo","input":{"n":1}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -fs -o /dev/null "$base/tasks/${task[$side]}" -H "authorization: Bearer ${!token_var}"
done

sides=(ours seed)
[[ ${EVENT_LOCK_AB:-} == 1 ]] && sides+=(nolock)
nolock_port=$ours_port nolock_token=$ours_token
task[nolock]=${task[ours]}
trigger() { psql -q "$DATABASE_URL" -c "ALTER TABLE task_events $1 TRIGGER task_events_commit_order_statement"; }
for round in $(seq "$ROUNDS"); do
  for ep in GET POST; do
    for side in "${sides[@]}"; do
      [[ $side == nolock ]] && trigger DISABLE
      port_var=${side}_port token_var=${side}_token
      base="http://127.0.0.1:${!port_var}/api/v1"
      args=("$base/tasks/${task[$side]}")
      [[ $ep == POST ]] && args=(-s "$work/post.lua" "$base/tasks")
      rps=$(wrk -t2 -c64 -d"${DURATION}s" --latency -H "authorization: Bearer ${!token_var}" "${args[@]}" |
        awk '/Non-2xx/ {print "NON-2XX: " $0 > "/dev/stderr"} /Requests\/sec/ {print $2}')
      [[ $side == nolock ]] && trigger ENABLE
      echo "$round $ep $side $rps" | tee -a "$work/results"
    done
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for ep in ("POST", "GET"):
    med = {side: statistics.median(float(r[3]) for r in rows if r[1] == ep and r[2] == side) for side in {r[2] for r in rows}}
    rounds = sum(1 for r in rows if r[1] == ep and r[2] == "ours")
    print(f"{ep:4} /api/v1/tasks: ours {med['ours']:,.0f} req/s, seed stack {med['seed']:,.0f} req/s: {med['ours'] / med['seed']:.1f}x (medians of {rounds} rounds)")
    if "nolock" in med:
        print(f"     ours without the event commit-order trigger {med['nolock']:,.0f} req/s: the trigger costs {1 - med['ours'] / med['nolock']:.1%}")
PY
"$VENV/bin/python" -c 'import flask, gunicorn, psycopg, rq, jwt, importlib.metadata as m; print("seed stack: Flask", m.version("flask"), "Gunicorn", gunicorn.__version__, "psycopg", psycopg.__version__, "rq", rq.__version__, "PyJWT", jwt.__version__)'
