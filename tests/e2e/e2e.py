"""What the end-to-end tests share: Xvfb + tauri-driver sessions, real echo backends,
bounded waits, screenshots."""

import os
import signal
import socket
import subprocess
import threading
import time

import urllib3

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.file_detector import UselessFileDetector

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.environ.get("PORTWAY_APP", os.path.join(ROOT, "target", "debug", "portway-app"))
SHOTS = os.path.join(ROOT, "target", "e2e-screenshots")
T = 20  # seconds: every wait is bounded by this


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=T):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # element not there yet
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class EchoBackend:
    """Greets with its name, then echoes. Closed with the test."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        with c:
            try:
                c.sendall(self.name.encode() + b"\n")
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d)
            except ConnectionError:
                # A tunnel torn down under it (a hop killed, a connection closed
                # from the Connections view): what those tests do on purpose.
                return

    def close(self):
        self.stop = True
        self.sock.close()


def hello(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    name = b""
    while not name.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed before the greeting")
        name += d
    return name.decode().strip(), s


class Session:
    """Xvfb + tauri-driver for the whole module; one WebDriver session per app run."""

    def __init__(self, config_dir):
        self.config_dir = config_dir
        self.procs = []
        r, w = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"], pass_fds=[w])
        os.close(w)
        self.procs.append(xvfb)
        display = b""
        deadline = time.time() + T
        while not display.endswith(b"\n") and time.time() < deadline:
            display += os.read(r, 16)
        os.close(r)
        self.env = dict(os.environ, DISPLAY=":" + display.decode().strip(), PORTWAY_CONFIG_DIR=config_dir, WEBKIT_DISABLE_DMABUF_RENDERER="1")
        self.port = free_port()
        native = free_port()
        driver = subprocess.Popen(["tauri-driver", "--port", str(self.port), "--native-port", str(native)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(driver)
        wait_for("tauri-driver", lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() or True)
        # tauri-driver forwards a new session to WebKitWebDriver, which it starts
        # itself: a session asked for before that one listens is dropped unanswered.
        wait_for("WebKitWebDriver", lambda: socket.create_connection(("127.0.0.1", native), timeout=1).close() or True)
        self.driver = None

    def open(self, args=()):
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": APP, "args": list(args)})
        # A dropped new-session request (the drivers still settling) is retried, a
        # bounded number of times; any other failure is the test's.
        for attempt in range(3):
            try:
                self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % self.port, options=opts)
                break
            except (ConnectionError, urllib3.exceptions.ProtocolError):
                if attempt == 2:
                    raise
                time.sleep(1)
        # The app runs on this machine: give file inputs local paths (WebKitWebDriver
        # has no upload endpoint).
        self.driver.file_detector = UselessFileDetector()
        return self.driver

    def close_app(self):
        if self.driver is not None:
            self.driver.quit()
            self.driver = None

    def shutdown(self):
        self.close_app()
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def by_id(d, tid):
    return d.find_element(By.CSS_SELECTOR, '[data-testid="%s"]' % tid)


def text_of(d, tid):
    return by_id(d, tid).text


def shot(d, name):
    """A screenshot of the window. WebKitWebDriver takes it after the next rendering
    update, which a page that is not changing never has: a nearly transparent 1px
    corner is repainted a few times while the shot is taken."""
    d.execute_script(
        """
        const dot = document.createElement('div');
        dot.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none';
        document.body.appendChild(dot);
        let n = 0;
        const t = setInterval(() => {
          dot.style.background = n % 2 ? 'rgba(0,0,0,0.01)' : 'rgba(0,0,0,0.02)';
          if (++n > 40) { clearInterval(t); dot.remove(); }
        }, 50);
        """
    )
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))
