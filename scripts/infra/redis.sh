#!/usr/bin/env bash
# Redis 7 from Debian on 127.0.0.1:6379, memory only.
source "$(dirname "$0")/lib.sh"
PORT=${CHAT4ALL_REDIS_PORT:-6379}

apt_install redis-server redis-server
if port_open "$PORT"; then say "redis already on 127.0.0.1:$PORT"; exit 0; fi
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no \
    --dir "$RUN_DIR" --pidfile "$RUN_DIR/redis.pid" --logfile "$LOG_DIR/redis.log"
wait_port "$PORT" redis 20
say "redis on 127.0.0.1:$PORT"
