#!/usr/bin/env bash
# ensure-images.sh — make sure the container images sessiond needs exist locally.
#
#   SESSIOND_POSTGRES_IMAGE  (default postgres:15,  the official image)
#   SESSIOND_GO_IMAGE        (default golang:1.26,  the official image)
#
# For each one: use it if it is already local; otherwise `docker pull` it; if
# that fails (the normal case on the offline machines, which reach no
# container registry) build a stand-in from
# Debian packages under its own name:
#
#   sessiond-offline/postgres:15   debootstrap + postgresql-15 + our entrypoint
#   sessiond-offline/golang:1.26   debootstrap + a copy of the host's Go + host CAs
#
# A stand-in that already exists is reused without rebuilding, so only the
# first run on a machine is slow.
#
# stdout carries ONLY `export VAR=image` lines, so callers can do
#   eval "$(scripts/ensure-images.sh)"
# and everything else (progress, errors) goes to stderr.
#
# Env knobs: SESSIOND_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#            SESSIOND_REBUILD_STANDINS=1 to rebuild existing stand-ins.
set -euo pipefail

# Keep the real stdout on fd 3 for the export lines; everything else -> stderr.
exec 3>&1 1>&2

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFFLINE="$ROOT/scripts/offline"

log() { echo "[ensure-images] $*" >&2; }
die() { echo "[ensure-images] ERROR: $*" >&2; exit 1; }

PG_DEFAULT="postgres:15"
GO_DEFAULT="golang:1.26"
PG_STANDIN="sessiond-offline/postgres:15"
GO_STANDIN="sessiond-offline/golang:1.26"
# The imported debootstrap rootfs under the postgres stand-in. Kept as its own
# tag so a change to the entrypoint/Dockerfile rebuilds in seconds, without
# another debootstrap.
PG_ROOTFS="sessiond-offline/postgres-rootfs:15"
GO_VERSION_PREFIX="go1.26" # the host Go copied into the golang stand-in must match its tag

SUITE="bookworm"
MIRROR="${SESSIOND_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REBUILD="${SESSIOND_REBUILD_STANDINS:-0}"

# The 28.x docker client defaults to BuildKit, which needs the buildx plugin
# that is missing here; the classic builder works with every engine.
export DOCKER_BUILDKIT=0

"$ROOT/scripts/ensure-docker.sh"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The postgres stand-in is labelled with a hash of its build inputs; a label
# that no longer matches means someone edited scripts/offline/postgres/.
PG_INPUTS_HASH="$(cat "$OFFLINE/postgres/Dockerfile" "$OFFLINE/postgres/docker-entrypoint.sh" | sha256sum | cut -c1-16)"
pg_standin_fresh() {
  [ "$REBUILD" != 1 ] && have_image "$PG_STANDIN" || return 1
  if [ "$(docker image inspect -f '{{ index .Config.Labels "sessiond.offline.inputs" }}' "$PG_STANDIN")" != "$PG_INPUTS_HASH" ]; then
    log "$PG_STANDIN: outdated (scripts/offline/postgres changed)"
    return 1
  fi
}
go_standin_fresh() { [ "$REBUILD" != 1 ] && have_image "$GO_STANDIN"; }

# resolve WANT STANDIN FRESH_FN -> prints the image to use, or "" if the
# stand-in must be built. Order: the wanted image if local; the stand-in if
# already built (no network round-trip on every run); a pull; else build.
resolve() {
  local want="$1" standin="$2" fresh="$3"
  if [ "$want" != "$standin" ] && have_image "$want"; then
    log "$want: present locally"; echo "$want"; return
  fi
  if "$fresh"; then
    log "$standin: present locally (offline stand-in), reusing"; echo "$standin"; return
  fi
  if [ "$want" != "$standin" ]; then
    log "$want: not local, trying docker pull (60s max)"
    if timeout 60 docker pull -q "$want" >/dev/null 2>&1; then
      log "$want: pulled"; echo "$want"; return
    fi
    log "$want: pull failed (no registry?), will build stand-in $standin"
  fi
  echo ""
}

