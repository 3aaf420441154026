# lib.sh — what examples/demo/run.sh and examples/e2e/run.sh both do before
# their apps start: the tools, @sessiond/js and sessiond built from this
# tree, and one Postgres container. Sourced from the repository root, after
# `set -euo pipefail` and a `log` function.

# on_exit CMD: run CMD when the script exits (the last registered first);
# the one EXIT trap of the script that sources this file.
_on_exit=()
on_exit() { _on_exit+=("$1"); }
_run_on_exit() {
  local i
  for ((i = ${#_on_exit[@]} - 1; i >= 0; i--)); do eval "${_on_exit[i]}" || true; done
}
trap _run_on_exit EXIT

# prepare [chromium]: Go on the PATH, a Docker engine, the images (sets
# SESSIOND_POSTGRES_IMAGE) and, with "chromium", Debian's /usr/bin/chromium.
prepare() {
  command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
  scripts/ensure-docker.sh >&2
  eval "$(scripts/ensure-images.sh)"
  if [ "${1:-}" = chromium ] && [ ! -x /usr/bin/chromium ]; then
    log "installing chromium (Debian)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

# build_sessiond DIR: @sessiond/js (npm ci, committed lockfile; its dist/ is
# what the apps install) and DIR/sessiond.
build_sessiond() {
  (cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >&2
  go build -o "$1/sessiond" ./cmd/sessiond
}

# start_postgres NAME: a Postgres container NAME on a loopback port, removed
# when the script exits; returns once it accepts connections and sets
#   E2E_PG  NAME (create_database, and the tests' Stack, create databases in it)
#   E2E_DB  postgres://postgres:postgres@127.0.0.1:<port> (append /<database>)
start_postgres() {
  E2E_PG=$1
  on_exit "docker rm -f '$E2E_PG' >/dev/null 2>&1"
  docker run -d --name "$E2E_PG" -e POSTGRES_USER=postgres -e POSTGRES_PASSWORD=postgres -e POSTGRES_DB=postgres \
    -p 127.0.0.1::5432 "$SESSIOND_POSTGRES_IMAGE" >/dev/null
  local port="" _
  for _ in $(seq 1 120); do # a bound that only catches a container that never starts
    port=$(docker port "$E2E_PG" 5432/tcp 2>/dev/null | head -1 | sed 's/.*://') || true
    if [ -n "$port" ] && docker exec "$E2E_PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null 2>&1; then break; fi
    sleep 1
  done
  docker exec "$E2E_PG" pg_isready -h 127.0.0.1 -U postgres >/dev/null || { docker logs "$E2E_PG" | tail -20 >&2; log "Postgres did not start"; exit 1; }
  E2E_DB="postgres://postgres:postgres@127.0.0.1:$port"
  export E2E_PG E2E_DB
}

# create_database NAME: an empty database NAME in the container.
create_database() {
  docker exec "$E2E_PG" psql -q -U postgres -h 127.0.0.1 -c "CREATE DATABASE $1" >/dev/null
}
