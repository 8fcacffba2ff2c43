"""Produce-to-visible latency of a Delta table written by inlet.

For every commit, each row it added became visible at the commit's
timestamp; its Kafka timestamp is when it was produced. Prints p50/p99/max
of (commit time - Kafka timestamp) over all rows.

    python3 tests/support/freshness.py TABLE_DIR
"""
import json
import os
import sys

import pyarrow.parquet as pq


def main() -> None:
    table = sys.argv[1]
    log = os.path.join(table, "_delta_log")
    latencies = []
    for name in sorted(os.listdir(log)):
        if not name.endswith(".json"):
            continue
        commit_ts = None
        paths = []
        with open(os.path.join(log, name)) as f:
            for line in f:
                action = json.loads(line)
                if "commitInfo" in action:
                    commit_ts = action["commitInfo"].get("timestamp")
                if "add" in action:
                    paths.append(action["add"]["path"])
        if commit_ts is None:
            continue
        for p in paths:
            col = pq.read_table(os.path.join(table, p), columns=["_kafka_timestamp"]).column(0)
            for ts in col.cast("int64").to_pylist():
                if ts is not None:
                    latencies.append(commit_ts - ts / 1000.0)
    if not latencies:
        print("no rows")
        sys.exit(1)
    latencies.sort()

    def q(x: float) -> float:
        return latencies[min(len(latencies) - 1, int(x * len(latencies)))] / 1000.0

    print(f"freshness over {len(latencies)} rows: p50 {q(0.50):.2f} s, p99 {q(0.99):.2f} s, max {latencies[-1] / 1000.0:.2f} s")


if __name__ == "__main__":
    main()
    # pyarrow can abort in its exit handlers after a correct answer.
    sys.stdout.flush()
    os._exit(0)
