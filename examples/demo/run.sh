#!/usr/bin/env bash
# run.sh demo|e2e — the demo app with a real sessiond and Postgres.
#
#   demo  (make demo) Postgres in Docker, sessiond and the demo built from
#         this tree, in the foreground until Ctrl-C; prints the URL.
#         SESSIOND_SESSION_MODE=single|multi (default multi), DEMO_PORT (3000).
#   e2e   (make demo-e2e) the same pieces, then Playwright in Debian's
#         Chromium against the demo in single and in multi mode
#         (examples/demo/web/e2e/, run with node --test).
#
# Works on a fresh machine like `make up`: it installs Chromium (e2e) and
# the npm packages, and makes the Postgres image exist (official or the
# offline stand-in).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WEB=examples/demo/web
cmd=${1:-demo}

log() { echo "[demo] $*" >&2; }

command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
command -v curl >/dev/null || { apt-get update -qq >&2 && apt-get install -y -qq curl >/dev/null; }
scripts/ensure-docker.sh >&2
eval "$(scripts/ensure-images.sh)"

# The browser and npm packages.
if [ "$cmd" = e2e ] && [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (Debian)"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
log "npm ci, build @sessiond/js and the pages"
(cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent -- --logLevel warn) >&2

log "building sessiond and the demo backend"
BIN=$(mktemp -d)
go build -o "$BIN/sessiond" ./cmd/sessiond
go build -o "$BIN/demo" ./examples/demo

# Postgres: one container, one database per mode.
PG=sessiond-demo-pg-$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  docker rm -f "$PG" >/dev/null 2>&1 || true
  rm -rf "$BIN"
}
trap cleanup EXIT
docker run -d --name "$PG" -e POSTGRES_USER=postgres -e POSTGRES_PASSWORD=postgres -e POSTGRES_DB=postgres \
  -p 127.0.0.1::5432 "$SESSIOND_POSTGRES_IMAGE" >/dev/null
PGPORT=""
for _ in $(seq 1 120); do
  PGPORT=$(docker port "$PG" 5432/tcp 2>/dev/null | head -1 | sed 's/.*://') || true
  if [ -n "$PGPORT" ] && docker exec "$PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null 2>&1; then break; fi
  sleep 1
done
docker exec "$PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null || { docker logs "$PG" | tail -20 >&2; log "Postgres did not start"; exit 1; }
for db in sessiond_single sessiond_multi sessiond_demo; do
  docker exec "$PG" psql -q -U postgres -h 127.0.0.1 -c "CREATE DATABASE $db" >/dev/null
done
DB="postgres://postgres:postgres@127.0.0.1:$PGPORT"

# LOCAL DEMO ONLY: a public key for a throwaway database.
KEY=sk_demo_local_only_do_not_use_in_production

case "$cmd" in
demo)
  MODE=${SESSIOND_SESSION_MODE:-multi}
  PORT=${DEMO_PORT:-3000}
  SPORT=${DEMO_SESSIOND_PORT:-18080}
  SESSIOND_DATABASE_URL="$DB/sessiond_demo?sslmode=disable" SESSIOND_ADDR="127.0.0.1:$SPORT" \
    SESSIOND_API_KEYS=$KEY SESSIOND_SESSION_MODE=$MODE SESSIOND_COOKIE_SECURE=false \
    "$BIN/sessiond" serve >"$BIN/sessiond.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$SPORT/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$SPORT/readyz" >/dev/null || { tail -20 "$BIN/sessiond.log" >&2; exit 1; }
  SESSIOND_URL="http://127.0.0.1:$SPORT" SESSIOND_API_KEY=$KEY DEMO_ADDR="127.0.0.1:$PORT" DEMO_WEB_DIR="$WEB/dist" \
    "$BIN/demo" &
  pids+=($!)
  for _ in $(seq 1 40); do curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.25; done
  echo
  echo "demo is ready: http://127.0.0.1:$PORT/  (React; also /vue.html and /plain.html)"
  echo "sessiond ($MODE mode) at http://127.0.0.1:$SPORT, reverse-proxied under /api/auth; Ctrl-C stops everything"
  wait "${pids[@]}"
  ;;
e2e)
  cd "$WEB"
  SESSIOND_BIN="$BIN/sessiond" DEMO_BIN="$BIN/demo" DEMO_WEB_DIR="$ROOT/$WEB/dist" DEMO_DB="$DB" \
    SESSIOND_API_KEY=$KEY DEMO_SCREENSHOTS="$ROOT/docs" node --test --test-concurrency=1 e2e/
  ;;
*)
  echo "usage: $0 demo|e2e" >&2
  exit 2
  ;;
esac
