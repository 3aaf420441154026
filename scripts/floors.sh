#!/usr/bin/env bash
# floors.sh — what the database alone costs for the writes the benchmark
# targets are about, with sessiond's guarantees added back one at a time
# (BENCHMARKS.md, "Performance, fourth round"). `make floors`.
#
# Starts its own Postgres container (the image and settings `make bench`
# uses, host network, fsync on), migrates it with `sessiond migrate up`, and
# drives it with pgbench (a second container, so its CPU is not counted) or
# psql. No sessiond, no HTTP: every number is Postgres alone.
#
#   sign-in      Postgres CPU per transaction at sessiond's pool size (pgx's
#                default, 4 per CPU) and 64 clients; transactions/s
#   sign-out     latency of one sign-out, one client at a time
#   everywhere   one user's 1,000 and 10,000 sessions ended in one statement
#
# Autovacuum is off and each later section starts with VACUUM ANALYZE and
# a checkpoint, so no background vacuum of an earlier section's rows runs
# into a measurement.
#
# Env: FLOORS_ROUNDS (2) repeats of each measurement, FLOORS_SECONDS (8) per
# pgbench run, FLOORS_ONLY (sign-in,sign-out,everywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/ensure-images.sh)"
IMAGE=${SESSIOND_POSTGRES_IMAGE:-postgres:15}
ROUNDS=${FLOORS_ROUNDS:-2}
SECONDS_EACH=${FLOORS_SECONDS:-8}
ONLY=${FLOORS_ONLY:-sign-in,sign-out,everywhere}
POOL=$(( $(nproc) * 4 > 4 ? $(nproc) * 4 : 4 ))
PORT=
for _ in $(seq 100); do
  p=$(( 40000 + RANDOM % 20000 ))
  if ! (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "floors: no free port" >&2; exit 1; }
