#!/usr/bin/env bash
# What the Dockerfile's runtime stage would run, proven without a container daemon: build
# that stage's filesystem from Debian packages (debootstrap bookworm, minbase + the
# packages the Dockerfile installs), add the same non-root user, copy the binary in, and run
# `morningai migrate`, `doctor` and `serve` inside it with chroot as that user against
# PostgreSQL and Redis; then ask /readyz from outside.
#
#   scripts/rootfs-check.sh                 # throwaway PostgreSQL + Redis from test-services.sh
#   DATABASE_URL=… REDIS_URL=… scripts/rootfs-check.sh
#
# Needs root (debootstrap, chroot) and Debian's archive. MORNINGAI_BIN picks the binary
# (default target/release/morningai). The root filesystem is cached under
# ~/.cache/morningai/rootfs-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MORNINGAI_BIN:-${CARGO_TARGET_DIR:-target}/release/morningai}
[[ -x $bin ]] || { echo "no binary at $bin: cargo build --release -p morningai (or set MORNINGAI_BIN)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >&2 || { apt-get update -qq && apt-get install -y -qq debootstrap >&2; }; }

root=${MORNINGAI_ROOTFS:-$HOME/.cache/morningai/rootfs-bookworm}
if [[ ! -x $root/usr/bin/curl ]]; then
  rm -rf "$root"
  debootstrap --variant=minbase --include=ca-certificates,curl bookworm "$root" http://deb.debian.org/debian >&2
fi
# The Dockerfile's user and data directory.
if ! chroot "$root" id morningai >/dev/null 2>&1; then
  chroot "$root" groupadd --system --gid 10001 morningai
  chroot "$root" useradd --system --uid 10001 --gid morningai --home-dir /var/lib/morningai --create-home morningai
fi
install -m 0755 "$bin" "$root/usr/local/bin/morningai"

# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh
trap morningai_services_cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
inside=(chroot --userspec=10001:10001 "$root" /usr/bin/env -i HOME=/var/lib/morningai
  MORNINGAI_DATA_DIR=/var/lib/morningai MORNINGAI_ENV=production MORNINGAI_SIGNING_KEY="$key"
  DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MORNINGAI_LISTEN=127.0.0.1:$port
  RUST_BACKTRACE=0 /usr/local/bin/morningai)
echo "== inside $root as $(chroot "$root" id morningai)"
"${inside[@]}" migrate
"${inside[@]}" doctor
# chroot and env exec, so $! is the server's own process.
"${inside[@]}" serve > /tmp/rootfs-serve.log 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null || true; morningai_services_cleanup' EXIT
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== GET /readyz from outside"
curl -fsS "http://127.0.0.1:$port/readyz"
echo
owner=$(ps -o user= -p "$serve" 2>/dev/null || true)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$serve/status")
echo "== serve runs as uid $uid (${owner:-?})"
[[ $uid == 10001 ]]
# The binary's dynamic dependencies are all in the slim image.
chroot "$root" ldd /usr/local/bin/morningai | grep -q "not found" && { echo "missing libraries" >&2; exit 1; }
echo "rootfs check passed"
