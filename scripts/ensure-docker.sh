#!/usr/bin/env bash
# ensure-docker.sh — make sure a Docker engine answers `docker info`.
#
# On a developer laptop Docker is already running and this exits at once.
# On offline build machines (no container registry; README "The two
# commands") there may be no engine: we install Debian's docker.io (engine
# 20.10) and start dockerd by hand, because there is no systemd to do it.
#
# Usage: scripts/ensure-docker.sh          (idempotent; logs to stderr)
# Env:   DOCKERD_LOG   where dockerd writes its log (default /tmp/dockerd.log)
#        DOCKERD_WAIT  seconds to wait for the engine (default 60)
set -euo pipefail

log() { echo "[ensure-docker] $*" >&2; }
die() { echo "[ensure-docker] ERROR: $*" >&2; exit 1; }

DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"

# Use sudo only when not root (CI and the offline machines run as root).
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# 1. Already running? Nothing to do (the common case on laptops and reruns).
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi

# 2. Install the engine from Debian if dockerd (or any docker client) is missing.
#    The docker client already on PATH here (28.x) negotiates the API down to
#    the 20.10 engine, so we keep it; the package adds /usr/bin/docker too.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  log "installing docker.io from Debian (apt-get)"
  apt_log="$(mktemp /tmp/ensure-docker-apt.XXXXXX.log)"
  if ! { $SUDO apt-get update -qq &&
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    die "apt-get install docker.io failed (full log: $apt_log)"
  fi
  rm -f "$apt_log"
fi

# 3. Start dockerd unless one is already starting up (e.g. a parallel caller).
#    setsid+nohup detach it from this shell so it survives the caller's exit.
if [ -S /var/run/docker.sock ] && [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  log "dockerd already started (pid $(cat /var/run/docker.pid)); waiting for it"
else
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  $SUDO setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
fi

# 4. Wait, bounded, until the engine answers.
for _ in $(seq 1 "$DOCKERD_WAIT"); do
  if docker info >/dev/null 2>&1; then
    log "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done
tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
die "docker engine did not answer within ${DOCKERD_WAIT}s (see $DOCKERD_LOG)"