WORK=$(mktemp -d)
CID=
cleanup() {
  [ -n "$CID" ] && docker rm -f "$CID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== postgres ($IMAGE) on 127.0.0.1:$PORT, host network"
CID=$(docker run -d --network host --shm-size 1g -e POSTGRES_PASSWORD=postgres -e PGPORT="$PORT" "$IMAGE" \
  postgres -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_connections=200 \
  -c max_wal_size=8GB -c checkpoint_timeout=30min -c autovacuum=off)
# Ready when the server (not the entrypoint's init-time one) answers on
# 127.0.0.1:$PORT.
ready=
for _ in $(seq 1 240); do
  if [ "$(docker logs "$CID" 2>&1 | grep -c 'database system is ready to accept connections')" -ge 2 ] &&
    docker exec "$CID" pg_isready -q -h 127.0.0.1 -p "$PORT" -U postgres; then
    ready=1
    break
  fi
  sleep 0.5
done
[ -n "$ready" ] || { docker logs "$CID" 2>&1 | tail -20 >&2; echo "floors: postgres did not become ready" >&2; exit 1; }
URL="postgres://postgres:postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
SESSIOND_DATABASE_URL=$URL go run ./cmd/sessiond migrate up >/dev/null

psql() { docker exec -i "$CID" psql -X -q -v ON_ERROR_STOP=1 -U postgres -p "$PORT" -d postgres "$@"; }

# The container's CPU time in µs (cgroup v1 or v2).
cpu_usec() {
  local f
  for f in /sys/fs/cgroup/cpuacct/docker/$CID/cpuacct.usage "/sys/fs/cgroup/cpu,cpuacct/docker/$CID/cpuacct.usage"; do
    [ -r "$f" ] && { echo $(( $(cat "$f") / 1000 )); return; }
  done
  for f in /sys/fs/cgroup/docker/$CID/cpu.stat /sys/fs/cgroup/system.slice/docker-$CID.scope/cpu.stat; do
    [ -r "$f" ] && { awk '/^usage_usec/ {print $2}' "$f"; return; }
  done
  echo 0
}

# bench NAME SCRIPT CLIENTS: one pgbench run; prints transactions/s,
# latency and Postgres CPU µs per transaction.
bench() {
  local before after out tx
  before=$(cpu_usec)
  out=$(docker run --rm --network host -v "$WORK:/w" "$IMAGE" pgbench -n -M prepared -c "$3" -j 2 \
    -T "$SECONDS_EACH" -f "/w/$2" -h 127.0.0.1 -p "$PORT" -U postgres postgres 2>&1) || { echo "$out" >&2; return 1; }
  after=$(cpu_usec)
  tx=$(awk '/number of transactions actually processed/ {split($NF, x, "/"); print x[1]}' <<<"$out")
  printf '  %-62s %2d clients  %6.0f tx/s  latency %6.3f ms  Postgres CPU %5d µs/tx\n' "$1" "$3" \
    "$(awk '/^tps/ {print $3}' <<<"$out")" "$(awk '/latency average/ {print $4}' <<<"$out")" $(( (after - before) / (tx > 0 ? tx : 1) ))
}

events_trigger() { psql -c "ALTER TABLE session_events $1 TRIGGER session_events_sequence"; }

# The events' commit trigger's function, three ways (the trigger itself,
# fired once per transaction at commit, is the same):
#   sequencer  what sessiond runs: the commit records itself as pending;
#              session_events_number() numbers batches afterwards
#              (migrations/000007_events_sequencer.up.sql)
#   notify     the same plus a NOTIFY at commit: Postgres holds its own
#              notification lock through every such commit
#   lock       000004's: numbers at commit under an advisory lock held
#              through the flush (000007's down migration restores it)
trigger_function() { # FILE: its CREATE OR REPLACE FUNCTION session_events_sequence ... $$;
  sed -n '/^CREATE OR REPLACE FUNCTION session_events_sequence/,/^\$\$;/p' "$1"
}
use_trigger() {
  case $1 in
    sequencer) trigger_function migrations/000007_events_sequencer.up.sql ;;
    notify) trigger_function migrations/000007_events_sequencer.up.sql |
      sed "s/^    RETURN NULL;/    PERFORM pg_notify('sessiond_session_events', '');\n    RETURN NULL;/" ;;
    lock) trigger_function migrations/000007_events_sequencer.down.sql ;;
  esac | psql
}
printf '%s\n' 'SELECT session_events_number();' '\sleep 1 ms' >"$WORK/number.sql"
# numbering NAME SCRIPT CLIENTS: bench while one more connection numbers
# every millisecond, about what a replica's Hub does under load (it
# numbers after each commit, the commits during one numbering folded into
# the next; Postgres CPU counts it, the transactions/s do not), then
# numbers what is left.
numbering() {
  docker run --rm --network host -v "$WORK:/w" "$IMAGE" pgbench -n -M prepared -c 1 -T "$SECONDS_EACH" \
    -f /w/number.sql -h 127.0.0.1 -p "$PORT" -U postgres postgres >/dev/null 2>&1 &
  local numberer=$!
  bench "$@"
  wait "$numberer"
  psql -c "SELECT session_events_number()" >/dev/null
}

COLS="id, user_id, client_id, status, created_at, last_active_at, expires_at, ended_at, user_agent, ip_address, metadata"
SNAP="jsonb_build_object('id', id, 'user_id', user_id, 'client_id', client_id, 'status', status, 'created_at', created_at, 'last_active_at', last_active_at, 'expires_at', expires_at, 'ended_at', ended_at, 'user_agent', user_agent, 'ip_address', ip_address, 'metadata', metadata)"
UA="'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'"
NEW_SESSION="INSERT INTO sessions ($COLS, token_hash) VALUES ('s' || :n, 'u' || :n, 'c' || :n, 'active', now(), now(), now() + interval '1 day', NULL, $UA, '203.0.113.7', '{}', sha256(('t' || :n)::bytea))"
LOCK_USER="INSERT INTO session_users (user_id) VALUES ('u' || :n) ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id;"

