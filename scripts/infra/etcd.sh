#!/usr/bin/env bash
# etcd 3.4 from Debian on 127.0.0.1:2379 (peer port 2380).
source "$(dirname "$0")/lib.sh"
PORT=${CHAT4ALL_ETCD_PORT:-2379}

apt_install etcd etcd-server etcd-client
if port_open "$PORT"; then say "etcd already on 127.0.0.1:$PORT"; exit 0; fi
ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-} nohup etcd --name chat4all-test \
    --data-dir "$RUN_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
    --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
    --initial-cluster "chat4all-test=http://127.0.0.1:$((PORT + 1))" \
    >"$LOG_DIR/etcd.log" 2>&1 &
wait_port "$PORT" etcd 30
say "etcd on 127.0.0.1:$PORT"
