#!/usr/bin/env bash
# Ingest benchmark: inlet against a bare rdkafka consumer on the same topic,
# in one run, release builds. Prints events/s, MB/s, the ratio, and inlet's
# peak RSS, for a Delta table and for a `format: hive` table (plain Hive
# partitions, commits in an SQLite catalog) read from the same topic; then a
# freshness run (produce -> visible in the table).
#
#   scripts/bench-ingest.sh [EVENTS] [FRESHNESS_RATE] [FRESHNESS_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000000}"
RATE="${2:-15000}"
SECS="${3:-60}"
eval "$(scripts/services.sh start kafka s3)"
cargo build --release --quiet --bin inlet --example bare_consumer
T="${CARGO_TARGET_DIR:-target}/release"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TOPIC="bench_$(date +%s)"

echo "==> producing $N events (~250 bytes) to $TOPIC (4 partitions)" >&2
"$T/inlet" sample-events --brokers "$INLET_TEST_BROKERS" --topic "$TOPIC" --partitions 4 --count "$N" >&2

# Writes $WORK/NAME.yaml: one pipeline NAME reading $TOPIC into the table
# bench.TABLE, with TABLE_EXTRA inside its `table:` and TOP_EXTRA at the top.
ingest_config() {
  local name=$1 table=$2 table_extra=$3 top_extra=$4
  cat > "$WORK/$name.yaml" <<YAML
storage:
  warehouse: $WORK/warehouse
$top_extra
kafka:
  brokers: $INLET_TEST_BROKERS
  properties:
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
    max.poll.interval.ms: "60000"
pipelines:
  - name: $name
    source: {topics: [$TOPIC], group_id: "$name-$TOPIC"}
    table: {database: bench, name: $table$table_extra}
    flush: {max_latency_ms: 10000}
YAML
}
ingest_config bench events "" ""
ingest_config bench_hive events_hive ", format: hive" "catalog: {database_url: \"sqlite://$WORK/catalog.db\"}"

echo "==> bare consumer" >&2
BARE=$("$T/examples/bare_consumer" "$INLET_TEST_BROKERS" "$TOPIC")
echo "    $BARE" >&2

echo "==> inlet ingest --until-caught-up" >&2
START=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$WORK/rss" "$T/inlet" ingest --config "$WORK/bench.yaml" --until-caught-up 2> "$WORK/inlet.log" || { tail -20 "$WORK/inlet.log"; exit 1; }
END=$(date +%s.%N)
ROWS=$(python3 tests/support/delta_read.py "$WORK/warehouse/bench.db/events" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')

echo "==> inlet ingest --until-caught-up, format: hive" >&2
HSTART=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$WORK/hrss" "$T/inlet" ingest --config "$WORK/bench_hive.yaml" --until-caught-up 2> "$WORK/hive.log" || { tail -20 "$WORK/hive.log"; exit 1; }
HEND=$(date +%s.%N)
# What a Hive reader sees: Parquet files, hidden (`.`/`_`) names skipped.
HROWS=$(python3 -c 'import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1], format="parquet", partitioning="hive").count_rows())' "$WORK/warehouse/bench.db/events_hive")

python3 - "$BARE" "$START" "$END" "$(cat "$WORK/rss")" "$ROWS" "$N" "$HSTART" "$HEND" "$(cat "$WORK/hrss")" "$HROWS" <<'PY'
import json, sys
bare = json.loads(sys.argv[1]); start, end = float(sys.argv[2]), float(sys.argv[3])
rss_kib, rows, n = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
hstart, hend, hrss_kib, hrows = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
secs, hsecs = end - start, hend - hstart
mb = bare["bytes"] / 1e6
b_rate = bare["messages"] / bare["seconds"]
i_rate = rows / secs
h_rate = hrows / hsecs
print(f"events: {n}, rows in table: {rows} (delta), {hrows} (hive), payload {mb:.0f} MB")
print(f"bare consumer      : {bare['seconds']:.2f} s  {b_rate:,.0f} events/s  {mb / bare['seconds']:.1f} MB/s (process start to last message)")
print(f"inlet ingest delta : {secs:.2f} s  {i_rate:,.0f} events/s  {mb / secs:.1f} MB/s  peak RSS {rss_kib / 1024:.0f} MiB")
print(f"inlet ingest hive  : {hsecs:.2f} s  {h_rate:,.0f} events/s  {mb / hsecs:.1f} MB/s  peak RSS {hrss_kib / 1024:.0f} MiB")
print(f"ratio inlet / bare: delta {i_rate / b_rate:.2f}, hive {h_rate / b_rate:.2f}")
bad = [(name, got) for name, got in (("delta", rows), ("hive", hrows)) if got != n]
for name, got in bad:
    print(f"ERROR: the {name} table has {got} rows, expected {n}")
if bad:
    sys.exit(1)
PY

echo "==> freshness: $RATE events/s for $SECS s, allowed latency 2 s" >&2
FTOPIC="fresh_$(date +%s)"
"$T/inlet" sample-events --brokers "$INLET_TEST_BROKERS" --topic "$FTOPIC" --partitions 4 --count 0 >&2
cat > "$WORK/fresh.yaml" <<YAML
storage:
  warehouse: $WORK/warehouse
kafka:
  brokers: $INLET_TEST_BROKERS
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500", max.poll.interval.ms: "60000"}
pipelines:
  - name: fresh
    source: {topics: [$FTOPIC], group_id: "fresh-$FTOPIC", start_offset: earliest}
    metadata_columns: {timestamp: _kafka_timestamp}
    table: {database: bench, name: fresh}
    flush: {max_rows: 1000000, max_latency_ms: 2000}
YAML
"$T/inlet" ingest --config "$WORK/fresh.yaml" 2> "$WORK/fresh.log" &
PID=$!
sleep 5
"$T/inlet" sample-events --brokers "$INLET_TEST_BROKERS" --topic "$FTOPIC" --count $((RATE * SECS)) --rate "$RATE" >&2
sleep 5
kill -TERM $PID; wait $PID || true
python3 tests/support/freshness.py "$WORK/warehouse/bench.db/fresh"