# insert_sessions TABLE PREFIX USER FIRST LAST: the INSERT of active
# sessions g = FIRST..LAST into TABLE: ID PREFIX s g, token sha256(PREFIX t g),
# client PREFIX c g, user the SQL expression USER (of g).
insert_sessions() {
  echo "INSERT INTO $1 (id, token_hash, user_id, client_id, created_at, last_active_at, expires_at, user_agent, ip_address)
    SELECT '$2s' || lpad(g::text, 8, '0'), sha256(('$2t' || g)::bytea), $3, '$2c' || g, now(), now(), now() + interval '1 day', $UA, '203.0.113.7'
    FROM generate_series($4, $5) g;"
}

# seed PREFIX N: N active sessions of N users on N clients (insert_sessions' names).
seed() {
  {
    echo "INSERT INTO clients (id, created_at) SELECT '$1c' || g, now() FROM generate_series(1, $2) g;"
    insert_sessions sessions "$1" "'$1u' || g" 1 "$2"
    echo "VACUUM ANALYZE sessions; CHECKPOINT;"
  } | psql
}

if [[ ,$ONLY, == *,sign-in,* ]]; then
  echo "== sign-in (a new user on a new client, as the bench's POST /sessions): each line adds one thing back"
  psql -c "CREATE TABLE floor_rows (id text PRIMARY KEY)"
  printf '%s\n' '\set n random(1, 9000000000000000)' "INSERT INTO floor_rows (id) VALUES ('s' || :n);" >"$WORK/1.sql"
  printf '%s\n' '\set n random(1, 9000000000000000)' '\startpipeline' 'BEGIN;' \
    "WITH client AS (INSERT INTO clients (id, created_at) VALUES ('c' || :n, now())) $NEW_SESSION;" \
    'COMMIT;' '\endpipeline' >"$WORK/2.sql"
  printf '%s\n' '\set n random(1, 9000000000000000)' '\startpipeline' 'BEGIN;' "$LOCK_USER" '\endpipeline' \
    '\startpipeline' "WITH client AS (INSERT INTO clients (id, created_at) VALUES ('c' || :n, now())) $NEW_SESSION;" \
    'COMMIT;' '\endpipeline' >"$WORK/3.sql"
  printf '%s\n' '\set n random(1, 9000000000000000)' '\startpipeline' 'BEGIN;' "$LOCK_USER" '\endpipeline' \
    '\startpipeline' "WITH client AS (INSERT INTO clients (id, created_at) VALUES ('c' || :n, now())), created AS ($NEW_SESSION RETURNING $COLS) INSERT INTO session_events (session_id, old_status, new_status, at, actor, client_id, session) SELECT id, NULL, 'active', created_at, 'backend', client_id, $SNAP FROM created;" \
    'COMMIT;' '\endpipeline' >"$WORK/4.sql"
  for clients in "$POOL" 64; do
    for _ in $(seq "$ROUNDS"); do
      bench "one row into a table with only a primary key (autocommit)" 1.sql "$clients"
      bench "+ the session and its client row, every index (1 round trip)" 2.sql "$clients"
      bench "+ the user's lock first (2 round trips, as sessiond)" 3.sql "$clients"
      events_trigger DISABLE
      bench "+ the audit row with the session's snapshot" 4.sql "$clients"
      events_trigger ENABLE
      use_trigger lock
      bench "+ 000004's trigger: numbered at commit under a lock" 4.sql "$clients"
      use_trigger notify
      numbering "+ pending row and NOTIFY at commit, numbered after" 4.sql "$clients"
      use_trigger sequencer
      numbering "+ pending row at commit, numbered after = sessiond's SQL" 4.sql "$clients"
    done
  done
fi

vacuum_all() { psql <<<"VACUUM ANALYZE; CHECKPOINT;"; }

if [[ ,$ONLY, == *,sign-out,* ]]; then
  vacuum_all
  echo "== single sign-out by token, one client (latency is Postgres alone: no HTTP, no sessiond)"
  seed a 300000
  psql <<'SQL'
