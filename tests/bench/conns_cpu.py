#!/usr/bin/env python3
"""CPU of the app with 1,000 live connections while the Connections view and then the
Traffic view are open (the issue's target: at most 5 % of one core). Prints a
Markdown table.

    python3 tests/bench/conns_cpu.py [path/to/portway-app] [seconds]
        (default: target/release/portway-app, 30 s per phase)

Runs the real app under its own Xvfb through tauri-driver (WebDriver opens the views)
with a profile holding one rule to a local echo backend, opens 1,000 connections
through it, each sending a few bytes now and then (100 of them each second), and
reads utime+stime of the app process and its WebKit children from /proc. Every
process it starts is stopped by PID; traffic stays on 127.0.0.1. Not part of the
test suite.
"""

import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions

from procs import cpu_secs, free_port, stop, tree

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "portway-app"))
SECS = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
CONNS = 1000


def name_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def find_app(root_pid, timeout=30):
    """The app process among tauri-driver's descendants (WebKitWebDriver starts it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in tree(root_pid):
            try:
                if os.path.realpath("/proc/%d/exe" % p) == APP:
                    return p
            except OSError:
                pass
        time.sleep(0.1)
    raise SystemExit("the app process did not appear")


class Traffic:
    """An echo backend and 1,000 clients in one selector loop (its CPU is not the
    app's): each second 100 clients send 16 bytes and read the echo."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4096)
        self.server.setblocking(False)
        self.sel.register(self.server, selectors.EVENT_READ, "accept")
        self.clients = []
        self.stop = False
        self.echoed = 0
        self.lock = threading.Lock()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.server.getsockname()[1]

    def open(self, port, n):
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"x")
            if c.recv(1) != b"x":
                raise SystemExit("no echo through the rule")
            c.setblocking(False)
            self.clients.append(c)
            with self.lock:
                self.sel.register(c, selectors.EVENT_READ, "client")

    def loop(self):
        turn = 0
        next_send = time.time()
        while not self.stop:
            with self.lock:
                events = self.sel.select(timeout=0.05)
            for key, _ in events:
                s = key.fileobj
                if key.data == "accept":
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.sel.register(c, selectors.EVENT_READ, "served")
                    continue
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    self.sel.unregister(s)
                    s.close()
                elif key.data == "served":
                    s.sendall(d)  # small and local: never blocks for long
                else:
                    self.echoed += len(d)
            if time.time() >= next_send and self.clients:
                next_send += 1.0
                for _ in range(min(100, len(self.clients))):
                    c = self.clients[turn % len(self.clients)]
                    turn += 1
                    try:
                        c.send(b"0123456789abcdef")
                    except OSError:
                        pass

    def close(self):
        self.stop = True
        for c in self.clients:
            c.close()
        self.server.close()


def measure(app_pid, secs):
    pids = tree(app_pid)
    a0, w0 = cpu_secs([app_pid]), cpu_secs([p for p in pids if p != app_pid])
    time.sleep(secs)
    pids = tree(app_pid)
    a1, w1 = cpu_secs([app_pid]), cpu_secs([p for p in pids if p != app_pid])
    return (a1 - a0) / secs * 100, (w1 - w0) / secs * 100


def by_id(d, tid):
    return d.find_element(By.CSS_SELECTOR, '[data-testid="%s"]' % tid)


def wait(what, fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    procs = []
    cfg = tempfile.mkdtemp(prefix="portway-conns-bench-")
    traffic = Traffic()
    port = free_port()
    os.makedirs(os.path.join(cfg, "profiles"))
    with open(os.path.join(cfg, "profiles", "bench.yaml"), "w") as f:
        f.write("services:\n- name: bench\n  addr: 127.0.0.1:%d\n  handler: {type: tcp}\n  listener: {type: tcp}\n"
                "  forwarder: {nodes: [{name: target-0, addr: \"%s\"}]}\n" % (port, traffic.addr))
    with open(os.path.join(cfg, "settings.json"), "w") as f:
        f.write('{"activeProfile": "bench"}')
    r, w = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"], pass_fds=[w])
    os.close(w)
    procs.append(xvfb)
    display = b""
    while not display.endswith(b"\n"):
        display += os.read(r, 16)
    os.close(r)
    env = dict(os.environ, DISPLAY=":" + display.decode().strip(), PORTWAY_CONFIG_DIR=cfg, WEBKIT_DISABLE_DMABUF_RENDERER="1")
    wd_port = free_port()
    driver_proc = subprocess.Popen(["tauri-driver", "--port", str(wd_port), "--native-port", str(free_port())], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(driver_proc)
    rows = []
    d = None
    try:
        wait("tauri-driver", lambda: socket.create_connection(("127.0.0.1", wd_port), timeout=1).close() or True)
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": APP})
        d = webdriver.Remote(command_executor="http://127.0.0.1:%d" % wd_port, options=opts)
        app = find_app(driver_proc.pid)
        wait("the rules view", lambda: by_id(d, "rule-row-bench"))
        threading.Thread(target=traffic.loop, daemon=True).start()
        traffic.open(port, CONNS)
        wait("1,000 connections on the rule", lambda: by_id(d, "rule-conns-bench").text.strip() == str(CONNS))
        time.sleep(3)
        rows.append(("Rules view (the baseline)",) + measure(app, SECS))

        by_id(d, "tab-connections").click()
        wait("1,000 connections listed", lambda: by_id(d, "conns-live-count").text.strip() == "1,000")
        wait("rows rendered", lambda: d.find_elements(By.CSS_SELECTOR, 'tr[data-testid^="conn-row-"]'))
        rendered = len(d.find_elements(By.CSS_SELECTOR, 'tr[data-testid^="conn-row-"]'))
        time.sleep(3)
        rows.append(("Connections view, 1,000 live (%d rows in the DOM)" % rendered,) + measure(app, SECS))

        by_id(d, "tab-traffic").click()
        d.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", by_id(d, "traffic-card-bench"))
        wait("the graphs", lambda: d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-card-bench"] canvas'))
        time.sleep(3)
        rows.append(("Traffic view (total + one rule card), 1,000 live",) + measure(app, SECS))
        processes = ", ".join(sorted(name_of(p) for p in tree(app)))
    finally:
        if d is not None:
            d.quit()
        traffic.close()
        for p in reversed(procs):
            stop(p)
    print("App: %s; %d connections, %.0f s per phase; processes: %s" % (APP, CONNS, SECS, processes))
    print()
    print("| phase | app process | WebKit processes | total (% of one core) | target |")
    print("|---|--:|--:|--:|---|")
    for name, a, w in rows:
        print("| %s | %.2f %% | %.2f %% | %.2f %% | ≤ 5 %% |" % (name, a, w, a + w))


if __name__ == "__main__":
    main()
