#!/usr/bin/env bash
# Portcullis against node-oidc-provider 9 with its in-memory adapter (bench/peer/server.js), in
# the same run, with the same load generator (issue 15): `portcullis-bench --peer` runs each of
# client-credentials, introspect, code-exchange (pre-minted codes) and refresh against
# Portcullis, then against the peer, and writes both and their ratios to BENCHMARKS.md. Installs
# the peer from npm, starts it on a free loopback port, and stops it afterwards. Arguments go to
# the bench:
#
#   cargo build --release --bins
#   bench/peer.sh --backend mysql --concurrency 64 --duration 20
#   bench/peer.sh --backend sqlite --concurrency 64 --duration 20
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CARGO_TARGET_DIR:-target}/release"
[ -x "$bin/portcullis-bench" ] || {
    echo "no $bin/portcullis-bench: run cargo build --release --bins first" >&2
    exit 1
}
command -v node >/dev/null || {
    echo "node is needed for the peer (Debian: apt-get install nodejs npm)" >&2
    exit 1
}
npm ci --prefix bench/peer --no-audit --no-fund --loglevel=error

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
PORT=$port node bench/peer/server.js >"$log" 2>&1 &
peer=$!
trap 'kill $peer 2>/dev/null || true; wait 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null || {
    echo "node-oidc-provider did not start:" >&2
    cat "$log" >&2
    exit 1
}

"$bin/portcullis-bench" --peer "http://127.0.0.1:$port" --peer-pid "$peer" "$@"
