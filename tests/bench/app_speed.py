#!/usr/bin/env python3
"""Measures the desktop app as the issue asks: cold start to the first rules list,
idle memory of the app (its process and WebKit's), and the app's CPU while the
Rules view shows 1,000 live connections. Prints a Markdown table.

Beside the app it measures WebKitGTK's own MiniBrowser (shipped in the same
libwebkit2gtk-4.1-0 package the app depends on) showing a blank page on the same
display and with the same environment: the memory any WebKitGTK window costs on
this machine, before an application adds anything.

    python3 tests/bench/app_speed.py [path/to/portway-app]   (default: target/release/portway-app)

Runs under its own Xvfb; every process it starts is stopped by PID; traffic stays
on 127.0.0.1.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from procs import cpu_secs, free_port, stop, tree

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "portway-app")


def mem_row(pids):
    """(PSS MiB, RSS MiB) by process name; processes of one name add up."""
    out = {}
    for p in pids:
        try:
            with open("/proc/%d/comm" % p) as f:
                name = f.read().strip()
            vals = {}
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("Pss", "Rss"):
                        vals[k] = int(v.split()[0]) / 1024
        except OSError:
            continue
        pss, rss = out.get(name, (0, 0))
        out[name] = (pss + vals.get("Pss", 0), rss + vals.get("Rss", 0))
    return out


def pss_mib(rows):
    return sum(pss for pss, _ in rows.values())


MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


def webkit_floor(env):
    """Per-process memory of MiniBrowser on a blank page after the same idle wait."""
    if not os.path.exists(MINIBROWSER):
        return None
    # The app sets this for itself (src-tauri/src/lib.rs); the baseline gets the same.
    env = dict(env, WEBKIT_DISABLE_DMABUF_RENDERER="1")
    mb = subprocess.Popen([MINIBROWSER, "about:blank"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait until its web process exists (bounded), then as long as the app was left idle.
        deadline = time.time() + 30
        while time.time() < deadline and len(tree(mb.pid)) < 3:
            time.sleep(0.1)
        time.sleep(10)
        return mem_row(tree(mb.pid))
    finally:
        stop(mb)


def echo_server():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)

    def serve(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return s


def main():
    procs = []
    cfg = tempfile.mkdtemp(prefix="portway-bench-")
    backend = echo_server()
    port = free_port()
    os.makedirs(os.path.join(cfg, "profiles"))
    with open(os.path.join(cfg, "profiles", "bench.yaml"), "w") as f:
        f.write("services:\n- name: bench\n  addr: 127.0.0.1:%d\n  handler: {type: tcp}\n  listener: {type: tcp}\n"
                "  forwarder: {nodes: [{name: target-0, addr: \"127.0.0.1:%d\"}]}\n" % (port, backend.getsockname()[1]))
    with open(os.path.join(cfg, "settings.json"), "w") as f:
        f.write('{"activeProfile": "bench"}')
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"], pass_fds=[w])
    os.close(w)
    procs.append(xvfb)
    display = b""
    while not display.endswith(b"\n"):
        display += os.read(r, 16)
    env = dict(os.environ, DISPLAY=":" + display.decode().strip(), PORTWAY_CONFIG_DIR=cfg)
    log = tempfile.TemporaryFile()
    t0 = time.time()
    app = subprocess.Popen([APP], env=env, stderr=log, stdout=subprocess.DEVNULL)
    procs.append(app)
    first_ms = None
    deadline = time.time() + 30
    while time.time() < deadline and first_ms is None:
        log.seek(0)
        m = re.search(rb"first snapshot served (\d+) ms", log.read())
        if m:
            first_ms = int(m.group(1))
        time.sleep(0.05)
    wall_first = time.time() - t0
    time.sleep(10)
    pids = tree(app.pid)
    idle_rows = mem_row(pids)
    idle_pss = pss_mib(idle_rows)
    c0 = cpu_secs(pids)
    time.sleep(10)
    idle_cpu = (cpu_secs(tree(app.pid)) - c0) / 10 * 100
    conns = []
    for _ in range(1000):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"x")
        c.recv(1)
        conns.append(c)
    time.sleep(3)
    pids = tree(app.pid)
    c0 = cpu_secs(pids)
    time.sleep(10)
    busy_cpu = (cpu_secs(tree(app.pid)) - c0) / 10 * 100
    busy_pss = pss_mib(mem_row(tree(app.pid)))
    for c in conns:
        c.close()
    stop(app)
    floor = webkit_floor(env)
    for p in reversed(procs):
        stop(p)
    backend.close()
    print("| measure | result | target |")
    print("|---|--:|---|")
    print("| cold start to first rules snapshot (app log) | %s ms | first paint ≤ 1.5 s |" % first_ms)
    print("| wall clock from spawn to that log line seen | %.0f ms | |" % (wall_first * 1000))
    print("| idle memory, PSS of app + WebKit processes (%d processes) | %.0f MiB | idle RSS ≤ 150 MB |" % (len(pids), idle_pss))
    print("| idle CPU, app tree | %.2f %% of one core | |" % idle_cpu)
    print("| CPU with 1,000 live connections in the Rules view | %.2f %% of one core | ≤ 2 %% |" % busy_cpu)
    print("| memory with 1,000 live connections (PSS) | %.0f MiB | |" % busy_pss)
    print()
    print("Idle memory per process, the app beside WebKitGTK's MiniBrowser on a blank page:")
    print()
    print("| process | app PSS | app RSS | MiniBrowser PSS | MiniBrowser RSS |")
    print("|---|--:|--:|--:|--:|")
    floor = floor or {}
    ui = {"portway-app": "MiniBrowser"}
    for name, (pss, rss) in sorted(idle_rows.items()):
        fp, fr = floor.get(ui.get(name, name), (None, None))
        print("| %s | %.0f MiB | %.0f MiB | %s | %s |" % (
            name, pss, rss, "–" if fp is None else "%.0f MiB" % fp, "–" if fr is None else "%.0f MiB" % fr))
    print("| **all** | **%.0f MiB** | | **%s** | |" % (
        idle_pss, "%.0f MiB" % pss_mib(floor) if floor else "–"))


if __name__ == "__main__":
    main()
