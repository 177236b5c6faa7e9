#!/usr/bin/env bash
# Soak of the distributed deployment under faults, on loopback: HAProxy (deploy/haproxy.cfg's
# settings) in front of two `serve`, two `worker`, PostgreSQL 18 + pgvector and Redis from
# scripts/test-services.sh. The load driver (`soak-load`, crates/bench/src/soak_load.rs) posts
# echo tasks (every tenth slot a small graph run instead) at RATE/s for SECONDS_TOTAL and
# reads an earlier task back after each post, with SSE clients attached through the
# balancer. Faults in the first half, so that the second half shows the steady state after
# them: SIGKILL a worker (10 %), SIGKILL a serve (20 %), restart Redis empty (30 %), restart
# PostgreSQL (40 %); each killed process is started again after 3 s. RSS of every process is
# sampled every 5 s. bench/soak.py then reconciles and prints a JSON report.
#
#   bench/soak.sh                 # 600 s at half the end-to-end saturation of the same mix
#   SECONDS_TOTAL=60 RATE=20 bench/soak.sh
# MORNINGAI_BIN picks the binary (default: the release build, built if missing); the driver
# is the soak-load next to it (built with it: cargo build --release -p morningai -p
# morningai-bench --bin morningai --bin soak-load).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECONDS_TOTAL:-600}

command -v haproxy >/dev/null || { apt-get install -y -qq haproxy >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq haproxy; }; }
if [[ -n ${MORNINGAI_BIN:-} ]]; then BIN=$MORNINGAI_BIN; else
  cargo build --release -q --locked -p morningai -p morningai-bench --bin morningai --bin soak-load
  BIN=$PWD/${CARGO_TARGET_DIR:-target}/release/morningai
fi
DRIVER=$(dirname "$BIN")/soak-load
[[ -x $DRIVER ]] || { echo "no load driver at $DRIVER: cargo build --release -p morningai-bench --bin soak-load" >&2; exit 1; }

# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh
work=$(mktemp -d)
declare -A pid
cleanup() {
  for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
  morningai_services_cleanup
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export MORNINGAI_ENV=production MORNINGAI_SIGNING_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export MORNINGAI_LOG_LEVEL=warn MORNINGAI_DATA_DIR=$work/data MORNINGAI_TRUST_FORWARDED_FOR=true
cat >"$work/morningai.toml" <<EOF
job_lease_secs = 5
reconcile_interval_secs = 2
reconcile_min_age_secs = 3
EOF
export MORNINGAI_CONFIG=$work/morningai.toml
"$BIN" migrate >/dev/null
email="soak-$RANDOM@example.com"
MORNINGAI_PASSWORD=soak-password-123 "$BIN" user create --email "$email" >/dev/null
"$BIN" tenant create --name Soak --slug soak --owner "$email" >/dev/null
key=$("$BIN" apikey create --tenant soak --user "$email" --role member 2>/dev/null)
owner_key=$("$BIN" apikey create --tenant soak --user "$email" 2>/dev/null)

declare -A port=([serve-1]=$(free_port) [serve-2]=$(free_port))
lb=$(free_port)
start() {
  case $1 in
    serve-*) "$BIN" serve --listen "127.0.0.1:${port[$1]}" >>"$work/$1.log" 2>&1 & ;;
    worker-*) "$BIN" worker --concurrency 8 --grace-secs 5 >>"$work/$1.log" 2>&1 & ;;
  esac
  pid[$1]=$!
}
for role in serve-1 serve-2 worker-1 worker-2; do start "$role"; done
sed -e "s/bind \*:8080/bind 127.0.0.1:$lb/" \
    -e "s/server serve-1 serve-1:8080/server serve-1 127.0.0.1:${port[serve-1]}/" \
    -e "s/server serve-2 serve-2:8080/server serve-2 127.0.0.1:${port[serve-2]}/" \
    deploy/haproxy.cfg >"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pid[haproxy]=$!
