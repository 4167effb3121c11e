#!/usr/bin/env bash
# Two Portcullis nodes, each on its own member of a three-node Galera cluster on loopback, under
# `portcullis-bench --target` (workers alternate between the nodes, as behind a round-robin load
# balancer). Starts everything it needs and removes it afterwards. Arguments go to the bench:
#
#   cargo build --release --bins
#   bench/galera.sh --concurrency 16 --duration 20 --scenarios client-credentials,refresh
#
# Compare with one node on the machine's own MariaDB in the same sitting:
#   target/release/portcullis-bench --backend mysql --concurrency 16 --duration 20 \
#       --scenarios client-credentials,refresh
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/release"
# The nodes' binary: PORTCULLIS_SERVER_BIN compares another build in the same sitting.
server="${PORTCULLIS_SERVER_BIN:-$bin/portcullis}"
for b in "$server" "$bin/portcullis-bench"; do
    [ -x "$b" ] || {
        echo "no $b: run cargo build --release --bins first" >&2
        exit 1
    }
done

export GALERA_DIR="${GALERA_DIR:-/tmp/portcullis-bench-galera}"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    deploy/galera/cluster.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

deploy/galera/cluster.sh start
mariadb --no-defaults -h 127.0.0.1 -P 3307 -u root -e \
    "CREATE DATABASE portcullis_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"

# Every node shares the issuer (the load balancer's address) and the key-encryption key.
kek=$("$server" keys generate-encryption-key | tail -n 1)
issuer=http://127.0.0.1:8181
node() { # node MEMBER_PORT HTTP_PORT
    PORTCULLIS__DATABASE__URL="mysql://root@127.0.0.1:$1/portcullis_bench" \
        PORTCULLIS__DATABASE__POOL_SIZE=16 \
        PORTCULLIS__SERVER__BIND="127.0.0.1:$2" \
        PORTCULLIS__SERVER__ISSUER="$issuer" \
        PORTCULLIS__KEYS__ENCRYPTION_KEY="$kek" \
        PORTCULLIS__LOG__LEVEL=warn \
        "$server" serve >/dev/null &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return 0
        sleep 0.1
    done
    echo "the node on member port $1 did not become ready" >&2
    exit 1
}
node 3307 8181 # migrates the new database first
node 3308 8182

"$bin/portcullis-bench" --target http://127.0.0.1:8181,http://127.0.0.1:8182 \
    --database-url mysql://root@127.0.0.1:3307/portcullis_bench --label galera-two-nodes "$@"
