#!/usr/bin/env python3
"""PySpark as a real Hive Metastore client, for inlet's metastore tests.

Runs a local Spark session with Hive support against a metastore given by
Thrift URI (the reference Hive Metastore 2.3.10 from scripts/services.sh, or
inlet's own), and prints ONE JSON object on stdout. Spark's own logging
goes to stderr (quiet: errors only).

Modes:

  spark_hive.py scenario --db DB [--uri URI] [--warehouse DIR]
      CREATE DATABASE DB; a partitioned datasource table (USING parquet,
      PARTITIONED BY (dt STRING, hr INT)) and a partitioned Hive-format table
      (STORED AS PARQUET, PARTITIONED BY (dt STRING)); inserts into several
      partitions (dynamic and static); SELECTs with partition filters, each
      with a proof that the filter was pushed to the metastore; SHOW
      PARTITIONS; ALTER TABLE ADD COLUMNS then reading the new column (null
      for old rows); ALTER TABLE DROP PARTITION; DESCRIBE; DROP TABLE; DROP
      DATABASE CASCADE. The JSON holds every result (see `expected_shape`
      below); "timings_ms" and "steps" (epoch start/end of each step, to
      match a tests/support/thrift_trace.py trace) are informative only.

  spark_hive.py describe-delta DB TABLE [--uri URI]
      `SHOW TABLE EXTENDED IN DB LIKE 'TABLE'`, its information column parsed:
      {"database", "table", "provider", "type", "location",
       "partition_columns": [...], "schema": [{"name","type","nullable"}]
       (as printed: nested types are just "struct"/"array"/"map"),
       "schema_full": same with full types ("struct<a:int,b:string>", from
       the catalog's table metadata), "table_properties": {...} (what Spark
       shows, without its spark.sql.* internals), "information": {key:
       value}}. Plain Spark cannot DESCRIBE a provider=delta table
      (DATA_SOURCE_NOT_FOUND); this can.

  spark_hive.py hive-check DB TABLE FILTER [--uri URI]
      Reads a plain Hive table (inlet's `format: hive`) as a batch job does:
      {"count", "cents" (sum of round(amount*100)), "distinct_pairs" (distinct
      (_kafka_partition, _kafka_offset)), "coupons" (non-null `coupon`, when
      that column exists), "filtered": scan_info of a count with FILTER
      (partitions fetched from the metastore), "describe": DESCRIBE TABLE
      EXTENDED}.

  spark_hive.py count-loop DB TABLE STOPFILE [--uri URI]
      Counts the table's rows again and again, each time as a new query
      (REFRESH TABLE first, so partition locations are read from the
      metastore again), until STOPFILE exists; touches STOPFILE.started
      after the first count. {"counts": [...]}.

  spark_hive.py count DB TABLE [FILTER] [--uri URI]
      {"database", "table", "filter", "count"}: SELECT count(*) FROM DB.TABLE
      [WHERE FILTER].

The metastore URI comes from --uri, else $INLET_SPARK_HMS_URI, else
$INLET_TEST_HMS_REFERENCE. The warehouse (where Spark puts new databases'
directories) from --warehouse, else $INLET_SPARK_WAREHOUSE, else a
temporary directory removed at exit. Run it with the python in
$INLET_TEST_PYSPARK_PYTHON (scripts/services.sh env).

Exit status: 0 on success; 1 with "spark_hive.py: FAILED: <step>: <error>"
on stderr (and no JSON on stdout) if any step fails or gives a result other
than the scenario's own invariants allow; 2 on bad usage.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

STEP = "start"


def fail(msg):
    print(f"spark_hive.py: FAILED: {STEP}: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---------------------------------------------------------------- session

LOG4J2 = """\
status = ERROR
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.console.ref = console
"""


def spark_session(uri, warehouse, scratch):
    from pyspark.sql import SparkSession

    log4j = os.path.join(scratch, "log4j2.properties")
    with open(log4j, "w") as f:
        f.write(LOG4J2)
    java_opts = f"-Dlog4j2.configurationFile=file:{log4j} -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("inlet-spark-hive")
        .config("spark.driver.memory", "512m")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        # plain plans (no AdaptiveSparkPlanExec wrapper) for the pruning check
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.hadoop.hive.metastore.uris", uri)
        # partition filters go to the metastore (get_partitions_by_filter),
        # and a metastore error fails the query instead of falling back to
        # listing every partition (Spark's defaults, stated explicitly)
        .config("spark.sql.hive.metastorePartitionPruning", "true")
        .config("spark.sql.hive.metastorePartitionPruningFallbackOnException", "false")
        .config("spark.hadoop.hive.exec.dynamic.partition", "true")
        .config("spark.hadoop.hive.exec.dynamic.partition.mode", "nonstrict")
        .config("spark.hadoop.hive.metastore.client.socket.timeout", "60s")
        .config("spark.hadoop.derby.system.home", scratch)
        .enableHiveSupport()
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def rows(df):
    return [r.asDict(recursive=True) for r in df.collect()]


# ---------------------------------------------------------------- plan check

_EXPR_ID = re.compile(r"#\d+L?")


def norm(s):
    """Strips Spark's expression ids (dt#12 -> dt) so plans compare."""
    return _EXPR_ID.sub("", s)


