#!/usr/bin/env bash
# Metastore benchmark: inlet's metastore against the reference Apache Hive
# Metastore 2.3.10, both on the same local MariaDB, in one run on one
# machine, with the same Rust load generator (examples/bench_metastore.rs:
# the generated Thrift client, unframed binary protocol, one OS thread and
# one connection per client).
#
#   scripts/bench-metastore.sh [THREADS] [SECONDS]
#
# THREADS concurrent clients (default 8); SECONDS per timed phase (default
# 20). Per server, on a fresh database: add_partitions_req loading 10,000
# partitions in batches of 24 (partitions/s), then get_table (calls/s,
# p50/p99), then get_partitions_by_filter selecting 24 of the 10,000
# partitions (calls/s, p50/p99). Prints a markdown table.
#
# Starts MariaDB and the reference metastore with scripts/services.sh, and
# `inlet metastore serve` (release build) on a fresh MariaDB database that
# is dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-8}"
SECONDS_PER_PHASE="${2:-20}"

eval "$(scripts/services.sh start mysql ref-hms)"
cargo build --release --quiet --bin inlet --example bench_metastore
T="${CARGO_TARGET_DIR:-target}/release"

WORK=$(mktemp -d)
DB="inlet_bench_$(date +%s)_$$"
ROOT_URL="${INLET_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}"
MYSQL_PORT=$(sed -E 's#.*:([0-9]+)/?$#\1#' <<<"$ROOT_URL")
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    mysql -h 127.0.0.1 -P "$MYSQL_PORT" -u root -e "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mysql -h 127.0.0.1 -P "$MYSQL_PORT" -u root -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/metastore.yaml" <<YAML
storage:
  warehouse: $WORK/warehouse
catalog:
  database_url: "${ROOT_URL%/}/$DB"
metastore:
  thrift_listen: 127.0.0.1:$PORT
  http_listen: 127.0.0.1:$HTTP_PORT
YAML
RUST_LOG=warn "$T/inlet" metastore serve --config "$WORK/metastore.yaml" > "$WORK/inlet.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/inlet.log" >&2; echo "inlet metastore exited" >&2; exit 1; }
    sleep 0.2
done

REF="${INLET_TEST_HMS_REFERENCE#thrift://}"
echo "==> inlet metastore on 127.0.0.1:$PORT (MariaDB database $DB), reference on $REF" >&2
"$T/examples/bench_metastore" --threads "$THREADS" --seconds "$SECONDS_PER_PHASE" \
    --target "inlet=127.0.0.1:$PORT" --target "reference-hms-2.3.10=$REF"
