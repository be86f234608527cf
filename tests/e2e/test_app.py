"""The real Portway app end to end: built binary, Xvfb, tauri-driver + WebKitWebDriver.

What a user does, checked by what a user sees: create a local TCP rule in the form,
send bytes through its port with a real client to a real backend, watch the
connection count and byte counters move, switch the rule off and see the port
close, import a GOST YAML and see its rule run, restart the app and find the
profile intact. A screenshot of each view is saved under target/e2e-screenshots/.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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
            c.sendall(self.name.encode() + b"\n")
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)

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
        driver = subprocess.Popen(["tauri-driver", "--port", str(self.port)], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(driver)
        wait_for("tauri-driver", lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() or True)
        self.driver = None

    def open(self):
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": APP})
        self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % self.port, options=opts)
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


@pytest.fixture(scope="module")
def session():
    if not os.path.exists(APP):
        pytest.fail("build the app first: " + APP)
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS, exist_ok=True)
    d = tempfile.mkdtemp(prefix="portway-e2e-")
    s = Session(d)
    yield s
    s.shutdown()
    shutil.rmtree(d, ignore_errors=True)


def by_id(d, tid):
    return d.find_element(By.CSS_SELECTOR, '[data-testid="%s"]' % tid)


def text_of(d, tid):
    return by_id(d, tid).text


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def test_the_app_end_to_end(session):
    try:
        run_scenario(session)
    except Exception:
        # What the window showed when it went wrong, for the artifact folder.
        if session.driver is not None:
            shot(session.driver, "failure")
        raise


def run_scenario(session):
    backend = EchoBackend("backend-1")
    port = free_port()
    d = session.open()
    # The default profile's rule list renders.
    wait_for("the rules view", lambda: by_id(d, "new-rule"))
    shot(d, "01-rules-default")

    # Create a local TCP rule in the form.
    by_id(d, "new-rule").click()
    wait_for("the editor", lambda: by_id(d, "field-name"))
    name = by_id(d, "field-name")
    name.clear()
    name.send_keys("e2e-fwd")
    listen = by_id(d, "field-listen")
    listen.clear()
    listen.send_keys("127.0.0.1:%d" % port)
    target = by_id(d, "field-target-0")
    target.clear()
    target.send_keys(backend.addr)
    shot(d, "02-rule-editor")
    by_id(d, "save-rule").click()
    wait_for("the rule running", lambda: "running" in text_of(d, "rule-status-e2e-fwd").lower())

    # Bytes through the tunnel from a real client to the real backend.
    who, conn = hello(port)
    assert who == "backend-1"
    payload = os.urandom(100_000)
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += conn.recv(65536)
    assert got == payload
    # The Rules view shows the open connection and the bytes.
    wait_for("one connection shown", lambda: text_of(d, "rule-conns-e2e-fwd").strip().startswith("1"))
    wait_for("bytes shown", lambda: any(ch.isdigit() and ch != "0" for ch in text_of(d, "rule-bytes-e2e-fwd")))
    shot(d, "03-rules-live")
    conn.close()

    # Switch it off: the port closes.
    by_id(d, "rule-toggle-e2e-fwd").click()
    wait_for("the rule off", lambda: "off" in text_of(d, "rule-status-e2e-fwd").lower())

    def refused():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except OSError:
            return True

    wait_for("the port closed", refused)

    # Import a GOST YAML profile and see its rule run.
    port2 = free_port()
    yaml = (
        "services:\n"
        "- name: imported-fwd\n"
        "  addr: 127.0.0.1:%d\n"
        "  handler:\n    type: tcp\n"
        "  listener:\n    type: tcp\n"
        "  forwarder:\n    nodes:\n    - name: target-0\n      addr: %s\n" % (port2, backend.addr)
    )
    path = os.path.join(session.config_dir, "..", os.path.basename(session.config_dir) + "-gost.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    by_id(d, "import-open").click()
    # Choose the file, as a user would in the dialog (a chosen file is previewed at once).
    wait_for("the import dialog", lambda: by_id(d, "import-file")).send_keys(os.path.abspath(path))
    wait_for("the preview", lambda: by_id(d, "import-rule-imported-fwd"))
    shot(d, "04-import-preview")
    n = by_id(d, "import-name")
    n.clear()
    n.send_keys("from-gost")
    by_id(d, "import-confirm").click()
    wait_for("the imported rule running", lambda: "running" in text_of(d, "rule-status-imported-fwd").lower())
    assert hello(port2)[0] == "backend-1"
    shot(d, "05-imported-profile")

    # Restart the app: the profile is intact and runs again.
    session.close_app()
    d = session.open()
    wait_for("the imported rule after a restart", lambda: "running" in text_of(d, "rule-status-imported-fwd").lower())
    assert hello(port2)[0] == "backend-1"
    shot(d, "06-after-restart")
    profiles = os.listdir(os.path.join(session.config_dir, "profiles"))
    assert "from-gost.yaml" in profiles and "default.yaml" in profiles
    backend.close()
    os.remove(path)