def scan_info(spark, df):
    """Runs df (a count/sum query) and returns its result with what the scan
    did: the partition filters in the physical plan, the partitions Spark
    read (scan metric), and the partitions fetched from the metastore during
    the query (HiveCatalogMetrics.partitionsFetched: with pruning through
    the metastore this is the number of matching partitions, not all)."""
    jvm = spark._jvm
    metrics = jvm.org.apache.spark.metrics.source.HiveCatalogMetrics
    metrics.reset()
    result = rows(df)
    fetched = metrics.METRIC_PARTITIONS_FETCHED().getCount()
    hive_calls = metrics.METRIC_HIVE_CLIENT_CALLS().getCount()
    plan = df._jdf.queryExecution().executedPlan()
    scans = []
    it = plan.collectLeaves().iterator()
    while it.hasNext():
        node = it.next()
        name = node.nodeName()
        text = node.simpleString(10000)
        m = re.search(r"PartitionFilters: \[(.*?)\](?:, |$)", text)
        info = {"node": norm(name), "partition_filters": norm(m.group(1)) if m else None}
        ms = node.metrics()
        for key, out in (("numPartitions", "partitions_read"), ("numFiles", "files_read"), ("numOutputRows", "output_rows")):
            opt = ms.get(key)
            info[out] = opt.get().value() if opt.isDefined() else None
        scans.append(info)
    return {
        "result": result,
        "scans": scans,
        "metastore_partitions_fetched": fetched,
        "hive_client_calls": hive_calls,
    }


# ---------------------------------------------------------------- describe

def describe(spark, table):
    """DESCRIBE TABLE EXTENDED: columns, partition columns, and the detailed
    table information (locations made relative to the warehouse)."""
    cols, parts, detail = [], [], {}
    section = "cols"
    for r in rows(spark.sql(f"DESCRIBE TABLE EXTENDED {table}")):
        name, typ = (r["col_name"] or "").strip(), (r["data_type"] or "").strip()
        if name.startswith("# Partition Information"):
            section = "parts"
            continue
        if name.startswith("# Detailed Table Information"):
            section = "detail"
            continue
        if name.startswith("#") or not name:
            continue
        if section == "cols":
            cols.append({"name": name, "type": typ})
        elif section == "parts":
            parts.append({"name": name, "type": typ})
        else:
            detail[name] = typ
    return {"columns": cols, "partition_columns": parts, "detail": detail}


def parse_information(info):
    """The information column of SHOW TABLE EXTENDED: `Key: value` lines, then
    `Schema: root` and ` |-- name: type (nullable = b)` lines."""
    out, schema = {}, []
    in_schema = False
    for line in info.splitlines():
        if in_schema:
            m = re.match(r"^ \|-- (.+?): (.+) \(nullable = (true|false)\)$", line)
            if m:
                schema.append({"name": m.group(1), "type": m.group(2), "nullable": m.group(3) == "true"})
            continue  # nested fields (" |    |-- ...") are kept in their parent's type string only
        if line.startswith("Schema:"):
            in_schema = True
            continue
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
        elif line.endswith(":"):
            out[line[:-1].strip()] = ""
    return out, schema


