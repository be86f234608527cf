#!/usr/bin/env python3
"""Portway beside haproxy in paired rounds, for the two engine targets a single
fwdbench run cannot settle on a small machine: new connections per second against
haproxy's, and 1-stream bulk against direct. Prints a Markdown report.

    python3 tests/bench/paired.py [--rounds N] [--secs S] [--tests conn,bulk]
                                  [--portway target/release/portway]

Each round runs every peer once, back to back, in an order that rotates from round
to round, so a slow spell of the machine (a busy neighbour on a shared host) falls
on both sides of a ratio instead of on one peer's whole run. What it reports:

- conn: wrk, 32 connections, one HTTP request per TCP connection (`Connection:
  close`), through haproxy and Portway to nginx. Per round Portway's conn/s over
  haproxy's; per peer the forwarder's CPU per connection (utime+stime of its process
  from /proc).
- bulk: iperf3, 1 stream, direct and through haproxy with splice and Portway. Per
  round each forwarder's Gb/s over direct's, and the whole machine's busy CPU per GB
  moved (/proc/stat). On a machine whose load already keeps every core busy, the
  ratio to direct cannot beat direct's CPU per GB over the forwarded path's: that
  column says how much of a ratio is the second TCP connection's cost in the kernel.

Needs nginx, haproxy, wrk and iperf3 (Debian packages of those names). Traffic stays
on 127.0.0.1, every process it starts is stopped by its PID, and listeners are waited
for in /proc/net/tcp (a test connection through a forwarder would reach iperf3's
server and spoil its next test). Not part of the test suite.
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from procs import TICK, cpu_secs, free_port, stop

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def listening(port):
    """Whether something listens on 127.0.0.1:port (state 0A in /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A" for line in list(f)[1:])


def start(argv, port, what):
    """Starts a server and waits (10 s at most) until it listens on `port`."""
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 10
    while not listening(port):
        if p.poll() is not None:
            err.seek(0)
            sys.exit("%s exited (%s) before listening on %d: %s" % (what, p.returncode, port, err.read().decode(errors="replace")[-500:]))
        if time.monotonic() > deadline:
            stop(p)
            sys.exit("%s did not listen on %d within 10 s" % (what, port))
        time.sleep(0.02)
    return p


def machine():
    """(all, idle) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def haproxy_cfg(work, port, target, splice):
    path = os.path.join(work, "haproxy-%d.cfg" % port)
    # haproxy refuses to start when its connections (2 descriptors each, 3 with a
    # splice pipe) would not fit in the descriptor limit it inherits.
    maxconn = min(4000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 3)
    with open(path, "w") as f:
        f.write(
            "global\n  maxconn %d\ndefaults\n  mode tcp\n  maxconn %d\n  timeout connect 5s\n" % (maxconn, maxconn)
            + "  timeout client 1h\n  timeout server 1h\n"
            + ("  option splice-request\n  option splice-response\n" if splice else "")
            + "listen fwd\n  bind 127.0.0.1:%d\n  server s1 127.0.0.1:%d\n" % (port, target)
        )
    return ["haproxy", "-db", "-f", path]


def forwarder(peer, work, port, target, portway):
    if peer == "haproxy":
        return haproxy_cfg(work, port, target, False)
    if peer == "haproxy-splice":
        return haproxy_cfg(work, port, target, True)
    return [portway, "-L", "tcp://127.0.0.1:%d/127.0.0.1:%d" % (port, target)]


def conn_round(peer, work, http, secs, portway):
    port = free_port()
    p = start(forwarder(peer, work, port, http, portway), port, peer)
    try:
        c0 = cpu_secs([p.pid])
        out = subprocess.run(
            ["wrk", "-t1", "-c32", "-d%ds" % secs, "-H", "Connection: close", "http://127.0.0.1:%d/" % port],
            capture_output=True, text=True, timeout=secs + 30,
        ).stdout
        c1 = cpu_secs([p.pid])
    finally:
        stop(p)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        sys.exit("wrk through %s printed no rate:\n%s" % (peer, out))
    rate = float(m.group(1))
    return {"cps": rate, "cpu_us": (c1 - c0) * 1e6 / max(rate * secs, 1)}


def bulk_round(peer, work, iperf, secs, portway):
    p = None
    port = iperf
    if peer != "direct":
        port = free_port()
        p = start(forwarder(peer, work, port, iperf, portway), port, peer)
    try:
        t0, i0 = machine()
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-J"], capture_output=True, text=True, timeout=secs + 30).stdout
        t1, i1 = machine()
    finally:
        if p is not None:
            stop(p)
    try:
        got = json.loads(out)["end"]["sum_received"]
    except (ValueError, KeyError):
        sys.exit("iperf3 through %s gave no result:\n%s" % (peer, out[-500:]))
    gb = got["bytes"] / 1e9
    busy = ((t1 - t0) - (i1 - i0)) / TICK
    return {"gbps": gb * 8 / got["seconds"], "core_s_per_gb": busy / gb, "busy": busy / ((t1 - t0) / TICK)}


def rotate(xs, r):
    k = r % len(xs)
    return xs[k:] + xs[:k]


def spread(xs):
    return "%.2f (%.2f–%.2f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--secs", type=int, default=3)
    ap.add_argument("--tests", default="conn,bulk")
    ap.add_argument("--portway", default=os.path.join(ROOT, "target", "release", "portway"))
    a = ap.parse_args()
    tests = a.tests.split(",")
    missing = [t for t in ("nginx", "haproxy", "wrk", "iperf3") if shutil.which(t) is None]
    if missing:
        sys.exit("not installed: %s (apt-get install %s)" % (", ".join(missing), " ".join(missing)))
    if not os.access(a.portway, os.X_OK):
        sys.exit("%s: not built (cargo build --release -p portway-cli)" % a.portway)
    work = tempfile.mkdtemp(prefix="portway-paired-")
    http, iperf = free_port(), free_port()
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(
            "worker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/error.log;\n"
            "events { worker_connections 4096; }\n"
            'http { access_log off; server { listen 127.0.0.1:%d backlog=4096; location / { return 200 "%s\\n"; } } }\n'
            % (work, work, http, "x" * 63)
        )
    backends = []
    try:
        backends.append(start(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work], http, "nginx"))
        backends.append(start(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(iperf)], iperf, "iperf3"))
        conn = {"haproxy": [], "portway": []}
        bulk = {"direct": [], "haproxy-splice": [], "portway": []}
        for r in range(a.rounds):
            if "conn" in tests:
                for peer in rotate(list(conn), r):
                    conn[peer].append(conn_round(peer, work, http, a.secs, a.portway))
            if "bulk" in tests:
                for peer in rotate(list(bulk), r):
                    bulk[peer].append(bulk_round(peer, work, iperf, a.secs, a.portway))
            print("round %d of %d done" % (r + 1, a.rounds), file=sys.stderr, flush=True)
    finally:
        for p in backends:
            stop(p)
    print("%d paired rounds of %d s, %d cores, Portway `%s`\n" % (a.rounds, a.secs, os.cpu_count(), a.portway))
    if "conn" in tests:
        ratios = [p["cps"] / h["cps"] for p, h in zip(conn["portway"], conn["haproxy"])]
        print("| new connections (c=32) | conn/s, median (min–max) | CPU µs/conn |")
        print("|---|--:|--:|")
        for peer, v in conn.items():
            print("| %s | %.0f (%.0f–%.0f) | %.1f |" % (peer, statistics.median(x["cps"] for x in v), min(x["cps"] for x in v), max(x["cps"] for x in v), statistics.median(x["cpu_us"] for x in v)))
        print("\nPortway / haproxy per round: %s; rounds at or above 1: %d of %d\n" % (spread(ratios), sum(x >= 1 for x in ratios), len(ratios)))
    if "bulk" in tests:
        print("| bulk, 1 stream | Gb/s, median (min–max) | × direct per round | machine core-s/GB | cores busy |")
        print("|---|--:|--:|--:|--:|")
        for peer, v in bulk.items():
            rel = "–" if peer == "direct" else spread([x["gbps"] / d["gbps"] for x, d in zip(v, bulk["direct"])])
            g = [x["gbps"] for x in v]
            print("| %s | %.2f (%.2f–%.2f) | %s | %.3f | %.0f %% |" % (peer, statistics.median(g), min(g), max(g), rel, statistics.median(x["core_s_per_gb"] for x in v), 100 * statistics.median(x["busy"] for x in v)))
        d = statistics.median(x["core_s_per_gb"] for x in bulk["direct"])
        print("\nWith every core busy, a forwarder reaches 0.8× direct only if the forwarded path costs the machine at most %.3f core-s/GB (direct's / 0.8)." % (d / 0.8))


if __name__ == "__main__":
    main()
