#!/usr/bin/env bash
# Apache Kafka (KRaft, one node: broker + controller) on 127.0.0.1:9092, controller on :9093.
# The jars come from Maven Central (scripts/infra/kafka/pom.xml) and are cached under
# $INFRA_HOME/kafka-<version>/lib; the data lives under $RUN_DIR/kafka.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=${CHAT4ALL_KAFKA_VERSION:-4.4.0}
PORT=${CHAT4ALL_KAFKA_PORT:-9092}
CONTROLLER_PORT=$((PORT + 1))
HOME_DIR=$INFRA_HOME/kafka-$VERSION
LIB=$HOME_DIR/lib
# Another port and data folder give a private broker (the restart tests start one).
DATA=${CHAT4ALL_KAFKA_DATA:-$RUN_DIR/kafka}
KAFKA_LOG=$LOG_DIR/kafka.log
if [ "$PORT" != 9092 ]; then KAFKA_LOG=$DATA/kafka.log; fi

ready() { python3 "$HERE/kafka/ready.py" "127.0.0.1:$PORT" "$@"; }

if port_open "$PORT"; then
    ready 60 || { say "something listens on 127.0.0.1:$PORT but does not answer as Kafka"; exit 1; }
    say "kafka already on 127.0.0.1:$PORT"
    exit 0
fi

apt_install java openjdk-17-jre-headless
if [ ! -f "$LIB/.complete" ]; then
    apt_install mvn maven
    say "fetching Kafka $VERSION from Maven Central"
    rm -rf "$LIB"
    mvn -B -q -f "$HERE/kafka/pom.xml" -Dkafka.version="$VERSION" \
        -Dmaven.repo.local="$INFRA_HOME/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB" \
        >"$LOG_DIR/kafka-install.log" 2>&1 ||
        { say "mvn failed; see $LOG_DIR/kafka-install.log"; tail -n 20 "$LOG_DIR/kafka-install.log" >&2; exit 1; }
    touch "$LIB/.complete"
fi

mkdir -p "$DATA"
cat >"$DATA/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA/logs
# The adapter creates its topics (partitions and replication factor from the settings).
auto.create.topics.enable=false
# One node: every internal topic has one replica; few partitions, so they are created fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join and leave groups all the time: no waiting for more members to arrive.
group.initial.rebalance.delay.ms=0
group.consumer.heartbeat.interval.ms=250
group.consumer.min.heartbeat.interval.ms=250
group.consumer.session.timeout.ms=6000
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
# Small preallocated index files: the tests create many short-lived topics.
log.index.size.max.bytes=1048576
log.segment.bytes=67108864
num.io.threads=2
num.network.threads=2
num.recovery.threads.per.data.dir=1
PROPERTIES

JAVA_OPTS=(-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties")
if [ ! -f "$DATA/logs/meta.properties" ]; then
    cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.tools.StorageTool format \
        --config "$DATA/server.properties" --cluster-id "$cluster_id" \
        >"$LOG_DIR/kafka-format.log" 2>&1 ||
        { say "formatting Kafka's storage failed; see $LOG_DIR/kafka-format.log"; exit 1; }
fi

nohup java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.Kafka "$DATA/server.properties" \
    >"$KAFKA_LOG" 2>&1 &
pid=$!
echo $pid >"$DATA/kafka.pid"
ready 60 "$pid" || {
    say "kafka did not become ready on 127.0.0.1:$PORT; its log: $KAFKA_LOG"
    tail -n 30 "$KAFKA_LOG" >&2
    exit 1
}
say "kafka $VERSION on 127.0.0.1:$PORT"
