#!/usr/bin/env bash
# MinIO (S3) on 127.0.0.1:9000 (console :9001), built with `go install` from the Go module proxy.
# MinIO tags its releases RELEASE.<date>, which are not Go module versions, so the proxy serves
# the source as a pseudo-version; this one is the proxy's `latest` on 2026-02-12. About 2 minutes
# to build on a fresh machine (2 cores); cached afterwards. Keys: chat4all / chat4all-secret.
source "$(dirname "$0")/lib.sh"
one_at_a_time minio "$@"
PORT=${CHAT4ALL_MINIO_PORT:-9000}
CONSOLE_PORT=${CHAT4ALL_MINIO_CONSOLE_PORT:-9001}
VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
BINARY=$INFRA_HOME/go/bin/minio

build_minio() {
    command -v go >/dev/null 2>&1 || { say "building MinIO needs Go"; return 1; }
    say "building MinIO $VERSION with the Go module proxy (a few minutes the first time)"
    local started=$SECONDS
    mkdir -p "$(dirname "$BINARY")"
    GOBIN=$(dirname "$BINARY") go install "github.com/minio/minio@$VERSION" \
        >"$LOG_DIR/minio-build.log" 2>&1 ||
        { say "go install of MinIO failed; see $LOG_DIR/minio-build.log"; return 1; }
    say "MinIO built in $((SECONDS - started))s"
}

if port_open "$PORT"; then say "minio already on 127.0.0.1:$PORT"; exit 0; fi
[ -x "$BINARY" ] || build_minio

mkdir -p "$RUN_DIR/minio"
MINIO_ROOT_USER=chat4all MINIO_ROOT_PASSWORD=chat4all-secret MINIO_BROWSER=off \
    nohup "$BINARY" server "$RUN_DIR/minio" --address "127.0.0.1:$PORT" \
    --console-address "127.0.0.1:$CONSOLE_PORT" --quiet \
    >"$LOG_DIR/minio.log" 2>&1 &
echo $! >"$RUN_DIR/minio.pid"
wait_port "$PORT" minio 60
say "minio on 127.0.0.1:$PORT"
