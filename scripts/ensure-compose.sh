#!/usr/bin/env bash
# ensure-compose.sh — make sure a Docker Compose answers, and print how to call it.
#
# Prints exactly one line on stdout: `docker compose` (the v2 plugin, as on a
# developer laptop) or `docker-compose` (v1). Logs go to stderr. Usage:
#   COMPOSE="$(scripts/ensure-compose.sh)"; $COMPOSE -f deploy/compose.yaml up -d
# On the offline machines no v2 plugin package exists, so we fall back to
# Debian's docker-compose 1.29.2, which runs our compose files fine. Compose files must therefore stay
# v1-compatible (e.g. `depends_on: {db: {condition: service_healthy}}` works).
set -euo pipefail

log() { echo "[ensure-compose] $*" >&2; }
die() { echo "[ensure-compose] ERROR: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if docker compose version >/dev/null 2>&1; then
  echo "docker compose"; exit 0
fi
if command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
  echo "docker-compose"; exit 0
fi

# --no-install-recommends: the package recommends docker.io, which would
# clash with an engine installed some other way (e.g. docker-ce).
log "installing docker-compose (v1) from Debian (apt-get)"
apt_log="$(mktemp /tmp/ensure-compose-apt.XXXXXX.log)"
if ! { $SUDO apt-get update -qq &&
       $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose; } >"$apt_log" 2>&1; then
  tail -n 30 "$apt_log" >&2
  die "apt-get install docker-compose failed (full log: $apt_log)"
fi
rm -f "$apt_log"
docker-compose version >/dev/null 2>&1 || die "docker-compose was installed but does not run"
log "installed $(docker-compose version --short 2>/dev/null || echo docker-compose)"
echo "docker-compose"
