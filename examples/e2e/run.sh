#!/usr/bin/env bash
# run.sh — the framework examples (examples/next, examples/astro) built for
# production and driven in Debian's Chromium against the real sessiond and
# Postgres (make examples-e2e). Builds sessiond and @sessiond/js from this
# tree, `npm ci` in each example (committed lockfiles), one production
# build per example. EXAMPLES="next" runs one of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "[examples] $*" >&2; }
. examples/e2e/lib.sh

prepare chromium
BIN=$(mktemp -d)
on_exit "rm -rf '$BIN'"

log "building sessiond, @sessiond/js and the examples"
build_sessiond "$BIN"
EXAMPLES=(${EXAMPLES:-next astro})
for ex in "${EXAMPLES[@]}"; do
  [ -d "examples/$ex" ] || continue
  (cd "examples/$ex" && npm ci --no-audit --no-fund --loglevel=error && NEXT_TELEMETRY_DISABLED=1 ASTRO_TELEMETRY_DISABLED=1 npm run build --silent) >&2
done

# One container; each example's Stack creates its own database in it.
start_postgres "sessiond-examples-pg-$$"

# LOCAL TESTS ONLY: a key for a throwaway database.
export SESSIOND_API_KEY=sk_examples_e2e_local_only
export SESSIOND_BIN="$BIN/sessiond"
export NEXT_TELEMETRY_DISABLED=1 ASTRO_TELEMETRY_DISABLED=1
status=0
for ex in "${EXAMPLES[@]}"; do
  [ -d "examples/$ex" ] || continue
  log "$ex in Chromium"
  (cd "examples/$ex" && node --test --test-concurrency=1 e2e/) || status=1
done
exit $status
