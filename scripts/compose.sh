#!/usr/bin/env bash
# compose.sh up|down|smoke — the README's run command and the CI smoke test.
#
#   up     make sure Docker and the images exist (official where a registry
#          answers, offline stand-ins otherwise), start the compose project,
#          wait until /readyz answers 200, print the URL and the demo key
#   down   stop it (add -v to remove the database volume too)
#   smoke  up, one sign-in / who-am-I / sign-out / 401 through port 8080,
#          then down with volumes removed
#   up-ha  the HA stack (docker-compose.ha.yml): etcd, a Patroni-managed
#          Postgres 15 pair in synchronous mode and two sessiond replicas;
#          builds the Patroni image from Debian's packages, waits until both
#          replicas are ready, prints what is where and `patronictl list`
#   down-ha  stop it (add -v to remove its volumes too)
set -euo pipefail
cd "$(dirname "$0")/.."

URL=http://localhost:8080
DEMO_KEY=sk_demo_local_only_do_not_use_in_production
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
scripts/ensure-docker.sh
eval "$(scripts/ensure-images.sh)"
read -r -a COMPOSE <<<"$(scripts/ensure-compose.sh)"
project=(-p sessiond)

wait_ready() {
  for _ in $(seq 1 120); do
    if curl -fsS "$URL/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  "${COMPOSE[@]}" "${project[@]}" logs --tail 50 >&2
  echo "sessiond did not become ready within 120s" >&2
  return 1
}

up() {
  started=$(date +%s)
  "${COMPOSE[@]}" "${project[@]}" up -d --build
  wait_ready
  echo "sessiond is ready at $URL after $(( $(date +%s) - started ))s (compose: ${COMPOSE[*]})"
  echo "demo API key (local only): $DEMO_KEY"
}

down() { "${COMPOSE[@]}" "${project[@]}" down "$@"; }

# token_of: the session token in a sign-in answer on stdin.
token_of() { grep -o '"token":"st_[A-Za-z0-9_-]*"' | cut -d'"' -f4; }

smoke() {
  trap 'down -v' EXIT
  up
  signin=$(curl -fsS -X POST "$URL/sessions" -H "Authorization: Bearer $DEMO_KEY" \
    -H 'Content-Type: application/json' -d '{"user_id":"smoke"}')
  token=$(token_of <<<"$signin")
  [ -n "$token" ] || { echo "sign-in answered no token: $signin" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/session" -H "Authorization: Bearer $token")
  [ "$code" = 200 ] || { echo "who-am-I answered $code, want 200" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/session" -H "Authorization: Bearer $token")
  [ "$code" = 200 ] || { echo "sign-out answered $code, want 200" >&2; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/session" -H "Authorization: Bearer $token")
  [ "$code" = 401 ] || { echo "who-am-I after sign-out answered $code, want 401" >&2; exit 1; }
  echo "compose smoke: sign-in, who-am-I, sign-out, 401: 1 passed, 0 failed"
}

HA=(-p sessiond-ha -f docker-compose.ha.yml)
HA_IMAGE=sessiond-ha/patroni:15

# ha_image builds the Patroni image on Debian bookworm: the offline
# stand-in's debootstrapped rootfs when it exists (no registry needed),
# else debian:bookworm. Its packages come from the Debian mirror.
ha_image() {
  local base=debian:bookworm
  if docker image inspect sessiond-offline/postgres-rootfs:15 >/dev/null 2>&1; then
    base=sessiond-offline/postgres-rootfs:15
  fi
  echo "building $HA_IMAGE on $base (Debian's postgresql-15, patroni, etcd-server)"
  docker build -q --build-arg BASE="$base" -t "$HA_IMAGE" scripts/ha >/dev/null
}

patronictl_list() {
  "${COMPOSE[@]}" "${HA[@]}" exec -T pg1 setpriv --reuid=postgres --regid=postgres --init-groups \
    patronictl -c /var/lib/patroni/patroni.yml list
}

up_ha() {
  started=$(date +%s)
  ha_image
  "${COMPOSE[@]}" "${HA[@]}" up -d --build
  for port in 8080 8081; do
    ok=0
    for _ in $(seq 1 180); do
      if curl -fsS "http://localhost:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
      sleep 1
    done
    if [ "$ok" != 1 ]; then
      "${COMPOSE[@]}" "${HA[@]}" logs --tail 50 >&2
      echo "sessiond on :$port did not become ready within 180s" >&2
      return 1
    fi
  done
  # Patroni reports the standby as synchronous a loop or two after it streams.
  for _ in $(seq 1 60); do
    patronictl_list 2>/dev/null | grep -q 'Sync Standby' && break
    sleep 1
  done
  cat <<TXT
HA stack ready after $(( $(date +%s) - started ))s (compose: ${COMPOSE[*]} ${HA[*]})
  sessiond-a      http://localhost:8080
  sessiond-b      http://localhost:8081
  Patroni REST    pg1 http://localhost:8008, pg2 http://localhost:8009 (GET /cluster)
  Postgres        pg1:5432, pg2:5432 inside the compose network; sessiond uses
                  postgres://postgres:postgres@pg1:5432,pg2:5432/sessiond?target_session_attrs=read-write
  etcd            etcd:2379 inside the compose network
  demo API key    $DEMO_KEY (local only)
  the cluster     ${COMPOSE[*]} ${HA[*]} exec pg1 setpriv --reuid=postgres --regid=postgres --init-groups patronictl -c /var/lib/patroni/patroni.yml list
  a failover      ${COMPOSE[*]} ${HA[*]} kill <the leader, pg1 or pg2>
TXT
  patronictl_list
}

down_ha() { "${COMPOSE[@]}" "${HA[@]}" down "$@"; }

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  smoke) smoke ;;
  up-ha) up_ha ;;
  down-ha) shift; down_ha "$@" ;;
  *) echo "usage: $0 up|down|smoke|up-ha|down-ha" >&2; exit 2 ;;
esac
