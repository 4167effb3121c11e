#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on loopback, for the multi-node tests and benchmarks.
#
#   deploy/galera/cluster.sh start          # bootstrap node 1, join 2 and 3 (SST by rsync)
#   deploy/galera/cluster.sh status         # each node's wsrep state and the cluster size
#   deploy/galera/cluster.sh kill N         # kill -9 node N (1-3), as a crash would
#   deploy/galera/cluster.sh start-node N   # start node N again; it rejoins (IST or SST)
#   deploy/galera/cluster.sh stop           # stop every node and delete the data
#   deploy/galera/cluster.sh urls           # the nodes' URLs, comma-separated
#
# Node N listens on 127.0.0.1:330(6+N) for SQL, 456(6+N) for group communication, 457(6+N) for
# incremental state transfer and 444(3+N) for rsync SST. Data lives under $GALERA_DIR (default
# /tmp/portcullis-galera). The machine's own MariaDB on 3306 is never touched: every mariadbd
# here runs with --no-defaults and its own folders. `root@127.0.0.1` has an empty password.
set -euo pipefail

DIR="${GALERA_DIR:-/tmp/portcullis-galera}"
PROVIDER="${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}"
NODES=(1 2 3)

sql_port() { echo $((3306 + $1)); }
gcomm_port() { echo $((4566 + $1)); }
ist_port() { echo $((4576 + $1)); }
sst_port() { echo $((4443 + $1)); }
node_dir() { echo "$DIR/node$1"; }
socket() { echo "$DIR/node$1.sock"; }
pidfile() { echo "$DIR/node$1.pid"; }
# The pid as started here: mariadbd writes its own pid file only once a joiner's state transfer
# is done, so that file cannot tell a starting node from a dead one.
procfile() { echo "$DIR/node$1.proc"; }

say() { echo "galera: $*"; }
die() {
    echo "galera: FATAL: $*" >&2
    exit 1
}

