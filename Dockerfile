# MorningAI: one image for every process (serve, worker, migrate, doctor).
#   docker build -t morningai .
#   docker run -p 8080:8080 -v morningai-data:/var/lib/morningai morningai      # embedded mode
# Distributed mode: docker-compose.yml (PostgreSQL + pgvector, Redis, 2 serve, 2 worker).

# --- dashboard: web/ built with Node 20 (Debian bookworm's own Node is too old for Vite 8) ---
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npx vite build --outDir /dist

# --- build: the release binary, with the dashboard embedded ---------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /dist /web-dist
# crates/web embeds this folder instead of running npm (there is no Node in this stage).
ENV MORNINGAI_WEB_DIST=/web-dist
# The registry and target caches survive between builds (BuildKit); the binary is copied
# out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p morningai \
 && install -m 0755 target/release/morningai /usr/local/bin/morningai

# --- runtime: Debian slim, no toolchain, a non-root user ---------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 morningai \
 && useradd --system --uid 10001 --gid morningai --home-dir /var/lib/morningai --create-home morningai
COPY --from=build /usr/local/bin/morningai /usr/local/bin/morningai
USER morningai:morningai
WORKDIR /var/lib/morningai
ENV MORNINGAI_DATA_DIR=/var/lib/morningai \
    MORNINGAI_LISTEN=0.0.0.0:8080 \
    MORNINGAI_LOG_FORMAT=json
VOLUME ["/var/lib/morningai"]
EXPOSE 8080
# Ready = the database (and Redis, when configured) answer; a worker has no HTTP port, so
# compose and Render override or drop this check for workers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
# A command, not an entrypoint: `docker run morningai morningai worker`, compose's
# `command:` and Render's `dockerCommand` all name the binary.
CMD ["morningai", "serve"]
