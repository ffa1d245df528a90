# Shared helpers for the scripts that install and start the real servers used by the tests.
# Every server listens on 127.0.0.1 only and keeps its data under $INFRA_HOME/run.
set -euo pipefail

INFRA_HOME=${CHAT4ALL_INFRA_HOME:-$HOME/.cache/chat4all-infra}
RUN_DIR=$INFRA_HOME/run
LOG_DIR=$INFRA_HOME/log
mkdir -p "$RUN_DIR" "$LOG_DIR"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

say() { echo "[infra] $*" >&2; }

# apt_install BINARY PACKAGE...: installs the Debian packages unless BINARY is already there.
apt_install() {
    local binary=$1; shift
    if command -v "$binary" >/dev/null 2>&1; then return 0; fi
    say "installing $* (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "$@" >"$LOG_DIR/apt.log" 2>&1 || {
        $SUDO apt-get update >>"$LOG_DIR/apt.log" 2>&1
        $SUDO apt-get install -y --no-install-recommends "$@" >>"$LOG_DIR/apt.log" 2>&1
    } || { say "apt-get install $* failed; see $LOG_DIR/apt.log"; return 1; }
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT NAME [SECONDS]: waits until something accepts connections on the port.
wait_port() {
    local port=$1 name=$2 limit=${3:-60} waited=0
    until port_open "$port"; do
        if [ "$waited" -ge $((limit * 10)) ]; then
            say "$name did not open 127.0.0.1:$port within ${limit}s; its log: $LOG_DIR/$name.log"
            tail -n 30 "$LOG_DIR/$name.log" >&2 || true
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# one_at_a_time NAME "$@": re-runs the calling script under an exclusive lock on
# $RUN_DIR/NAME.lock, so two runs of it at once (up.sh starting postgres while ferretdb.sh starts
# its dependency) never start the same server twice. `flock -o` keeps the lock out of the servers
# the script leaves running.
one_at_a_time() {
    local name=$1; shift
    if [ "${CHAT4ALL_INFRA_LOCKED:-}" != "$name" ]; then
        CHAT4ALL_INFRA_LOCKED=$name exec flock -o "$RUN_DIR/$name.lock" "$0" "$@"
    fi
}
