#!/usr/bin/env bash
# The quickstart: starts a local Kafka broker (installing it if missing),
# produces sample click events, ingests them into a Delta table in a local
# warehouse, and tells you where the table is and how to query it.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-200000}"

echo "==> starting the local broker (scripts/services.sh)" >&2
eval "$(scripts/services.sh start kafka s3)"
export INLET_BROKERS="$INLET_TEST_BROKERS"
export INLET_WAREHOUSE="${INLET_WAREHOUSE:-$PWD/.inlet/warehouse}"
export INLET_CATALOG="${INLET_CATALOG:-$PWD/.inlet/metastore.db}"
# Ports of the metastore the quickstart starts for a moment (free ones).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export INLET_THRIFT_LISTEN="127.0.0.1:$(free_port)" INLET_HTTP_LISTEN="127.0.0.1:$(free_port)"

echo "==> building inlet" >&2
cargo build --quiet --bin inlet
BIN="${CARGO_TARGET_DIR:-target}/debug/inlet"

echo "==> validating examples/quickstart.yaml" >&2
"$BIN" validate --config examples/quickstart.yaml

echo "==> producing $COUNT sample events to topic clickstream" >&2
START_ID=$(date +%s%N)
"$BIN" sample-events --brokers "$INLET_BROKERS" --topic clickstream --partitions 4 --count "$COUNT" --start-id "$START_ID" >&2

echo "==> ingesting until caught up (progress is logged per commit)" >&2
"$BIN" ingest --config examples/quickstart.yaml --until-caught-up

echo "==> serving the catalog for a moment (inlet metastore serve)" >&2
"$BIN" metastore serve --config examples/quickstart.yaml 2>"$PWD/.inlet/metastore.log" &
MS_PID=$!
trap 'kill $MS_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://$INLET_HTTP_LISTEN/ready" >/dev/null 2>&1 && break; sleep 0.1; done
CATALOG_VIEW=$(curl -fs "http://$INLET_HTTP_LISTEN/api/v1/databases/web/tables/clickstream" | python3 -c 'import json,sys; t=json.load(sys.stdin); d=t.get("delta") or {}; print("web.clickstream: provider %s, %d columns, Delta version %s, %s files, %s bytes" % (t["format"]["provider"], len(t["columns"]), d.get("version"), d.get("files"), d.get("size_bytes")))' 2>/dev/null || echo "(catalog not reachable: see .inlet/metastore.log)")
kill $MS_PID 2>/dev/null || true
JOBS=$("$BIN" jobs list --config examples/quickstart.yaml 2>/dev/null | sed 's/^/  /' || true)

TABLE="$INLET_WAREHOUSE/web.db/clickstream"
ROWS=$(python3 tests/support/delta_read.py "$TABLE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')
cat <<MSG

Done. The Delta table is at:
  $TABLE
It holds $ROWS rows (each run of the quickstart adds $COUNT more).

Query it with Python:
  python3 -c "import deltalake; t = deltalake.DeltaTable('$TABLE'); print(t.to_pyarrow_table().group_by('event_type').aggregate([('amount', 'sum')]))"
or with Spark (delta-spark):
  spark.read.format('delta').load('$TABLE').groupBy('dt', 'hour').count().show()

The table is registered in the catalog ($INLET_CATALOG):
  $CATALOG_VIEW
The pipeline's lifecycle is recorded there too (inlet jobs list|show|pause|resume):
$JOBS
Serve it to Spark, Hive and Trino (thrift://127.0.0.1:9083) and to the REST API:
  $BIN metastore serve --config examples/quickstart.yaml
  curl http://127.0.0.1:8080/api/v1/databases/web/tables/clickstream
MSG
