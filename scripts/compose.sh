#!/usr/bin/env bash
# compose.sh up|down|smoke — the README's run command and the CI smoke test.
#
#   up     make sure Docker and the images exist (official where a registry
#          answers, offline stand-ins otherwise), start the compose project,
#          wait until /readyz answers 200, print the URL and the demo key
#   down   stop it (add -v to remove the database volume too)
#   smoke  up, one sign-in / who-am-I / sign-out / 401 through port 8080,
#          then down with volumes removed
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

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  smoke) smoke ;;
  *) echo "usage: $0 up|down|smoke" >&2; exit 2 ;;
esac
