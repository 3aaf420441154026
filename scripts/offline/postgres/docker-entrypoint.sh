#!/usr/bin/env bash
# docker-entrypoint.sh for the offline Postgres stand-in (sessiond-offline/postgres:15).
#
# Keeps the documented contract of the official postgres image's entrypoint,
# so compose files, testcontainers' postgres module and `docker run` behave the
# same with either image:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default $POSTGRES_USER),
#   POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD
#   (default scram-sha-256), the *_FILE variants of the first three,
#   PGDATA (default /var/lib/postgresql/data) and /docker-entrypoint-initdb.d
#   (*.sh, *.sql, *.sql.gz; this rootfs has no xz/zstd, so no *.sql.xz/.zst).
# Not supported: running as an arbitrary --user uid (the official image uses
# nss_wrapper for that; initdb here needs a uid that exists in /etc/passwd).
# Extra arguments are passed to postgres (`postgres -c fsync=off`, or just
# `-c fsync=off`). It lives at /usr/local/bin/docker-entrypoint.sh because
# testcontainers' WithSSLCert wraps exactly that path.
set -Eeo pipefail

log() { echo "[entrypoint] $*"; }
die() { echo "[entrypoint] ERROR: $*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR may come from VAR or from the file named by VAR_FILE.
file_env() {
  local var="$1" fileVar="${1}_FILE" def="${2:-}" val
  if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
    die "both $var and $fileVar are set (but are exclusive)"
  fi
  val="$def"
  if [ "${!var:-}" ]; then
    val="${!var}"
  elif [ "${!fileVar:-}" ]; then
    val="$(<"${!fileVar}")"
  fi
  export "$var"="$val"
  unset "$fileVar"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
  DATABASE_ALREADY_EXISTS=""
  if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

# Run as root: create the directories and hand them to the postgres user.
create_db_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql
  chmod 03775 /var/run/postgresql || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
  fi
  if [ "$(id -u)" = '0' ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
    if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
      find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres:postgres '{}' +
    fi
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
    die 'Database is uninitialized and superuser password is not specified.
       Specify a non-empty POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust
       to allow all connections without a password (not recommended).'
  fi
  if [ "${#POSTGRES_PASSWORD}" -ge 100 ]; then
    log 'WARNING: POSTGRES_PASSWORD is 100+ characters; md5/scram clients may truncate it.'
  fi
}

init_database_dir() {
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
  fi
  # The password goes through a process substitution, never argv or disk.
  # POSTGRES_INITDB_ARGS is word-split on purpose (like the official image).
  # Only the C.UTF-8 locale exists in this image; LANG=C.UTF-8 selects it.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}

# Local (socket) connections stay "trust" as initdb wrote them; every remote
# connection must authenticate with $POSTGRES_HOST_AUTH_METHOD.
setup_hba_conf() {
  if [ "$POSTGRES_HOST_AUTH_METHOD" = 'trust' ]; then
    log 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: remote connections need no password.'
  fi
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# psql over the unix socket as the superuser, stopping at the first error.
# Named like the official image's function: sourced init scripts may call it.
docker_process_sql() {
  local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then query_runner+=(--dbname "$POSTGRES_DB"); fi
  PGHOST='' PGHOSTADDR='' "${query_runner[@]}" "$@"
}

# A temporary server that listens on the socket only, so nothing outside the
# container can connect (and no healthcheck on 127.0.0.1 passes) before init
# is complete. It logs "ready to accept connections" once; the final server
# logs it a second time, which is what testcontainers waits for.
temp_server_start() {
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  NOTIFY_SOCKET='' PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

setup_db() {
  local exists
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    # psql interpolates :'db' / :"db" only in what it reads, not in -c.
    # POSTGRES_DB='' (connect to "postgres") is meant for the function only,
    # while --set db= gets the real name: shellcheck's SC2097/SC2098 don't apply.
    # shellcheck disable=SC2097,SC2098
    exists="$(echo "SELECT 1 FROM pg_database WHERE datname = :'db' ;" |
      POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only)"
    if [ -z "$exists" ]; then
      # shellcheck disable=SC2097,SC2098
      echo 'CREATE DATABASE :"db" ;' |
        POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB"
      log "created database $POSTGRES_DB"
    fi
  fi
}

process_init_files() {
  local f
  echo
  for f; do
    case "$f" in
      *.sh)
        # Executable scripts run; others are sourced (so they can use our functions).
        # shellcheck disable=SC1090
        if [ -x "$f" ]; then
          log "running $f"; "$f"
        else
          log "sourcing $f"; . "$f"
        fi ;;
      *.sql)    log "running $f"; docker_process_sql -f "$f"; echo ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | docker_process_sql; echo ;;
      *)        log "ignoring $f" ;;
    esac
  done
}

# `postgres --help`-style invocations must not initialise anything.
want_help() {
  local arg
  for arg; do
    case "$arg" in
      -'?'|--help|--describe-config|-V|--version) return 0 ;;
    esac
  done
  return 1
}

main() {
  # `docker run IMAGE -c fsync=off` means `postgres -c fsync=off`.
  if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

  if [ "$1" = 'postgres' ] && ! want_help "$@"; then
    setup_env
    create_db_directories
    if [ "$(id -u)" = '0' ]; then
      # No gosu here: setpriv (util-linux) drops to postgres and we start over.
      exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      verify_minimum_env
      ls /docker-entrypoint-initdb.d/ >/dev/null # fail early on unreadable mounts
      init_database_dir
      setup_hba_conf
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_server_start "${@:2}"
      setup_db
      shopt -s nullglob
      process_init_files /docker-entrypoint-initdb.d/*
      shopt -u nullglob
      temp_server_stop
      unset PGPASSWORD
      echo
      log 'PostgreSQL init process complete; ready for start up.'
      echo
    else
      echo
      log 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
      echo
    fi
  fi

  exec "$@"
}

main "$@"