CREATE TABLE floor_counts (id text PRIMARY KEY, n int NOT NULL DEFAULT 0) WITH (fillfactor = 50);
INSERT INTO floor_counts SELECT 'f' || g FROM generate_series(1, 300000) g;
VACUUM ANALYZE floor_counts;
SQL
  printf '%s\n' '\set g random(1, 300000)' "UPDATE floor_counts SET n = n + 1 WHERE id = 'f' || :g;" >"$WORK/o1.sql"
  END="UPDATE sessions SET status = 'ended', ended_at = now(), last_active_at = GREATEST(last_active_at, now()) WHERE status = 'active'"
  AUDIT="audit AS (INSERT INTO session_events (session_id, old_status, new_status, at, actor, client_id, session) SELECT id, 'active', status, ended_at, 'user', client_id, $SNAP FROM ended) SELECT $COLS FROM ended"
  printf '%s\n' '\set g random(1, 300000)' \
    "WITH ended AS ($END AND token_hash = sha256(('at' || :g)::bytea) RETURNING $COLS), $AUDIT;" >"$WORK/o2.sql"
  printf '%s\n' '\set g random(1, 300000)' '\startpipeline' 'BEGIN;' \
    "SELECT $COLS FROM sessions WHERE token_hash = sha256(('at' || :g)::bytea) AND status = 'active' FOR NO KEY UPDATE;" \
    '\endpipeline' '\startpipeline' "WITH ended AS ($END AND id = 'as' || lpad(:g::text, 8, '0') RETURNING $COLS), $AUDIT;" 'COMMIT;' \
    '\endpipeline' >"$WORK/o3.sql"
  echo "  (tokens are drawn at random from 300,000: a few per cent of draws find a session already ended, which is cheaper)"
  for _ in $(seq "$ROUNDS"); do
    bench "one-row UPDATE by primary key (autocommit)" o1.sql 1
    events_trigger DISABLE
    bench "end + audit in one statement (autocommit), no events trigger" o2.sql 1
    events_trigger ENABLE
    bench "end + audit in one statement (autocommit), events trigger" o2.sql 1
    events_trigger DISABLE
    bench "lock, then end + audit (2 round trips), no events trigger" o3.sql 1
    events_trigger ENABLE
    bench "lock, then end + audit (2 round trips) = sessiond's SQL" o3.sql 1
    use_trigger lock
    bench "lock, then end + audit (2 round trips), 000004's trigger" o3.sql 1
    use_trigger sequencer
  done
fi