# What the script needs, from Debian's packages when missing.
need_packages() {
    local need=()
    [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
    [ -f "$PROVIDER" ] || need+=(galera-4)
    command -v rsync >/dev/null 2>&1 || need+=(rsync)
    command -v lsof >/dev/null 2>&1 || need+=(lsof)
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

# The user mariadbd runs as (it refuses root unless told).
run_user() {
    if id mysql >/dev/null 2>&1; then echo mysql; else echo root; fi
}

client() {
    local n=$1
    shift
    mariadb --no-defaults --protocol=socket -S "$(socket "$n")" -u root -N -B "$@"
}

alive() {
    local pid
    pid=$(cat "$(procfile "$1")" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null
}

wsrep_state() {
    client "$1" -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}'
}

cluster_size() {
    client "$1" -e "SHOW STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | awk '{print $2}'
}

# Waits until node N is Synced and answers SQL (the SST of a joiner included).
wait_synced() {
    local n=$1 deadline=$((SECONDS + ${2:-180}))
    while [ $SECONDS -lt $deadline ]; do
        alive "$n" || {
            tail -n 40 "$(node_dir "$n").err" >&2 || true
            die "node $n exited while starting (log above: $(node_dir "$n").err)"
        }
        [ "$(wsrep_state "$n")" = Synced ] && return 0
        sleep 0.5
    done
    tail -n 40 "$(node_dir "$n").err" >&2 || true
    die "node $n not Synced after ${2:-180}s"
}

start_node() {
    local n=$1 new_cluster=${2:-}
    alive "$n" && {
        say "node $n already running"
        return 0
    }
    local data
    data=$(node_dir "$n")
    mkdir -p "$data"
    chown -R "$(run_user)" "$DIR"
    local members=()
    for m in "${NODES[@]}"; do members+=("127.0.0.1:$(gcomm_port "$m")"); done
    local address
    address=$(IFS=,; echo "gcomm://${members[*]}")
    local extra=()
    [ -n "$new_cluster" ] && extra+=(--wsrep-new-cluster)
    # Settings Galera requires (row events, InnoDB, interleaved auto-increment locks); a table
    # without a primary key, or DDL on an engine Galera does not replicate, is refused
    # (wsrep_mode), so the migrations and tests prove Portcullis has neither; small buffers:
    # three servers share this machine with the test suite.
    /usr/sbin/mariadbd --no-defaults \
        --user="$(run_user)" \
        --datadir="$data" --socket="$(socket "$n")" --pid-file="$(pidfile "$n")" \
        --log-error="$data.err" \
        --port="$(sql_port "$n")" --bind-address=127.0.0.1 \
        --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        --innodb-buffer-pool-size=128M --innodb-log-file-size=48M \
        --max-connections=300 \
        --binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
        --wsrep-on=ON --wsrep-provider="$PROVIDER" \
        --wsrep-cluster-name=portcullis-test --wsrep-cluster-address="$address" \
        --wsrep-node-name="node$n" --wsrep-node-address="127.0.0.1:$(gcomm_port "$n")" \
        --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=64M;evs.inactive_timeout=PT6S;evs.suspect_timeout=PT3S" \
        --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$(sst_port "$n")" \
        --wsrep-slave-threads=2 \
        --wsrep-mode=REQUIRED_PRIMARY_KEY,STRICT_REPLICATION \
        "${extra[@]}" >/dev/null 2>&1 &
    echo $! >"$(procfile "$n")"
}

start() {
    need_packages
    if alive 1 || alive 2 || alive 3; then
        die "a cluster is already running in $DIR (stop it first)"
    fi
    for n in "${NODES[@]}"; do
        if ss -ltn | grep -Eq ":($(sql_port "$n")|$(gcomm_port "$n")|$(ist_port "$n")|$(sst_port "$n"))\b"; then
            die "a port of node $n is taken: $(ss -ltnp | grep -E ":($(sql_port "$n")|$(gcomm_port "$n"))\b")"
        fi
    done
    rm -rf "$DIR"
    mkdir -p "$DIR"
    say "initialising node 1 in $DIR"
    mariadb-install-db --no-defaults --user="$(run_user)" --datadir="$(node_dir 1)" \
        --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1 ||
        die "mariadb-install-db failed"
    say "bootstrapping node 1"
    start_node 1 new
    wait_synced 1 60
    # The tests connect over TCP as root with no password, as to the machine's own server.
    client 1 -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                 GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    for n in 2 3; do
        say "joining node $n (state transfer by rsync)"
        start_node "$n"
        wait_synced "$n" 180
    done
    status
}

status() {
    local rc=0
    for n in "${NODES[@]}"; do
        if alive "$n"; then
            echo "node $n: 127.0.0.1:$(sql_port "$n") $(wsrep_state "$n" || echo '?') (cluster size $(cluster_size "$n" || echo '?'))"
        else
            echo "node $n: down"
            rc=1
        fi
    done
    return $rc
}

kill_node() {
    local n=$1 pid
    alive "$n" || die "node $n is not running"
    pid=$(cat "$(procfile "$n")")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$(procfile "$n")" "$(pidfile "$n")"
    say "node $n killed (pid $pid)"
}

stop() {
    for n in "${NODES[@]}"; do
        if alive "$n"; then
            local pid
            pid=$(cat "$(procfile "$n")")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 300); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$DIR"
    say "stopped; $DIR removed"
}

urls() {
    local out=()
    for n in "${NODES[@]}"; do out+=("mysql://root@127.0.0.1:$(sql_port "$n")"); done
    (IFS=,; echo "${out[*]}")
}

node_arg() {
    case "${1:-}" in
        1 | 2 | 3) echo "$1" ;;
        *) die "name a node: 1, 2 or 3" ;;
    esac
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    urls) urls ;;
    kill) kill_node "$(node_arg "${2:-}")" ;;
    start-node)
        n=$(node_arg "${2:-}")
        start_node "$n"
        wait_synced "$n" 180
        ;;
    *)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
