#!/usr/bin/env bash
# Compaction benchmark: inlet against Python deltalake's optimize.compact()
# on identical copies of one table, in one run on one machine. Prints input
# MB/s and peak RSS of both, and checks that both tables still hold every row.
#
#   scripts/bench-compact.sh [FILES] [ROWS_PER_FILE] [INLET_MEMORY_BUDGET_BYTES]
#
# inlet's `compaction.memory_budget_bytes` defaults here to 64 MiB (2
# concurrent rewrites of 32 MiB each, row groups of up to 8 MiB encoded);
# the peer has no such setting.
#
# The table: FILES small files (default 2,000) in 4 date partitions, rows of
# the sample event schema plus a 16-byte random column (about 1 GiB with the
# defaults), written with Python deltalake (snappy, as inlet's ingest writes).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-2000}"
ROWS="${2:-15000}"
BUDGET="${3:-67108864}"
PY="${INLET_PYTHON:-python3}"
"$PY" -c 'import numpy, pyarrow, deltalake' 2>/dev/null || "$PY" -m pip install --quiet numpy pyarrow deltalake
# The same targets as bench-ingest.sh: one release build serves both (a
# different target set unifies features differently and rebuilds the world).
cargo build --release --quiet --bin inlet --example bare_consumer
T="${CARGO_TARGET_DIR:-target}/release"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "==> building the table: $FILES files x $ROWS rows in 4 partitions" >&2
"$PY" - "$WORK/base" "$FILES" "$ROWS" <<'PY'
import sys, numpy as np, pyarrow as pa
from deltalake import write_deltalake
path, files, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
types = np.array(["view", "click", "cart", "purchase", "search"])
countries = np.array(["DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"])
dates = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
eid = 0
for i in range(files // 4):
    n = rows * 4
    ids = np.arange(eid, eid + n, dtype=np.int64); eid += n
    # A multiplicative hash (wrapping in uint64), halved to stay a non-negative int64.
    h = ((ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(1)).astype(np.int64)
    t = pa.table({
        "event_id": ids,
        "user_id": h % 1_000_000,
        "session_id": pa.array(np.char.add("s-", (h % 10_000_000).astype(str))),
        "event_type": pa.array(types[h % 5]),
        "country": pa.array(countries[(h >> 8) % 8]),
        "amount": (h % 100_000) / 100.0,
        "ts": pa.array(1_795_000_000_000_000 + ids * 1000, pa.timestamp("us", tz="UTC")),
        "url": pa.array(np.char.add("https://shop.example.com/p/", (h % 50_000).astype(str))),
        "rnd": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(rng.bytes(16 * n))]),
        "dt": pa.array(np.repeat(dates, rows)),
    })
    write_deltalake(path, t, mode="append", partition_by=["dt"])
PY
BYTES=$(find "$WORK/base" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
NFILES=$(find "$WORK/base" -name '*.parquet' | wc -l)
echo "    $NFILES files, $BYTES bytes" >&2
for t in inlet inlet-zstd peer; do cp -r "$WORK/base" "$WORK/$t"; done
sync

# Runs a command with its wall time, peak RSS and stderr recorded under
# $WORK/NAME.{time,rss,log}.
timed() {
  local name=$1; shift
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$WORK/$name.rss" "$@" 2> "$WORK/$name.log" >&2 || { tail -20 "$WORK/$name.log"; exit 1; }
  e=$(date +%s.%N)
  echo "$s $e" > "$WORK/$name.time"
}

# inlet twice: with its default codec (snappy, what ingest writes) and with
# zstd, the peer's default codec, on a fresh copy each.
for codec in snappy zstd; do
  t=inlet; [ "$codec" = snappy ] || t="inlet-$codec"
  cat > "$WORK/$t.yaml" <<YAML
storage:
  warehouse: $WORK
compaction:
  memory_budget_bytes: $BUDGET
  tables:
    - location: $WORK/$t
      target_file_size_bytes: 134217728
      small_file_bytes: 134217728
      min_files_per_bin: 2
      skip_active_partitions: false
      max_concurrent_rewrites: 2
      compression: $codec
YAML
  echo "==> inlet compact ($codec)" >&2
  timed "$t" "$T/inlet" compact --config "$WORK/$t.yaml" --table "$WORK/$t"
done

# The peer twice: its defaults (ZSTD level 4), then snappy (inlet's codec).
PEER='
import os, sys
from deltalake import DeltaTable, WriterProperties
wp = None if sys.argv[2] == "default" else WriterProperties(compression=sys.argv[2])
m = DeltaTable(sys.argv[1]).optimize.compact(target_size=134217728, writer_properties=wp)
print(m, file=sys.stderr)
sys.stderr.flush(); os._exit(0)'
echo "==> Python deltalake optimize.compact() (its defaults: ZSTD level 4)" >&2
timed peer "$PY" -c "$PEER" "$WORK/peer" default
echo "==> Python deltalake optimize.compact() with snappy (inlet's codec)" >&2
cp -r "$WORK/base" "$WORK/peer2"; sync
timed peer2 "$PY" -c "$PEER" "$WORK/peer2" SNAPPY

for t in inlet inlet-zstd peer peer2; do
  "$PY" tests/support/delta_read.py "$WORK/$t" > "$WORK/$t.read"
done
"$PY" - "$WORK" "$BYTES" "$NFILES" "$((FILES / 4 * 4 * ROWS))" "$BUDGET" <<'PY'
import json, os, sys
w, size, nfiles, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def fig(name):
    s, e = map(float, open(f"{w}/{name}.time").read().split())
    rss = int(open(f"{w}/{name}.rss").read().strip().splitlines()[-1]) / 1024
    return e - s, rss
print(f"table: {nfiles} files, {size / 1e6:.0f} MB, {rows} rows; inlet memory budget {int(sys.argv[5]) / 2**20:.0f} MiB")
res = {}
for name, label in [("inlet", "inlet compact (snappy)"), ("inlet-zstd", "inlet compact (zstd level 1)"), ("peer", "deltalake optimize.compact (zstd)"), ("peer2", "deltalake optimize.compact (snappy)")]:
    secs, rss = fig(name)
    res[name] = (secs, rss)
    print(f"{label:38s}: {secs:6.2f} s  {size / 1e6 / secs:7.1f} MB/s  peak RSS {rss:6.0f} MiB")
for t in ("inlet", "inlet-zstd", "peer", "peer2"):
    r = json.load(open(f"{w}/{t}.read"))
    assert r["rows"] == rows, (t, r)
    written = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{w}/{t}") for f in fs if f.endswith(".parquet") and "_delta_log" not in d) - size
    print(f"{t}: {r['files']} files after, {r['rows']} rows, {written / 1e6:.0f} MB written")
for i in ("inlet", "inlet-zstd"):
    for p in ("peer", "peer2"):
        print(f"throughput {i} / {p}: {res[p][0] / res[i][0]:.2f}x   peak RSS {i} / {p}: {res[i][1] / res[p][1]:.2f}")
PY
