#!/usr/bin/env bash
# FerretDB v1 (the MongoDB wire protocol on PostgreSQL) on 127.0.0.1:27017, built from the Go
# module proxy. Its backend is the `ferretdb` database of postgres.sh, which this script starts
# first. No MongoDB server is available from the registries this project may use (INFRA.md).
source "$(dirname "$0")/lib.sh"
one_at_a_time ferretdb "$@"
HERE=$(dirname "$0")
PORT=${CHAT4ALL_FERRETDB_PORT:-27017}
PG_PORT=${CHAT4ALL_PG_PORT:-5433}
# FerretDB v1 deadlocks for good once as many updates run at once as it has PostgreSQL
# connections (each holds the connection of its read while it waits for one to write), so the
# pool must exceed the connection pools (maxPoolSize) of all its clients together.
PG_POOL=${CHAT4ALL_FERRETDB_PG_POOL:-250}
VERSION=v1.24.0
BINARY=$INFRA_HOME/go/bin/ferretdb

# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.0` builds a binary that panics at
# start: build/version/version.txt, which FerretDB's release tooling generates, is not in the
# module. So: the module's source from the proxy, that one file written, then `go build`, which
# is what their release does. About 2 minutes on a fresh machine (2 cores); cached afterwards.
build_ferretdb() {
    command -v go >/dev/null 2>&1 || { say "building FerretDB needs Go"; return 1; }
    say "building FerretDB $VERSION with the Go module proxy (a few minutes the first time)"
    local started=$SECONDS source work
    source=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$source" ] || { say "go mod download github.com/FerretDB/FerretDB@$VERSION failed"; return 1; }
    work=$INFRA_HOME/go/src/ferretdb-$VERSION
    rm -rf "$work" && mkdir -p "$(dirname "$work")" "$(dirname "$BINARY")"
    cp -r "$source" "$work" && chmod -R u+w "$work"
    echo "$VERSION" >"$work/build/version/version.txt"
    (cd "$work" && go build -trimpath -o "$BINARY.new" ./cmd/ferretdb) >"$LOG_DIR/ferretdb-build.log" 2>&1 ||
        { say "go build of FerretDB failed; see $LOG_DIR/ferretdb-build.log"; return 1; }
    mv "$BINARY.new" "$BINARY" && rm -rf "$work"
    say "FerretDB $VERSION built in $((SECONDS - started))s"
}

"$HERE/postgres.sh"
if port_open "$PORT"; then say "ferretdb already on 127.0.0.1:$PORT"; exit 0; fi
"$BINARY" --version >/dev/null 2>&1 || build_ferretdb

mkdir -p "$RUN_DIR/ferretdb"
DO_NOT_TRACK=1 nohup "$BINARY" --listen-addr="127.0.0.1:$PORT" --handler=postgresql \
    --postgresql-url="postgres://chat4all:chat4all@127.0.0.1:$PG_PORT/ferretdb?pool_max_conns=$PG_POOL" \
    --state-dir="$RUN_DIR/ferretdb" --telemetry=disable --debug-addr=- --log-level=warn \
    >"$LOG_DIR/ferretdb.log" 2>&1 &
echo $! >"$RUN_DIR/ferretdb.pid"
wait_port "$PORT" ferretdb 30
say "ferretdb on 127.0.0.1:$PORT"
