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
. examples/e2e/lib.sh

command -v curl >/dev/null || { apt-get update -qq >&2 && apt-get install -y -qq curl >/dev/null; }
if [ "$cmd" = e2e ]; then prepare chromium; else prepare; fi
BIN=$(mktemp -d)
on_exit "rm -rf '$BIN'"

log "npm ci, build @sessiond/js, sessiond, the pages and the demo backend"
build_sessiond "$BIN"
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent -- --logLevel warn) >&2
go build -o "$BIN/demo" ./examples/demo

# Postgres: one container; the e2e tests create a database per mode.
start_postgres "sessiond-demo-pg-$$"

# LOCAL DEMO ONLY: a public key for a throwaway database.
KEY=sk_demo_local_only_do_not_use_in_production

case "$cmd" in
demo)
  MODE=${SESSIOND_SESSION_MODE:-multi}
  PORT=${DEMO_PORT:-3000}
  SPORT=${DEMO_SESSIOND_PORT:-18080}
  create_database sessiond_demo
  SESSIOND_DATABASE_URL="$E2E_DB/sessiond_demo?sslmode=disable" SESSIOND_ADDR="127.0.0.1:$SPORT" \
    SESSIOND_API_KEYS=$KEY SESSIOND_SESSION_MODE=$MODE SESSIOND_COOKIE_SECURE=false \
    "$BIN/sessiond" serve >"$BIN/sessiond.log" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  pids=($!)
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$SPORT/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$SPORT/readyz" >/dev/null || { tail -20 "$BIN/sessiond.log" >&2; exit 1; }
  SESSIOND_URL="http://127.0.0.1:$SPORT" SESSIOND_API_KEY=$KEY DEMO_ADDR="127.0.0.1:$PORT" DEMO_WEB_DIR="$WEB/dist" \
    "$BIN/demo" &
  on_exit "kill $! 2>/dev/null"
  pids+=($!)
  for _ in $(seq 1 40); do curl -fsS "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.25; done
  echo
  echo "demo is ready: http://127.0.0.1:$PORT/  (React; also /vue.html and /plain.html)"
  echo "sessiond ($MODE mode) at http://127.0.0.1:$SPORT, reverse-proxied under /api/auth; Ctrl-C stops everything"
  wait "${pids[@]}"
  ;;
e2e)
  cd "$WEB"
  SESSIOND_BIN="$BIN/sessiond" DEMO_BIN="$BIN/demo" DEMO_WEB_DIR="$ROOT/$WEB/dist" \
    SESSIOND_API_KEY=$KEY DEMO_SCREENSHOTS="$ROOT/docs" node --test --test-concurrency=1 e2e/
  ;;
*)
  echo "usage: $0 demo|e2e" >&2
  exit 2
  ;;
esac
