#!/usr/bin/env bash
# run.sh — the framework examples (examples/next, examples/astro) built for
# production and driven in Debian's Chromium against the real sessiond and
# Postgres (make examples-e2e). Builds sessiond and @sessiond/js from this
# tree, `npm ci` in each example (committed lockfiles), one production
# build per example.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
log() { echo "[examples] $*" >&2; }

command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
scripts/ensure-docker.sh >&2
eval "$(scripts/ensure-images.sh)"
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (Debian)"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

BIN=$(mktemp -d)
PG=sessiond-examples-pg-$$
cleanup() {
  docker rm -f "$PG" >/dev/null 2>&1 || true
  rm -rf "$BIN"
}
trap cleanup EXIT

log "building sessiond, @sessiond/js and the examples"
go build -o "$BIN/sessiond" ./cmd/sessiond
(cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
EXAMPLES=(${EXAMPLES:-next astro})
for ex in "${EXAMPLES[@]}"; do
  [ -d "examples/$ex" ] || continue
  (cd "examples/$ex" && npm ci --no-audit --no-fund --loglevel=error && NEXT_TELEMETRY_DISABLED=1 ASTRO_TELEMETRY_DISABLED=1 npm run build --silent) >&2
done

docker run -d --name "$PG" -e POSTGRES_USER=postgres -e POSTGRES_PASSWORD=postgres -e POSTGRES_DB=postgres \
  -p 127.0.0.1::5432 "$SESSIOND_POSTGRES_IMAGE" >/dev/null
PGPORT=""
for _ in $(seq 1 120); do
  PGPORT=$(docker port "$PG" 5432/tcp 2>/dev/null | head -1 | sed 's/.*://') || true
  if [ -n "$PGPORT" ] && docker exec "$PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null 2>&1; then break; fi
  sleep 1
done
docker exec "$PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null || { docker logs "$PG" | tail -20 >&2; log "Postgres did not start"; exit 1; }

# LOCAL TESTS ONLY: a key for a throwaway database.
export SESSIOND_API_KEY=sk_examples_e2e_local_only
export SESSIOND_BIN="$BIN/sessiond" EXAMPLES_PG="$PG" EXAMPLES_DB="postgres://postgres:postgres@127.0.0.1:$PGPORT"
export NEXT_TELEMETRY_DISABLED=1 ASTRO_TELEMETRY_DISABLED=1
status=0
for ex in "${EXAMPLES[@]}"; do
  [ -d "examples/$ex" ] || continue
  log "$ex in Chromium"
  (cd "examples/$ex" && node --test --test-concurrency=1 e2e/) || status=1
done
exit $status