if [[ ,$ONLY, == *,everywhere,* ]]; then
  vacuum_all
  echo "== sign out everywhere: one user's N sessions ended and audited in one statement, then COMMIT"
  echo "   (copies of the tables with indexes and triggers added back level by level; ms: statement + COMMIT)"
  # end_everywhere SESSIONS EVENTS USER PAYLOAD: the timed transaction that
  # ends USER's active sessions in SESSIONS and audits them in EVENTS with
  # PAYLOAD (SQL) as each row's session, as sessiond's ending statement does.
  end_everywhere() {
    echo '\timing on'
    echo '\o /dev/null'
    echo "BEGIN;"
    echo "WITH ended AS (UPDATE $1 SET status = 'revoked', ended_at = now() WHERE user_id = '$3' AND status = 'active' RETURNING $COLS),
      audit AS (INSERT INTO $2 (session_id, old_status, new_status, at, actor, client_id, session) SELECT id, 'active', status, ended_at, 'user', client_id, $4 FROM ended)
      SELECT $COLS FROM ended ORDER BY id DESC;"
    echo "COMMIT;"
    echo '\o'
    echo '\timing off'
  }
  # level L N: build copies at level L, end user 1's N sessions, twice (users 1 and 2).
  level() {
    local L=$1 N=$2 ff=50 pay="NULL::jsonb"
    [ "$L" -ge 5 ] && ff=100
    [ "$L" -ge 3 ] && pay=$SNAP
    {
      echo "DROP TABLE IF EXISTS floor_sessions, floor_events;"
      echo "CREATE TABLE floor_sessions (LIKE sessions INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = $ff);"
      echo "ALTER TABLE floor_sessions ADD PRIMARY KEY (id); CREATE UNIQUE INDEX ON floor_sessions (token_hash); CREATE INDEX ON floor_sessions (user_id, id);"
      echo "CREATE TABLE floor_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, session_id text NOT NULL, old_status text, new_status text NOT NULL, at timestamptz NOT NULL, actor text NOT NULL, client_id text, session jsonb, txn bigint NOT NULL DEFAULT 1);"
      [ "$L" -ge 2 ] && echo "CREATE INDEX ON floor_events (session_id, id); CREATE INDEX ON floor_events (client_id, id); CREATE INDEX ON floor_events (txn, id);"
      [ "$L" -ge 4 ] && echo "CREATE INDEX ON floor_sessions (client_id, id);"
      [ "$L" -ge 5 ] && echo "CREATE UNIQUE INDEX ON floor_sessions (client_id, user_id) WHERE status = 'active';
        CREATE INDEX ON floor_sessions (expires_at) WHERE status = 'active'; CREATE INDEX ON floor_sessions (last_active_at) WHERE status = 'active';
        CREATE INDEX ON floor_sessions (ended_at) WHERE status <> 'active';"
      [ "$L" -ge 6 ] && echo "CREATE TRIGGER keep_terminal BEFORE UPDATE OF status, ended_at ON floor_sessions FOR EACH ROW EXECUTE FUNCTION sessions_keep_terminal();"
      insert_sessions floor_sessions f "'fu' || (g / $N)" 0 $((3 * N - 1))
      echo "VACUUM ANALYZE floor_sessions; VACUUM ANALYZE floor_events; CHECKPOINT;"
      end_everywhere floor_sessions floor_events fu1 "$pay"
      end_everywhere floor_sessions floor_events fu2 "$pay"
    } | psql 2>&1 | awk '/^Time/ {t[++n] = $2} END {printf "%.0f + %.0f, %.0f + %.0f", t[2], t[3], t[5], t[6]}'
  }
  # The real tables, with the events trigger (sessiond's own statement shape).
  real() {
    local N=$1 tag=$2
    {
      echo "INSERT INTO clients (id, created_at) SELECT '${tag}c' || g, now() FROM generate_series(1, $N) g;"
      insert_sessions sessions "$tag" "'${tag}u'" 1 "$N"
      echo "VACUUM ANALYZE sessions; VACUUM ANALYZE session_events; CHECKPOINT;"
      end_everywhere sessions session_events "${tag}u" "$SNAP"
    } | psql 2>&1 | awk '/^Time/ {t[++n] = $2} END {printf "%.0f + %.0f", t[2], t[3]}'
  }
  names=("" "sessions: primary key, token, user index (endings HOT); audit: primary key only, no payload"
    "+ the audit's indexes (per session, per client, per transaction)"
    "+ the audit row's session snapshot"
    "+ the sessions' per-client index"
    "+ the indexes on status and ended_at (invariant 2, the sweeper, retention): endings not HOT"
    "+ the terminal-status trigger (invariant 4)")
  for N in 1000 10000; do
    echo "  $N sessions:"
    for L in 1 2 3 4 5 6; do
      line=""
      for _ in $(seq "$ROUNDS"); do line+="$(level "$L" "$N"); "; done
      printf '    %-96s %s\n' "${names[$L]}" "$line"
    done
    line=""
    for r in $(seq "$ROUNDS"); do line+="$(real "$N" "r${N}x$r"); "; done
    printf '    %-96s %s\n' "+ the events' commit trigger = sessiond's tables and statement" "$line"
    use_trigger lock
    line=""
    for r in $(seq "$ROUNDS"); do line+="$(real "$N" "l${N}x$r"); "; done
    printf '    %-96s %s\n' "  the same with 000004's trigger (numbered at commit under a lock)" "$line"
    use_trigger sequencer
  done
fi
