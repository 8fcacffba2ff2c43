#!/usr/bin/env python3
"""A tracing TCP proxy for Thrift (Hive Metastore) traffic.

  thrift_trace.py proxy --upstream HOST:PORT --out FILE [--listen HOST:PORT]
                        [--port-file FILE]
      Listens (default 127.0.0.1:0, a free port; the chosen port is printed
      on stdout as `listening HOST:PORT` and written to --port-file), forwards
      every connection to the upstream metastore unchanged, and appends one
      JSON line per Thrift call to FILE:
        {"conn": N, "seq": SEQID, "method": NAME, "kind": "call"|"oneway",
         "reply": "ok" | "void" | "exception:<field id>" | "app_exception"
                  | "none", "ms": round-trip, "t": epoch seconds of the reply,
         "args": {field id: value} of the call's top-level string, integer
                 and bool arguments (e.g. get_partitions_by_filter's
                 {"1": db, "2": table, "3": filter, "4": max_parts})}
      "exception:N" is a declared exception (e.g. NoSuchObjectException in
      field 1 of get_database's result), "app_exception" a
      TApplicationException (unknown method, internal error). Parses
      TBinaryProtocol, strict or not, framed or unframed (what Spark, Hive,
      Trino and PyHive send). Stops on SIGTERM/SIGINT.

  thrift_trace.py summary FILE [--steps SCENARIO_JSON]
      The method names in first-call order with counts and reply kinds,
      as a Markdown table; with --steps (the JSON printed by
      spark_hive.py scenario) first the calls of each scenario step.

Only the standard library is used.
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64, T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST = 0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15
FIXED = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8}
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4


class NeedMore(Exception):
    pass


class Reader:
    def __init__(self, buf, pos=0):
        self.buf, self.pos = buf, pos

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise NeedMore
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        n = self.i32()
        if n < 0 or n > 1 << 30:
            raise ValueError(f"bad string length {n}")
        return self.take(n)

    def skip(self, t):
        if t in FIXED:
            self.take(FIXED[t])
        elif t == T_STRING:
            self.string()
        elif t == T_STRUCT:
            while True:
                ft = self.i8()
                if ft == T_STOP:
                    return
                self.i16()
                self.skip(ft)
        elif t == T_MAP:
            kt, vt, n = self.i8(), self.i8(), self.i32()
            for _ in range(n):
                self.skip(kt)
                self.skip(vt)
        elif t in (T_SET, T_LIST):
            et, n = self.i8(), self.i32()
            for _ in range(n):
                self.skip(et)
        else:
            raise ValueError(f"unknown thrift type {t}")

    def message(self):
        """(name, type, seqid, first field id of the body struct or None)."""
        first = self.i32()
        if first < 0:  # strict: version | type
            if (first & 0xFFFF0000) != 0x80010000:
                raise ValueError(f"bad version {first:#x}")
            mtype = first & 0xFF
            name = self.string().decode("utf-8", "replace")
        else:  # old: name, type byte
            name = self.take(first).decode("utf-8", "replace")
            mtype = self.i8()
        seqid = self.i32()
        start = self.pos
        ft = self.i8()
        fid = None if ft == T_STOP else self.i16()
        self.pos = start
        if mtype in (CALL, ONEWAY):
            args = self.top_level_scalars()
        else:
            args = None
            self.skip(T_STRUCT)
        return name, mtype, seqid, fid, args

    def top_level_scalars(self):
        """Reads a struct; returns its string/int/bool fields as
        {field id: value} (nested structs and containers are skipped)."""
        out = {}
        while True:
            ft = self.i8()
            if ft == T_STOP:
                return out
            fid = self.i16()
            if ft == T_STRING:
                out[fid] = self.string().decode("utf-8", "replace")
            elif ft == T_BOOL:
                out[fid] = self.i8() != 0
            elif ft == T_I16:
                out[fid] = self.i16()
            elif ft == T_I32:
                out[fid] = self.i32()
            elif ft == T_I64:
                out[fid] = struct.unpack(">q", self.take(8))[0]
            else:
                self.skip(ft)


class Stream:
    """Parses the messages of one direction of a connection incrementally."""

    def __init__(self):
        self.buf = b""
        self.framed = None
        self.broken = False

    def feed(self, data):
        if self.broken:
            return []
        self.buf += data
        out = []
        while self.buf:
            if self.framed is None:
                if len(self.buf) < 6:
                    break
                # framed: a positive length, then a strict message header
                self.framed = self.buf[0] != 0x80 and self.buf[4:6] == b"\x80\x01"
            try:
                if self.framed:
                    r = Reader(self.buf)
                    n = r.i32()
                    frame = r.take(n)
                    msg = Reader(frame).message()
                    self.buf = self.buf[4 + n:]
                else:
                    r = Reader(self.buf)
                    msg = r.message()
                    self.buf = self.buf[r.pos:]
            except NeedMore:
                break
            except (ValueError, struct.error) as e:
                print(f"thrift_trace: cannot parse stream ({e}); forwarding without tracing", file=sys.stderr)
                self.broken = True
                break
            out.append(msg)
        return out


class Tracer:
    def __init__(self, out_path):
        self.lock = threading.Lock()
        self.out = open(out_path, "a", buffering=1)
        self.conns = 0

    def write(self, rec):
        with self.lock:
            self.out.write(json.dumps(rec) + "\n")


def pump(src, dst, stream, on_msg):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            # record before forwarding: the reply must not overtake its call
            for m in stream.feed(data):
                on_msg(m)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client, upstream, tracer):
    with tracer.lock:
        tracer.conns += 1
        conn = tracer.conns
    try:
        server = socket.create_connection(upstream, timeout=10)
        server.settimeout(None)
    except OSError as e:
        print(f"thrift_trace: upstream {upstream}: {e}", file=sys.stderr)
        client.close()
        return
    pending = {}  # seqid -> (name, kind, t0)
    plock = threading.Lock()

    def on_call(m):
        name, mtype, seqid, _, args = m
        kind = "oneway" if mtype == ONEWAY else "call"
        if mtype == ONEWAY:
            tracer.write({"conn": conn, "seq": seqid, "method": name, "kind": kind, "reply": "none", "ms": 0, "t": time.time(), "args": args})
        else:
            with plock:
                pending[(name, seqid)] = (time.monotonic(), args)

    def on_reply(m):
        name, mtype, seqid, fid, _ = m
        with plock:
            t0, args = pending.pop((name, seqid), (None, None))
        if mtype == EXCEPTION:
            reply = "app_exception"
        elif fid is None:
            reply = "void"
        elif fid == 0:
            reply = "ok"
        else:
            reply = f"exception:{fid}"
        ms = round((time.monotonic() - t0) * 1000, 1) if t0 is not None else None
        tracer.write({"conn": conn, "seq": seqid, "method": name, "kind": "call", "reply": reply, "ms": ms, "t": time.time(), "args": args})

    t = threading.Thread(target=pump, args=(server, client, Stream(), on_reply), daemon=True)
    t.start()
    pump(client, server, Stream(), on_call)
    t.join(timeout=5)
    # calls that never got a reply (connection closed, e.g. fb303 shutdown)
    with plock:
        for (name, seqid), (_t0, args) in pending.items():
            tracer.write({"conn": conn, "seq": seqid, "method": name, "kind": "call", "reply": "none", "ms": None, "t": time.time(), "args": args})
    client.close()
    server.close()


def hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def cmd_proxy(a):
    upstream = hostport(a.upstream)
    tracer = Tracer(a.out)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(hostport(a.listen))
    lsock.listen(64)
    host, port = lsock.getsockname()
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    print(f"listening {host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            c, _ = lsock.accept()
            threading.Thread(target=handle, args=(c, upstream, tracer), daemon=True).start()
    except KeyboardInterrupt:
        return 0


def cmd_summary(a):
    order, counts, replies = [], {}, {}
    with open(a.file) as f:
        recs = [json.loads(line) for line in f]
    if a.steps:
        with open(a.steps) as f:
            steps = json.load(f)["steps"]
        print("| step | calls (in order; xN = N consecutive) |")
        print("|---|---|")
        for name, t0, t1 in steps:
            seq = [r["method"] for r in recs if t0 <= r.get("t", 0) <= t1]
            runs = []
            for m in seq:
                if runs and runs[-1][0] == m:
                    runs[-1][1] += 1
                else:
                    runs.append([m, 1])
            print(f"| {name} | " + ", ".join(f"`{m}`" + (f" x{n}" if n > 1 else "") for m, n in runs) + " |")
        print()
    for r in recs:
        m = r["method"]
        if m not in counts:
            order.append(m)
            counts[m] = 0
            replies[m] = {}
        counts[m] += 1
        replies[m][r["reply"]] = replies[m].get(r["reply"], 0) + 1
    print("| # | Thrift method | calls | replies |")
    print("|---|---|---|---|")
    for i, m in enumerate(order, 1):
        rep = ", ".join(f"{k} {v}" for k, v in sorted(replies[m].items()))
        print(f"| {i} | `{m}` | {counts[m]} | {rep} |")
    print(f"\n{sum(counts.values())} calls, {len(order)} distinct methods")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy")
    p.add_argument("--upstream", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--port-file")
    s = sub.add_parser("summary")
    s.add_argument("file")
    s.add_argument("--steps", help="a spark_hive.py scenario JSON: also list the calls of each step")
    a = ap.parse_args()
    return cmd_proxy(a) if a.cmd == "proxy" else cmd_summary(a)


if __name__ == "__main__":
    sys.exit(main())
