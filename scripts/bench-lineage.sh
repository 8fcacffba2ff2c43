#!/usr/bin/env bash
# Lineage overhead benchmark: the same topic ingested three times, each into
# a fresh table with its own consumer group:
#   none         no lineage transports
#   unreachable  an HTTP transport to a receiver that never answers (a local
#                socket that accepts connections and never reads: every
#                attempt waits for its 5 s timeout, then retries with
#                backoff), RUNNING per commit, small flushes (many events).
#                (A non-routable address is no good here: sandboxes with a
#                transparent proxy answer 404 for it at once.)
#   reachable    the same to a local receiver that answers 201 at once
# Prints events/s of each and the ratio to `none`; an unreachable receiver
# must not slow ingestion (events are dropped and counted instead).
#
#   scripts/bench-lineage.sh [EVENTS] [FLUSH_ROWS] [ROUNDS]
#
# The three runs are interleaved ROUNDS times (default 3) and the median
# rate of each is compared, so that a noisy machine does not decide.
#
# INLET_BENCH_PROFILE=dev uses the dev profile (dependencies optimised, inlet
# itself not) when a release build is too slow to make; figures of the two
# are not comparable with each other, only within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000000}"
FLUSH_ROWS="${2:-20000}"
ROUNDS="${3:-3}"
PROFILE="${INLET_BENCH_PROFILE:-release}"
eval "$(scripts/services.sh start kafka)"
if [[ $PROFILE == release ]]; then
    cargo build --release --quiet --bin inlet
    T="${CARGO_TARGET_DIR:-target}/release"
else
    cargo build --quiet --bin inlet
    T="${CARGO_TARGET_DIR:-target}/debug"
fi
WORK=$(mktemp -d)
RECEIVER_PID=
BLACKHOLE_PID=
trap '[[ -n $RECEIVER_PID ]] && kill $RECEIVER_PID 2>/dev/null; [[ -n $BLACKHOLE_PID ]] && kill $BLACKHOLE_PID 2>/dev/null; rm -rf "$WORK"' EXIT
TOPIC="bench_lineage_$(date +%s)"

echo "==> producing $N events to $TOPIC (4 partitions)" >&2
"$T/inlet" sample-events --brokers "$INLET_TEST_BROKERS" --topic "$TOPIC" --partitions 4 --count "$N" >&2

# A receiver that answers at once (python's http.server; it records nothing).
python3 - "$WORK/port" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201); self.send_header("Content-Length", "0"); self.end_headers()
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
RECEIVER_PID=$!
# A receiver that never answers: accepts, holds the connection, reads nothing.
python3 - "$WORK/blackhole" <<'PY' &
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    held.append(s.accept()[0])
PY
BLACKHOLE_PID=$!
for _ in $(seq 50); do [[ -s $WORK/port && -s $WORK/blackhole ]] && break; sleep 0.1; done
RPORT=$(cat "$WORK/port")
BPORT=$(cat "$WORK/blackhole")

run() {
    local name=$1 lineage=$2 round=$3
    rm -rf "$WORK/warehouse-$name"
    cat > "$WORK/$name.yaml" <<YAML
storage:
  warehouse: $WORK/warehouse-$name
kafka:
  brokers: $INLET_TEST_BROKERS
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500", max.poll.interval.ms: "60000"}
pipelines:
  - name: bench
    source: {topics: [$TOPIC], group_id: "bench-$name-$round-$TOPIC"}
    table: {database: bench, name: events}
    flush: {max_rows: $FLUSH_ROWS, max_latency_ms: 10000}
$lineage
YAML
    local start end
    start=$(date +%s.%N)
    NO_COLOR=1 "$T/inlet" ingest --config "$WORK/$name.yaml" --until-caught-up 2> "$WORK/$name.raw.log" || { tail -20 "$WORK/$name.raw.log" >&2; exit 1; }
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/$name.raw.log" > "$WORK/$name.log"
    end=$(date +%s.%N)
    local rows commits totals
    rows=$(python3 tests/support/delta_read.py "$WORK/warehouse-$name/bench.db/events" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')
    commits=$(grep -c ' committed version=' "$WORK/$name.log" || true)
    # "lineage delivery totals transport=http sent=.. failed=.. dropped=.."
    totals=$(grep 'lineage delivery totals' "$WORK/$name.log" | tail -1 | grep -o 'sent=[0-9]* failed=[0-9]* dropped=[0-9]*' | tr ' ' ',' || true)
    echo "$name $start $end $rows ${commits:-0} ${totals:-no-lineage}"
}

LINEAGE_UNREACHABLE="lineage:
  shutdown_timeout_ms: 200
  transports:
    - {type: http, url: 'http://127.0.0.1:$BPORT/api/v1/lineage', timeout_ms: 5000, retries: 5}"
LINEAGE_REACHABLE="lineage:
  shutdown_timeout_ms: 5000
  transports:
    - {type: http, url: 'http://127.0.0.1:$RPORT/api/v1/lineage', timeout_ms: 5000, retries: 5}"

RESULTS=()
for round in $(seq "$ROUNDS"); do
    echo "==> round $round: none" >&2;        RESULTS+=("$(run none "" "$round")")
    echo "==> round $round: unreachable" >&2; RESULTS+=("$(run unreachable "$LINEAGE_UNREACHABLE" "$round")")
    echo "==> round $round: reachable" >&2;   RESULTS+=("$(run reachable "$LINEAGE_REACHABLE" "$round")")
done

python3 - "$N" "$PROFILE" "${RESULTS[@]}" <<'PY'
import statistics, sys
n, profile = int(sys.argv[1]), sys.argv[2]
rates = {}
print(f"events: {n}, profile: {profile}")
for line in sys.argv[3:]:
    name, start, end, rows, commits, totals = line.split()
    secs = float(end) - float(start)
    rates.setdefault(name, []).append(int(rows) / secs)
    print(f"{name:<12} {secs:7.2f} s  {rates[name][-1]:>12,.0f} events/s  commits {commits:>5}  lineage events: {totals}")
    if int(rows) != n:
        print(f"ERROR: {name}: table has {rows} rows, expected {n}"); sys.exit(1)
med = {k: statistics.median(v) for k, v in rates.items()}
for name in ("none", "unreachable", "reachable"):
    print(f"median {name:<12} {med[name]:>12,.0f} events/s  (runs: {', '.join(f'{r:,.0f}' for r in rates[name])})")
for name in ("unreachable", "reachable"):
    print(f"ratio {name} / none (medians): {med[name] / med['none']:.3f}")
PY