def strip_volatile_props(s):
    """`[a=1, transient_lastDdlTime=123]` -> `[a=1]` (times differ per run)."""
    inner = s[1:-1] if s.startswith("[") and s.endswith("]") else s
    keep = [p for p in inner.split(", ") if p and not p.startswith("transient_lastDdlTime=")]
    return "[" + ", ".join(keep) + "]"


def split_cols(s):
    """`[`dt`, `hr`]` -> ["dt", "hr"]."""
    s = (s or "").strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    return [c.strip().strip("`") for c in s.split(",") if c.strip()]


def show_table_extended(spark, db, table):
    found = rows(spark.sql(f"SHOW TABLE EXTENDED IN `{db}` LIKE '{table}'"))
    check(len(found) == 1, f"SHOW TABLE EXTENDED IN {db} LIKE '{table}' gave {len(found)} rows, want 1")
    info, schema = parse_information(found[0]["information"])
    # The information column prints nested types as just "struct"/"array";
    # the catalog's own metadata (no data source resolved, so this works for
    # provider=delta too) has the full schema restored from
    # spark.sql.sources.schema.
    from pyspark.sql.types import StructType
    jvm = spark._jvm
    ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier(table, jvm.scala.Option.apply(db))
    meta = spark._jsparkSession.sessionState().catalog().getTableMetadata(ident)
    full = StructType.fromJson(json.loads(meta.schema().json()))
    props = {}
    it = meta.properties().iterator()
    while it.hasNext():
        kv = it.next()
        props[kv._1()] = kv._2()
    return {
        "database": found[0]["namespace"],
        "table": found[0]["tableName"],
        "provider": info.get("Provider"),
        "type": info.get("Type"),
        "location": info.get("Location"),
        "partition_columns": split_cols(info.get("Partition Columns")),
        "schema": schema,
        "schema_full": [{"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable} for f in full.fields],
        "table_properties": dict(sorted(props.items())),
        "information": info,
    }


# ---------------------------------------------------------------- scenario

def scenario(spark, db, warehouse):
    global STEP
    out = {"database": db, "timings_ms": {}}
    t_all = time.monotonic()

    out["steps"] = []  # [name, epoch start, epoch end]: to match call traces

    def step(name):
        global STEP
        STEP = name
        out["timings_ms"][name] = None
        out["steps"].append([name, time.time(), None])
        return time.monotonic()

    def done(name, t0):
        out["timings_ms"][name] = round((time.monotonic() - t0) * 1000)
        out["steps"][-1][2] = time.time()

    def rel(loc):
        """Locations relative to the warehouse: file:/W/db.db/t -> $WAREHOUSE/db.db/t."""
        if loc is None:
            return None
        for prefix in ("file://" + warehouse, "file:" + warehouse, warehouse):
            if loc.startswith(prefix):
                return "$WAREHOUSE" + loc[len(prefix):]
        return loc

    sql = spark.sql
    ds, hv = f"`{db}`.ds", f"`{db}`.hv"

    t = step("create_database")
    sql(f"CREATE DATABASE `{db}` COMMENT 'inlet spark_hive scenario' WITH DBPROPERTIES ('owner_team' = 'inlet')")
    dbinfo = {r["info_name"]: r["info_value"] for r in rows(sql(f"DESCRIBE DATABASE EXTENDED `{db}`"))}
    out["describe_database"] = {
        "name": dbinfo.get("Namespace Name"),
        "comment": dbinfo.get("Comment"),
        "location": rel(dbinfo.get("Location")),
        "properties": dbinfo.get("Properties"),
    }
    out["show_databases"] = [r["namespace"] for r in rows(sql(f"SHOW DATABASES LIKE '{db}'"))]
    check(out["show_databases"] == [db], f"SHOW DATABASES LIKE '{db}' gave {out['show_databases']}")
    done("create_database", t)

    t = step("create_tables")
    sql(f"""CREATE TABLE {ds} (id INT, name STRING, amount DOUBLE, dt STRING, hr INT)
            USING parquet PARTITIONED BY (dt, hr)
            TBLPROPERTIES ('inlet.test' = 'ds')""")
    sql(f"""CREATE TABLE {hv} (id INT, name STRING, amount DOUBLE)
            PARTITIONED BY (dt STRING) STORED AS PARQUET
            TBLPROPERTIES ('inlet.test' = 'hv')""")
    out["show_tables"] = sorted(r["tableName"] for r in rows(sql(f"SHOW TABLES IN `{db}`")))
    check(out["show_tables"] == ["ds", "hv"], f"SHOW TABLES gave {out['show_tables']}")
    done("create_tables", t)

    # ds: 3 days x 2 hours, 12 rows; hv: 3 days, 9 rows (two inserts dynamic,
    # one static). id i has amount i * 1.5.
    t = step("insert")
    ds_rows = [(i, f"n{i}", i * 1.5, f"2024-01-0{1 + (i % 3)}", i % 2) for i in range(1, 13)]
    sql(f"INSERT INTO {ds} VALUES " + ", ".join(f"({i}, '{n}', {a}, '{d}', {h})" for i, n, a, d, h in ds_rows))
    hv_rows = [(i, f"h{i}", i * 1.5, f"2024-01-0{1 + (i % 2)}") for i in range(1, 7)]
    sql(f"INSERT INTO {hv} PARTITION (dt) VALUES " + ", ".join(f"({i}, '{n}', {a}, '{d}')" for i, n, a, d in hv_rows))
    sql(f"INSERT INTO {hv} PARTITION (dt = '2024-01-03') VALUES (7, 'h7', 10.5), (8, 'h8', 12.0), (9, 'h9', 13.5)")
    done("insert", t)

    t = step("select_all")
    out["ds_all"] = rows(sql(f"SELECT count(*) AS n, sum(amount) AS total, min(id) AS min_id, max(id) AS max_id FROM {ds}"))[0]
    out["hv_all"] = rows(sql(f"SELECT count(*) AS n, sum(amount) AS total, min(id) AS min_id, max(id) AS max_id FROM {hv}"))[0]
    check(out["ds_all"]["n"] == 12, f"ds has {out['ds_all']['n']} rows, want 12")
    check(out["hv_all"]["n"] == 9, f"hv has {out['hv_all']['n']} rows, want 9")
    out["ds_rows_by_partition"] = rows(sql(f"SELECT dt, hr, count(*) AS n, sum(amount) AS total FROM {ds} GROUP BY dt, hr ORDER BY dt, hr"))
    done("select_all", t)

    t = step("select_pruned")
    pruned = {}
    # string partition column, datasource table: 1 of 3 days = 2 of 6 partitions
    pruned["ds_dt"] = scan_info(spark, sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {ds} WHERE dt = '2024-01-02'"))
    # integral partition column (direct SQL in the reference server; JDOQL
    # alone refuses non-string partition keys): 3 of 6 partitions
    pruned["ds_hr"] = scan_info(spark, sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {ds} WHERE hr = 1"))
    # both: 1 of 6
    pruned["ds_dt_hr"] = scan_info(spark, sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {ds} WHERE dt = '2024-01-03' AND hr = 0"))
    # range on a string column: 2 of 3 days
    pruned["ds_dt_range"] = scan_info(spark, sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {ds} WHERE dt >= '2024-01-02'"))
    # Hive-format table (converted to a Parquet file scan, partitions still
    # listed through the metastore): 1 of 3
    pruned["hv_dt"] = scan_info(spark, sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {hv} WHERE dt = '2024-01-03'"))
    want = {"ds_dt": 2, "ds_hr": 3, "ds_dt_hr": 1, "ds_dt_range": 4, "hv_dt": 1}
    for key, parts in want.items():
        p = pruned[key]
        scan = p["scans"][0] if p["scans"] else {}
        p["pruned_through_metastore"] = bool(
            len(p["scans"]) == 1
            and scan.get("partition_filters")
            and scan.get("partitions_read") == parts
            and p["metastore_partitions_fetched"] == parts
        )
        check(p["pruned_through_metastore"], f"{key}: partition filter not pruned through the metastore (want {parts} partitions): {json.dumps(p)}")
    out["pruned"] = pruned
    done("select_pruned", t)

    t = step("show_partitions")
    out["ds_partitions"] = [r["partition"] for r in rows(sql(f"SHOW PARTITIONS {ds}"))]
    out["ds_partitions_dt_2024_01_02"] = [r["partition"] for r in rows(sql(f"SHOW PARTITIONS {ds} PARTITION (dt = '2024-01-02')"))]
    out["hv_partitions"] = [r["partition"] for r in rows(sql(f"SHOW PARTITIONS {hv}"))]
    check(len(out["ds_partitions"]) == 6, f"ds partitions {out['ds_partitions']}")
    check(out["hv_partitions"] == ["dt=2024-01-01", "dt=2024-01-02", "dt=2024-01-03"], f"hv partitions {out['hv_partitions']}")
    done("show_partitions", t)

    t = step("describe")
    out["describe_ds"] = describe(spark, ds)
    out["describe_hv"] = describe(spark, hv)
    for d in (out["describe_ds"], out["describe_hv"]):
        for k in ("Location",):
            d["detail"][k] = rel(d["detail"].get(k))
        d["detail"].pop("Created Time", None)
        d["detail"].pop("Last Access", None)
        d["detail"].pop("Owner", None)
        if "Table Properties" in d["detail"]:
            d["detail"]["Table Properties"] = strip_volatile_props(d["detail"]["Table Properties"])
    # the first Location is the partition's (the table's follows)
    part_locs = [r["data_type"] for r in rows(sql(f"DESCRIBE TABLE EXTENDED {ds} PARTITION (dt = '2024-01-01', hr = 1)")) if (r["col_name"] or "").strip() == "Location"]
    out["ds_partition_location"] = rel(part_locs[0]) if part_locs else None
    out["show_table_extended_ds"] = show_table_extended(spark, db, "ds")
    out["show_table_extended_ds"]["location"] = rel(out["show_table_extended_ds"]["location"])
    out["show_table_extended_ds"]["information"] = {
        k: (rel(v) if k == "Location" else v)
        for k, v in out["show_table_extended_ds"]["information"].items()
        if k not in ("Created Time", "Last Access", "Owner")
    }
    info = out["show_table_extended_ds"]["information"]
    if "Table Properties" in info:
        info["Table Properties"] = strip_volatile_props(info["Table Properties"])
    done("describe", t)

    t = step("alter_add_columns")
    sql(f"ALTER TABLE {ds} ADD COLUMNS (note STRING COMMENT 'added later')")
    sql(f"ALTER TABLE {hv} ADD COLUMNS (note STRING COMMENT 'added later')")
    out["ds_schema_after_add"] = [{"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable} for f in spark.table(ds).schema.fields]
    out["hv_schema_after_add"] = [{"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable} for f in spark.table(hv).schema.fields]
    sql(f"INSERT INTO {ds} VALUES (13, 'n13', 19.5, 'first note', '2024-01-02', 1)")
    sql(f"INSERT INTO {hv} PARTITION (dt = '2024-01-02') VALUES (10, 'h10', 15.0, 'first note')")
    out["ds_note"] = rows(sql(f"SELECT count(*) AS n, count(note) AS with_note, sum(CASE WHEN note IS NULL THEN 1 ELSE 0 END) AS null_note, max(note) AS note FROM {ds}"))[0]
    out["hv_note"] = rows(sql(f"SELECT count(*) AS n, count(note) AS with_note, sum(CASE WHEN note IS NULL THEN 1 ELSE 0 END) AS null_note, max(note) AS note FROM {hv}"))[0]
    check(out["ds_note"] == {"n": 13, "with_note": 1, "null_note": 12, "note": "first note"}, f"ds note {out['ds_note']}")
    check(out["hv_note"] == {"n": 10, "with_note": 1, "null_note": 9, "note": "first note"}, f"hv note {out['hv_note']}")
    out["ds_columns_after_add"] = describe(spark, ds)["columns"]
    done("alter_add_columns", t)

    t = step("alter_table_properties")
    sql(f"ALTER TABLE {ds} SET TBLPROPERTIES ('inlet.step' = 'altered')")
    props = {r["key"]: r["value"] for r in rows(sql(f"SHOW TBLPROPERTIES {ds}"))}
    out["ds_tblproperties"] = {k: v for k, v in sorted(props.items()) if k.startswith("inlet.")}
    check(out["ds_tblproperties"] == {"inlet.step": "altered", "inlet.test": "ds"}, f"tblproperties {props}")
    done("alter_table_properties", t)

    t = step("drop_partition")
    sql(f"ALTER TABLE {ds} DROP PARTITION (dt = '2024-01-01')")
    sql(f"ALTER TABLE {hv} DROP PARTITION (dt = '2024-01-01')")
    out["ds_partitions_after_drop"] = [r["partition"] for r in rows(sql(f"SHOW PARTITIONS {ds}"))]
    out["hv_partitions_after_drop"] = [r["partition"] for r in rows(sql(f"SHOW PARTITIONS {hv}"))]
    out["ds_after_drop"] = rows(sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {ds}"))[0]
    out["hv_after_drop"] = rows(sql(f"SELECT count(*) AS n, sum(amount) AS total FROM {hv}"))[0]
    check(len(out["ds_partitions_after_drop"]) == 4, f"ds partitions after drop {out['ds_partitions_after_drop']}")
    check(out["hv_partitions_after_drop"] == ["dt=2024-01-02", "dt=2024-01-03"], f"hv partitions after drop {out['hv_partitions_after_drop']}")
    out["ds_dropped_partition_dir_exists"] = os.path.exists(os.path.join(warehouse, f"{db.lower()}.db", "ds", "dt=2024-01-01"))
    done("drop_partition", t)

    t = step("drop_table")
    sql(f"DROP TABLE {hv}")
    out["show_tables_after_drop"] = sorted(r["tableName"] for r in rows(sql(f"SHOW TABLES IN `{db}`")))
    check(out["show_tables_after_drop"] == ["ds"], f"SHOW TABLES after DROP TABLE gave {out['show_tables_after_drop']}")
    out["hv_dir_exists_after_drop"] = os.path.exists(os.path.join(warehouse, f"{db.lower()}.db", "hv"))
    done("drop_table", t)

    t = step("drop_database_cascade")
    sql(f"DROP DATABASE `{db}` CASCADE")
    out["show_databases_after_drop"] = [r["namespace"] for r in rows(sql(f"SHOW DATABASES LIKE '{db}'"))]
    check(out["show_databases_after_drop"] == [], f"database still listed after DROP DATABASE CASCADE: {out['show_databases_after_drop']}")
    out["db_dir_exists_after_drop"] = os.path.exists(os.path.join(warehouse, f"{db.lower()}.db"))
    done("drop_database_cascade", t)

    out["timings_ms"]["scenario_total"] = round((time.monotonic() - t_all) * 1000)
    return out


# ---------------------------------------------------------------- hive-check

def hive_check(spark, db, table, filt):
    global STEP
    name = f"`{db}`.`{table}`"
    # First, while Spark has listed no partition of the table: the filter
    # must reach the metastore (get_partitions_by_filter).
    STEP = "filtered count"
    filtered = scan_info(spark, spark.sql(f"SELECT count(*) AS n FROM {name} WHERE {filt}"))
    STEP = "describe"
    desc = describe(spark, name)
    desc["partition_columns"] = [c.name for c in spark.catalog.listColumns(f"{db}.{table}") if c.isPartition]
    cols = [c["name"] for c in desc["columns"]]
    STEP = "totals"
    coupons = ", count(coupon) AS coupons" if "coupon" in cols else ""
    tot = spark.sql(
        f"SELECT count(*) AS n, sum(cast(round(amount * 100) AS bigint)) AS cents, "
        f"count(DISTINCT _kafka_partition, _kafka_offset) AS pairs{coupons} FROM {name}"
    ).collect()[0]
    return {
        "count": tot["n"],
        "cents": tot["cents"],
        "distinct_pairs": tot["pairs"],
        "coupons": tot["coupons"] if coupons else None,
        "filtered": filtered,
        "describe": desc,
    }


def count_loop(spark, db, table, stopfile):
    global STEP
    name = f"`{db}`.`{table}`"
    counts = []
    started = time.monotonic()
    while True:
        STEP = f"count {len(counts)}"
        spark.sql(f"REFRESH TABLE {name}")
        counts.append(spark.sql(f"SELECT count(*) AS n FROM {name}").collect()[0]["n"])
        if len(counts) == 1:
            open(stopfile + ".started", "w").close()
        if os.path.exists(stopfile) and len(counts) >= 2:
            break
        if time.monotonic() - started > 600:
            fail(f"{stopfile} never appeared")
    return {"counts": counts}


# ---------------------------------------------------------------- main

def main():
    global STEP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["scenario", "describe-delta", "count", "hive-check", "count-loop"])
    ap.add_argument("args", nargs="*", help="describe-delta: DB TABLE; count: DB TABLE [FILTER]")
    ap.add_argument("--uri", default=os.environ.get("INLET_SPARK_HMS_URI") or os.environ.get("INLET_TEST_HMS_REFERENCE"))
    ap.add_argument("--db", help="scenario: a database name not in use (e.g. unique per test)")
    ap.add_argument("--warehouse", default=os.environ.get("INLET_SPARK_WAREHOUSE"))
    a = ap.parse_args()
    if not a.uri:
        ap.error("no metastore URI: pass --uri or set INLET_SPARK_HMS_URI / INLET_TEST_HMS_REFERENCE")
    if a.mode == "scenario" and (not a.db or a.args):
        ap.error("scenario takes --db DB and no positional arguments")
    if a.mode == "describe-delta" and len(a.args) != 2:
        ap.error("describe-delta takes DB TABLE")
    if a.mode == "count-loop" and len(a.args) != 3:
        ap.error("count-loop takes DB TABLE STOPFILE")
    if a.mode == "hive-check" and len(a.args) != 3:
        ap.error("hive-check takes DB TABLE FILTER")
    if a.mode == "count" and len(a.args) not in (2, 3):
        ap.error("count takes DB TABLE [FILTER]")

    t0 = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="inlet-spark-hive-")
    warehouse = os.path.abspath(a.warehouse) if a.warehouse else os.path.join(scratch, "warehouse")
    os.makedirs(warehouse, exist_ok=True)
    spark = None
    try:
        try:
            import pyspark  # noqa: F401
        except ImportError as e:
            fail(f"pyspark is not importable by {sys.executable} ({e}); use $INLET_TEST_PYSPARK_PYTHON from scripts/services.sh env")
        STEP = "spark session"
        spark = spark_session(a.uri, warehouse, scratch)
        # the first catalog call: Spark's Hive client connects here
        STEP = f"connect to metastore {a.uri}"
        spark.catalog.listDatabases()
        startup_ms = round((time.monotonic() - t0) * 1000)
        if a.mode == "scenario":
            out = scenario(spark, a.db, warehouse)
            out["timings_ms"]["spark_startup"] = startup_ms
        elif a.mode == "count-loop":
            out = count_loop(spark, *a.args)
        elif a.mode == "hive-check":
            out = hive_check(spark, *a.args)
        elif a.mode == "describe-delta":
            STEP = "show table extended"
            out = show_table_extended(spark, a.args[0], a.args[1])
        else:
            STEP = "count"
            db, table = a.args[0], a.args[1]
            filt = a.args[2] if len(a.args) == 3 else None
            q = f"SELECT count(*) AS n FROM `{db}`.`{table}`" + (f" WHERE {filt}" if filt else "")
            out = {"database": db, "table": table, "filter": filt, "count": spark.sql(q).collect()[0]["n"]}
        STEP = "stop"
        spark.stop()
        spark = None
        if a.mode == "scenario":
            out["timings_ms"]["total_with_jvm"] = round((time.monotonic() - t0) * 1000)
        print(json.dumps(out, sort_keys=True, default=str))
        return 0
    except SystemExit:
        raise
    except Exception as e:  # Py4J / AnalysisException / anything: one clear line
        jexc = getattr(e, "java_exception", None)  # Py4JJavaError: the Java exception's own message
        msg = (str(jexc) if jexc is not None else str(e)).strip().splitlines()
        fail(f"{type(e).__name__}: {msg[0] if msg else ''}" + (f" ... ({len(msg)} lines)" if len(msg) > 1 else ""))
    finally:
        if spark is not None:
            try:
                spark.stop()
            except Exception:
                pass
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
