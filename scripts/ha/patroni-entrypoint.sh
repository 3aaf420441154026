#!/bin/bash
# Writes this node's patroni.yml from the environment and runs Patroni as
# the postgres user (Patroni and Postgres refuse root).
#   NODE_NAME       this node's name and host name (pg1, pg2)
#   ETCD_HOSTS      etcd client endpoints, host:port[,host:port...]
#   SYNCHRONOUS     true (the default) or false
set -euo pipefail
: "${NODE_NAME:?}" "${ETCD_HOSTS:?}"
conf=/var/lib/patroni/patroni.yml
cat >"$conf" <<YAML
scope: sessiond
name: ${NODE_NAME}
restapi:
  listen: 0.0.0.0:8008
  connect_address: ${NODE_NAME}:8008
etcd3:
  hosts: ${ETCD_HOSTS}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    synchronous_mode: ${SYNCHRONOUS:-true}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        wal_log_hints: "on"
        hot_standby: "on"
        max_connections: 200
        max_wal_senders: 5
        max_replication_slots: 5
  initdb:
    - encoding: UTF8
    - auth-host: scram-sha-256
    - auth-local: trust
  post_bootstrap: /usr/local/bin/create-database.sh
  pg_hba:
    - local all all trust
    - host replication replicator all scram-sha-256
    - host all all all scram-sha-256
postgresql:
  listen: 0.0.0.0:5432
  connect_address: ${NODE_NAME}:5432
  data_dir: /var/lib/patroni/data
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: /var/lib/patroni/pgpass
  authentication:
    replication:
      username: replicator
      password: ${REPLICATION_PASSWORD:-replicator}
    superuser:
      username: postgres
      password: ${SUPERUSER_PASSWORD:-postgres}
  parameters:
    unix_socket_directories: /var/lib/patroni
YAML
chown postgres:postgres "$conf" /var/lib/patroni
exec setpriv --reuid=postgres --regid=postgres --init-groups env HOME=/var/lib/patroni patroni "$conf"