# Up before the load: each serve answers /readyz itself, then the load balancer (whose
# health checks mark a server up after two passes, 2 s apart) answers it too; 60 s at most.
# (A CI run once had the setup's first request answered 503 after the earlier 20-s wait,
# which went on regardless; its logs were gone with the work directory.) A step that fails
# now shows the processes' last log lines first.
trap 'echo "soak: failed at line $LINENO; the last log lines:" >&2; tail -n 25 "$work"/*.log >&2' ERR
ready() {
  for _ in $(seq 300); do curl -fs "$1/readyz" >/dev/null && return; sleep 0.2; done
  echo "soak: $1 not ready after 60 s" >&2
  return 1
}
for role in serve-1 serve-2; do ready "http://127.0.0.1:${port[$role]}"; done
ready "http://127.0.0.1:$lb"

# The small graph the load runs beside echo tasks: a template node and a set node.
assistant=$(curl -fsS -X POST "http://127.0.0.1:$lb/api/v1/graphs" -H "x-api-key: $owner_key" \
  -H 'content-type: application/json' -d '{"name": "soak-flow", "definition": {
    "channels": {"topic": {}, "draft": {}, "log": {"reducer": "append"}},
    "nodes": {"write": {"type": "template", "config": {"channel": "draft", "template": "About {topic}"}},
              "done": {"type": "set", "config": {"channel": "log", "value": "written"}}},
    "edges": [{"from": "__start__", "to": "write"}, {"from": "write", "to": "done"}, {"from": "done", "to": "__end__"}]}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["assistant_id"])')

# The load: half the saturation of the same mix, unless RATE is given. Saturation is the
# highest rate the whole deployment keeps up with end to end — the API answering, the SSE
# clients fed, the workers finishing — found by 20-second steps of the same load (the
# driver's open mode with 4 SSE clients; echo tasks keyed probe-*, so the reconciliation
# does not count them): doubling from 25/s while it keeps up, then halving the gap twice. A
# step keeps up when the driver offered its rate and at most two seconds' worth of tasks is
# unfinished when the step ends. (Accepting tasks is not keeping up: the API alone takes
# them ~3x faster than two workers beside it finish them.)
pending() { psql "$DATABASE_URL" -qAtX -c "SELECT count(*) FROM tasks WHERE status NOT IN ('succeeded','failed','cancelled')"; }
keeps_up() {  # rate -> exit 0 when the deployment kept up with it
  local out; out=$("$DRIVER" --mode open --rate "$1" --seconds 20 --sse 4 --base "http://127.0.0.1:$lb" \
    --key "$key" --assistant "$assistant" --key-prefix "probe-$1-" --out "$work/probe-$1" </dev/null)
  local left; left=$(pending)
  local offered; offered=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['slots_offered_per_s'])" "$out")
  echo "probe $1/s: offered $offered/s, $left unfinished at the end" >&2
  for _ in $(seq 600); do [[ $(pending) == 0 ]] && break; sleep 0.5; done
  python3 -c "import sys; r, o, l = map(float, sys.argv[1:]); sys.exit(0 if o >= 0.95 * r and l <= 2 * r else 1)" "$1" "$offered" "$left"
}
if [[ -z ${RATE:-} ]]; then
  good=0 bad=25
  while keeps_up "$bad"; do good=$bad; bad=$((bad * 2)); done
  for _ in 1 2; do
    mid=$(((good + bad) / 2))
    if keeps_up "$mid"; then good=$mid; else bad=$mid; fi
  done
  ((good > 0)) || { echo "the deployment did not keep up with 25 tasks/s" >&2; exit 1; }
  RATE=$(((good + 1) / 2))
  echo "saturation: $good slots/s kept up with end to end (not $bad); soak rate $RATE/s" >&2
fi

# RSS (kB) of each role, sampled every 5 s while the run waits for its next fault.
rss_sample() {
  local now; now=$(date +%s)
  for role in serve-1 serve-2 worker-1 worker-2; do
    local p=${pid[$role]}
    local rss; rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    echo "$now $role $p $rss" >>"$work/rss.txt"
  done
}

