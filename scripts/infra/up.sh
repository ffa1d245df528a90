#!/usr/bin/env bash
# Installs (once) and starts every real server the tests use; already running ones are reused.
# Usage: scripts/infra/up.sh [server...]   (default: all of them)
source "$(dirname "$0")/lib.sh"
HERE=$(dirname "$0")
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then servers=(postgres redis etcd kafka ferretdb minio promtool); fi
pids=()
for server in "${servers[@]}"; do
    "$HERE/$server.sh" &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
