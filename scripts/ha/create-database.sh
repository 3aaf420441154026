#!/bin/bash
# Patroni's post_bootstrap: runs once, on the node that creates the
# cluster, with a connection URL as its argument. sessiond's database.
set -euo pipefail
psql "$1" -v ON_ERROR_STOP=1 -qc 'CREATE DATABASE sessiond'