PG_IMAGE="$(resolve "${SESSIOND_POSTGRES_IMAGE:-$PG_DEFAULT}" "$PG_STANDIN" pg_standin_fresh)"
GO_IMAGE="$(resolve "${SESSIOND_GO_IMAGE:-$GO_DEFAULT}" "$GO_STANDIN" go_standin_fresh)"

# ---------------------------------------------------------------------------
# Stand-in builds (only reached when something is missing).
# ---------------------------------------------------------------------------
if [ -z "$PG_IMAGE" ] || [ -z "$GO_IMAGE" ]; then
  NEED_PG_ROOTFS=0 NEED_GO=0
  if [ -z "$PG_IMAGE" ] && { [ "$REBUILD" = 1 ] || ! have_image "$PG_ROOTFS"; }; then NEED_PG_ROOTFS=1; fi
  if [ -z "$GO_IMAGE" ]; then NEED_GO=1; fi

  # The Go stand-in is a copy of the host toolchain: check it matches the tag.
  if [ "$NEED_GO" = 1 ]; then
    # From / with GOTOOLCHAIN=local, so a go.mod in the caller's cwd cannot
    # make `go` switch to (or download) another toolchain.
    GOROOT_HOST="$(cd / && GOTOOLCHAIN=local go env GOROOT 2>/dev/null || echo /usr/local/go)"
    [ -x "$GOROOT_HOST/bin/go" ] || die "no host Go toolchain found (looked in $GOROOT_HOST) to copy into $GO_STANDIN"
    host_go_version="$(head -n 1 "$GOROOT_HOST/VERSION")"
    case "$host_go_version" in
      "$GO_VERSION_PREFIX" | "$GO_VERSION_PREFIX".*) ;;
      *) die "host Go is $host_go_version but $GO_STANDIN needs $GO_VERSION_PREFIX.x" ;;
    esac
  fi

  if [ "$NEED_PG_ROOTFS" = 1 ] || [ "$NEED_GO" = 1 ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
      log "installing debootstrap (apt-get)"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/tmp/ensure-images-apt.log 2>&1 ||
        { tail -n 20 /tmp/ensure-images-apt.log >&2; die "apt-get install debootstrap failed"; }
    fi
  fi

  WORK="$(mktemp -d /var/tmp/sessiond-offline.XXXXXX)"
  cleanup() {
    local pid mnt
    # Stop a debootstrap still running (only when we are failing early).
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # debootstrap mounts /proc and /sys inside its target; never rm -rf through
    # a mount that is still there (deepest mounts first).
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
    rm -rf --one-file-system "$WORK"
  }
  trap cleanup EXIT

  # debootstrap_start NAME PACKAGES: a minimal bookworm rootfs in $WORK/NAME,
  # built in the background (both are mostly download + unpack, so running
  # them side by side roughly halves the wait). Sets BOOTSTRAP_PID.
  debootstrap_start() {
    log "debootstrap $SUITE minbase + $2 (background; log $WORK/$1-debootstrap.log)"
    debootstrap --variant=minbase --include="$2" "$SUITE" "$WORK/$1" "$MIRROR" \
      >"$WORK/$1-debootstrap.log" 2>&1 </dev/null &
    BOOTSTRAP_PID=$!
  }
  # debootstrap_finish NAME PID: wait for it, then drop apt caches and docs.
  debootstrap_finish() {
    local dir="$WORK/$1"
    if ! wait "$2"; then
      tail -n 20 "$WORK/$1-debootstrap.log" >&2
      die "debootstrap for the $1 stand-in failed"
    fi
    rm -rf "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    mkdir -p "$dir"/var/cache/apt/archives/partial "$dir"/var/lib/apt/lists/partial
  }

  if [ "$NEED_PG_ROOTFS" = 1 ]; then debootstrap_start postgres postgresql-15; PG_PID=$BOOTSTRAP_PID; fi
  if [ "$NEED_GO" = 1 ]; then debootstrap_start golang ca-certificates; GO_PID=$BOOTSTRAP_PID; fi

  # The smaller golang rootfs is usually done first: finish it while the
  # postgres debootstrap is still running.
  if [ "$NEED_GO" = 1 ]; then
    debootstrap_finish golang "$GO_PID"
    dir="$WORK/golang"
    log "copying host Go ($host_go_version from $GOROOT_HOST) into the golang rootfs"
    mkdir -p "$dir/usr/local"
    cp -a "$GOROOT_HOST" "$dir/usr/local/go"
    # Same GOPATH layout as the official image.
    mkdir -p "$dir/go/src" "$dir/go/bin"
    chmod -R 1777 "$dir/go"
    # Outbound TLS here is re-signed by a local CA that only the host trusts
    # (installed in /usr/local/share/ca-certificates); without it `go mod
    # download` inside `docker build` fails with "x509: certificate signed by
    # unknown authority". Trust exactly what the host added locally.
    if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
      log "adding the host's local CA certificates and running update-ca-certificates"
      cp -a /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
    else
      log "no local CAs in /usr/local/share/ca-certificates; using Debian's CA bundle only"
    fi
    chroot "$dir" update-ca-certificates >"$WORK/golang-ca.log" 2>&1 ||
      { cat "$WORK/golang-ca.log" >&2; die "update-ca-certificates failed in the golang rootfs"; }
    log "docker import -> $GO_STANDIN"
    # GOTOOLCHAIN=local: never try to download another toolchain.
    # GOFLAGS=-buildvcs=false: there is no git in the image.
    tar --numeric-owner -C "$dir" -c . |
      docker import \
        --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV GOPATH=/go' \
        --change 'ENV GOTOOLCHAIN=local' \
        --change 'ENV GOFLAGS=-buildvcs=false' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'WORKDIR /go' \
        --change 'CMD ["bash"]' \
        - "$GO_STANDIN" >/dev/null
    GO_IMAGE="$GO_STANDIN"
  fi
  if [ "$NEED_PG_ROOTFS" = 1 ]; then
    debootstrap_finish postgres "$PG_PID"
    # Debian's package creates a "main" cluster; the entrypoint makes its own in $PGDATA.
    rm -rf "$WORK/postgres/etc/postgresql/15/main" "$WORK/postgres/var/lib/postgresql/15/main"
    log "docker import -> $PG_ROOTFS"
    tar --numeric-owner -C "$WORK/postgres" -c . |
      docker import \
        --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        - "$PG_ROOTFS" >/dev/null
  fi

  if [ -z "$PG_IMAGE" ]; then
    log "docker build (classic builder) -> $PG_STANDIN"
    old_id="$(docker image inspect -f '{{.Id}}' "$PG_STANDIN" 2>/dev/null || true)"
    docker build -q --build-arg BASE="$PG_ROOTFS" --label "sessiond.offline.inputs=$PG_INPUTS_HASH" \
      -t "$PG_STANDIN" "$OFFLINE/postgres" >"$WORK/postgres-build.log" 2>&1 ||
      { tail -n 30 "$WORK/postgres-build.log" >&2; die "docker build of $PG_STANDIN failed"; }
    # Drop the outdated stand-in this replaced (kept if a container still uses it).
    if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$PG_STANDIN")" ]; then
      docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
    PG_IMAGE="$PG_STANDIN"
  fi

  log "stand-ins ready after ${SECONDS}s"
fi

printf 'export SESSIOND_POSTGRES_IMAGE=%q\n' "$PG_IMAGE" >&3
printf 'export SESSIOND_GO_IMAGE=%q\n' "$GO_IMAGE" >&3