python3 bench/soak.py --base "http://127.0.0.1:$lb" --key "$key" --database-url "$DATABASE_URL" --assistant "$assistant" \
  --rate "$RATE" --seconds "$SECS" --faults "$work/faults.txt" --driver "$DRIVER" --out "$work/load" \
  >"$work/report.json" &
driver=$!
t0=$(date +%s.%N)
: >"$work/faults.txt"
fault() {  # name, then the commands of the fault; the window runs until the system answers again
  local name=$1; shift
  local s; s=$(date +%s.%N)
  "$@"
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$lb/readyz" >/dev/null && break; sleep 0.1; done
  echo "$name $s $(date +%s.%N)" >>"$work/faults.txt"
  echo "fault $name: $(python3 -c "print(round($(date +%s.%N) - $s, 1))") s" >&2
}
kill_and_restart() { kill -9 "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; sleep 3; start "$1"; }
redis_restart() {
  local p; p=$(cat "$_mai_redis_tmp/redis.pid")
  kill -9 "$p"; sleep 1
  redis-server --port "$_mai_redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$_mai_redis_tmp/redis.pid" --logfile "$_mai_redis_tmp/redis.log" \
    --dir "$_mai_redis_tmp" >/dev/null
}
pg_restart() { (cd "$_mai_pg_tmp" && _mai_as_pg "$_mai_pg_ctl" -D "$_mai_pg_tmp/data" -m fast -w -l "$_mai_pg_tmp/postgres.log" restart >/dev/null); }

at() {  # wait until fraction $1 of the run, sampling RSS meanwhile
  local target; target=$(python3 -c "print($t0 + $SECS * $1)")
  while python3 -c "import sys,time; sys.exit(0 if time.time() < $target else 1)"; do rss_sample; sleep 5; done
}
at 0.1; fault worker_kill kill_and_restart worker-1
at 0.2; fault serve_kill kill_and_restart serve-1
at 0.3; fault redis_restart redis_restart
at 0.4; fault postgres_restart pg_restart
at 1.0
status=0
wait "$driver" || status=$?
cat "$work/report.json"
if python3 - "$work/rss.txt" "$work/faults.txt" <<'PY'
import sys, collections
rows = [l.split() for l in open(sys.argv[1])]
t0 = float(rows[0][0])
# Steady state: from 10 s after the last fault ended (or after a process started, if later).
calm = max(float(l.split()[2]) for l in open(sys.argv[2])) - t0 + 10
by = collections.defaultdict(list)  # (role, pid) -> [(t, rss)]
for t, role, pid, rss in rows:
    if rss != "0":
        by[(role, pid)].append((float(t) - t0, int(rss)))
print(f"RSS (MiB) per process lifetime: first sample past the faults (t >= {calm:.0f} s) -> last")
worst = 0.0
for (role, pid), xs in sorted(by.items()):
    after = [r for t, r in xs if t >= max(calm, xs[0][0] + 10)]
    if len(xs) < 6 or len(after) < 3:
        print(f"  {role} pid {pid}: {len(xs)} samples, {len(after)} after the faults (not judged)")
        continue
    warm, last = after[0], after[-1]
    growth = (last - warm) / warm * 100
    worst = max(worst, growth)
    print(f"  {role} pid {pid}: {xs[0][1]/1024:.1f} at start, {warm/1024:.1f} -> {last/1024:.1f} "
          f"({growth:+.1f} %), peak {max(r for _, r in xs)/1024:.1f}, {len(xs)} samples")
print(f"largest growth after the faults: {worst:+.1f} %")
sys.exit(0 if worst <= 10 else 1)
PY
then :; else echo "RSS grew more than 10 % after the faults" >&2; status=1; fi
rm -rf /tmp/morningai-soak-last && cp -r "$work" /tmp/morningai-soak-last
echo "logs, report and RSS samples in /tmp/morningai-soak-last" >&2
exit $status
