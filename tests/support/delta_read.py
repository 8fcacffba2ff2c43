#!/usr/bin/env python3
"""Independent Delta table reader for inlet's end-to-end tests.

Reads a Delta table with the Python `deltalake` package (delta-rs' Python
binding, not inlet's own code) and prints ONE JSON line on stdout:

    {"rows": N, "version": V, "files": F, "distinct_pairs": D,
     "duplicate_pairs": K, "columns": [...]}

  rows             number of rows in the current snapshot
  version          current table version
  files            number of data files in the current snapshot
  distinct_pairs   with --count-col-pair A B: number of distinct (A, B)
                   pairs, else null
  duplicate_pairs  with --count-col-pair A B: number of distinct (A, B)
                   pairs that occur in more than one row, else null
  columns          column names of the table schema (partition columns
                   included), in schema order
  txn_version      only with --app-id ID: the table's application
                   transaction version for ID (null if none)

Usage:
  delta_read.py TABLE_URI [--s3-endpoint URL]
                [--count-col-pair PARTITION_COL OFFSET_COL] [--app-id ID]
                [--version V]   (time travel)

TABLE_URI is a local path, file:// URI or s3:// URI. For s3 the endpoint
comes from --s3-endpoint, else $INLET_TEST_S3_ENDPOINT, else
$AWS_ENDPOINT_URL; credentials from $AWS_ACCESS_KEY_ID /
$AWS_SECRET_ACCESS_KEY (default "testing"), region from $AWS_REGION
(default us-east-1).

Exit status: 0 on success, 2 if there is no Delta table at TABLE_URI
(message on stderr), 1 on any other error.
"""

import argparse
import json
import os
import sys


def storage_options_for(uri, endpoint):
    """object_store options for deltalake; empty for local tables."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in ("s3", "s3a"):
        return {}
    endpoint = (
        endpoint
        or os.environ.get("INLET_TEST_S3_ENDPOINT")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    opts = {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
        "AWS_REGION": os.environ.get("AWS_REGION") or "us-east-1",
        # Reading never commits, so this only silences delta-rs' check that
        # S3 writers have a safe commit mechanism configured.
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.lower().startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
        # moto and other local S3 servers are addressed path-style.
        opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return opts


def pair_counts(table, col_a, col_b):
    """(distinct pairs, pairs seen more than once) over two columns."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return 0, 0
    grouped = table.select([col_a, col_b]).group_by([col_a, col_b]).aggregate(
        [([], "count_all")]
    )
    counts = grouped.column("count_all")
    duplicated = pc.sum(pc.greater(counts, 1).cast("int64")).as_py() or 0
    return grouped.num_rows, duplicated


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Read a Delta table and print one JSON line of facts about it."
    )
    ap.add_argument("table_uri")
    ap.add_argument("--s3-endpoint", help="S3 endpoint URL, e.g. http://127.0.0.1:19000")
    ap.add_argument(
        "--count-col-pair",
        nargs=2,
        metavar=("PARTITION_COL", "OFFSET_COL"),
        help="count distinct and duplicated (PARTITION_COL, OFFSET_COL) pairs",
    )
    ap.add_argument("--app-id", help="also report the application transaction version of this app id")
    ap.add_argument("--version", type=int, help="time travel: read this version of the table")
    args = ap.parse_args(argv)

    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = args.table_uri
    opts = storage_options_for(uri, args.s3_endpoint)
    try:
        dt = DeltaTable(uri, version=args.version, storage_options=opts or None)
    except TableNotFoundError as e:
        print(f"delta_read: no Delta table at {uri}: {e}", file=sys.stderr)
        return 2

    columns = [f.name for f in dt.schema().fields]
    if args.count_col_pair:
        missing = [c for c in args.count_col_pair if c not in columns]
        if missing:
            print(
                f"delta_read: column(s) {missing} not in table columns {columns}",
                file=sys.stderr,
            )
            return 1
        table = dt.to_pyarrow_table(columns=list(dict.fromkeys(args.count_col_pair)))
        distinct, duplicated = pair_counts(table, *args.count_col_pair)
    else:
        table = dt.to_pyarrow_table()
        distinct = duplicated = None

    out = {
        "rows": table.num_rows,
        "version": dt.version(),
        "files": len(dt.file_uris()),
        "distinct_pairs": distinct,
        "duplicate_pairs": duplicated,
        "columns": columns,
    }
    if args.app_id is not None:
        out["txn_version"] = dt.transaction_version(args.app_id)
    print(json.dumps(out), flush=True)
    return 0


def _exit(code):
    # Leave without interpreter teardown: pyarrow/deltalake scan threads can
    # otherwise abort the process at exit ("terminate called without an
    # active exception", exit 134) after the answer was printed; seen here
    # intermittently with deltalake 1.6.6 + pyarrow 26 (delta-rs#2184,
    # arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        rc = main()
    except KeyboardInterrupt:
        rc = 130
    except SystemExit as e:  # argparse usage errors
        rc = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # one clear line for the Rust test's assertion message
        print(f"delta_read: error: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 1
    _exit(rc)
