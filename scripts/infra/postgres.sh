#!/usr/bin/env bash
# PostgreSQL 15 from Debian, as an instance of our own (not Debian's cluster) on 127.0.0.1:5433.
# Login: chat4all / chat4all. Databases: chat4all (metadata), ferretdb (FerretDB's backend).
source "$(dirname "$0")/lib.sh"
one_at_a_time postgres "$@"
PORT=${CHAT4ALL_PG_PORT:-5433}
# As root, PostgreSQL runs as the postgres user, which cannot enter /root: keep its files in /var/tmp.
HOME_DIR=$RUN_DIR
if [ "$(id -u)" -eq 0 ]; then HOME_DIR=/var/tmp/chat4all-infra; fi
DATA=$HOME_DIR/postgres
PG_LOG=$HOME_DIR/postgres.log

# The server, not only the client (a machine may have psql alone): look for initdb.
PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ':')" apt_install initdb postgresql
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_owner() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if port_open "$PORT"; then say "postgres already on 127.0.0.1:$PORT"; exit 0; fi

if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    echo chat4all >"$HOME_DIR/pgpass"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$HOME_DIR"; fi
    as_owner "$BIN/initdb" -D "$DATA" -U chat4all --pwfile="$HOME_DIR/pgpass" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$LOG_DIR/postgres-init.log"
fi
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PG_LOG" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c max_connections=500 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" >/dev/null
for db in chat4all ferretdb; do
    as_owner "$BIN/psql" -h /tmp -p "$PORT" -U chat4all -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
        as_owner "$BIN/psql" -h /tmp -p "$PORT" -U chat4all -d postgres -qc "CREATE DATABASE $db"
done
say "postgres on 127.0.0.1:$PORT"
