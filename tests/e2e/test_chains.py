"""The Chains view end to end: two real Portway socks5 hops (the `portway` CLI as
processes), a two-hop chain built in the view by clicking and typing, a rule that
uses it, bytes through both hops to a real echo backend; then one hop killed, its
node marked in the view after a connection attempt, and Test naming that hop.

Screenshots: chains-01-editor.png, chains-02-path-healthy.png, chains-03-probe-failed.png.
"""

import os
import signal
import socket
import subprocess
import tempfile

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from e2e import ROOT, EchoBackend, by_id, free_port, hello, shot, text_of, wait_for

CLI = os.environ.get(
    "PORTWAY_CLI",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "portway"),
)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Hop:
    """`portway -L socks5://127.0.0.1:PORT` as a process, stopped by its PID."""

    def __init__(self, config_dir):
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        env = dict(os.environ, PORTWAY_CONFIG_DIR=config_dir)
        self.proc = subprocess.Popen([CLI, "-L", "socks5://" + self.addr], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("hop %s listening" % self.addr, lambda: listening(self.port))

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def typed(d, tid, text):
    el = by_id(d, tid)
    el.clear()
    el.send_keys(text)
    return el


def choose(d, tid, value):
    """Picks an option with the keyboard: clicking a <select> (which WebDriver's
    send_keys does first) opens WebKitGTK's native popup, which holds the page."""
    el = by_id(d, tid)
    d.execute_script("arguments[0].focus()", el)
    for _ in range(len(Select(el).options)):
        if Select(el).first_selected_option.get_attribute("value") == value:
            return
        ActionChains(d).send_keys(Keys.ARROW_DOWN).perform()
    wait_for("%s = %s" % (tid, value), lambda: Select(by_id(d, tid)).first_selected_option.get_attribute("value") == value, timeout=5)


def test_chains_end_to_end(session):
    if not os.path.exists(CLI):
        raise AssertionError("build the CLI first (cargo build -p portway-cli): " + CLI)
    hop_dir = tempfile.mkdtemp(prefix="portway-e2e-hops-")
    hops = []
    backend = EchoBackend("backend-c")
    try:
        hops = [Hop(hop_dir), Hop(hop_dir)]
        run_scenario(session, hops, backend)
    except Exception:
        if session.driver is not None:
            shot(session.driver, "chains-failure")
        raise
    finally:
        for h in hops:
            h.kill()
        backend.close()
        session.close_app()


def run_scenario(session, hops, backend):
    h1, h2 = hops
    d = session.open()
    wait_for("the rules view", lambda: by_id(d, "new-rule"))

    # Build the two-hop chain in the Chains view.
    by_id(d, "tab-chains").click()
    wait_for("the chains view", lambda: by_id(d, "new-chain"))
    by_id(d, "new-chain").click()
    wait_for("the chain editor", lambda: by_id(d, "chain-editor"))
    typed(d, "chain-field-name", "e2e-chain")
    assert Select(by_id(d, "node-0-0-protocol")).first_selected_option.get_attribute("value") == "socks5"
    typed(d, "node-0-0-addr", h1.addr)
    by_id(d, "add-hop").click()
    wait_for("hop 2's node", lambda: by_id(d, "node-1-0-addr"))
    typed(d, "node-1-0-addr", "127.0.0.1")
    by_id(d, "save-chain").click()
    # The form names the field before anything is sent.
    wait_for("the address error", lambda: text_of(d, "error-hops.1.nodes.0.addr") == "address needs a port")
    typed(d, "node-1-0-addr", h2.addr)
    wait_for("the error gone", lambda: not d.find_elements("css selector", '[data-testid="error-hops.1.nodes.0.addr"]'))
    shot(d, "chains-01-editor")
    by_id(d, "save-chain").click()
    wait_for("the chain card", lambda: by_id(d, "chain-card-e2e-chain"))
    path = text_of(d, "chain-path-e2e-chain")
    assert h1.addr in path and h2.addr in path, path
    assert path.index(h1.addr) < path.index(h2.addr), path

    # Attach it to a new rule in the Rules view.
    port = free_port()
    by_id(d, "tab-rules").click()
    by_id(d, "new-rule").click()
    wait_for("the rule editor", lambda: by_id(d, "field-name"))
    typed(d, "field-name", "via-chain")
    typed(d, "field-listen", "127.0.0.1:%d" % port)
    typed(d, "field-target-0", backend.addr)
    choose(d, "field-chain", "e2e-chain")
    by_id(d, "save-rule").click()
    wait_for("the rule running", lambda: "running" in text_of(d, "rule-status-via-chain").lower())

    # Bytes through both hops to the echo backend.
    who, conn = hello(port)
    assert who == "backend-c"
    payload = os.urandom(64_000)
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(65536)
        assert chunk, "closed early"
        got += chunk
    assert got == payload
    conn.close()

    # The path is healthy, and Test shows each hop's time and the total.
    by_id(d, "tab-chains").click()
    wait_for("hop 2 healthy", lambda: text_of(d, "node-health-e2e-chain-1-0") == "ok")
    assert "via-chain" in text_of(d, "chain-users-e2e-chain")
    by_id(d, "probe-chain-e2e-chain").click()
    ok = wait_for("the probe passing", lambda: text_of(d, "probe-ok-e2e-chain"))
    assert backend.addr in ok and "2 hops" in ok, ok
    assert text_of(d, "path-hop-ms-e2e-chain-1").endswith("ms")
    shot(d, "chains-02-path-healthy")

    # Hop 2 dies: a connection attempt fails and its node is marked.
    h2.kill()
    wait_for("hop 2 gone", lambda: not listening(h2.port))
    try:
        _, c = hello(port)
        c.close()
        raise AssertionError("a connection passed through a dead hop")
    except (ConnectionError, OSError):
        pass
    wait_for(
        "hop 2 marked",
        lambda: by_id(d, "node-health-e2e-chain-1-0").get_attribute("data-health") in ("dead", "failing"),
    )
    mark = text_of(d, "node-health-e2e-chain-1-0")
    assert mark.startswith("dead until") or mark.startswith("failures"), mark
    assert text_of(d, "node-health-e2e-chain-0-0") == "ok", "hop 1 is fine"

    # Test names the hop that refuses.
    by_id(d, "probe-chain-e2e-chain").click()
    failed = wait_for("the probe failing", lambda: text_of(d, "probe-failed-e2e-chain"))
    assert failed.startswith("hop 2 (%s) refused: " % h2.addr), failed
    assert "broken" in by_id(d, "path-hop-e2e-chain-1").get_attribute("class")
    shot(d, "chains-03-probe-failed")

    # Deleting the chain while the rule uses it is refused, naming the rule.
    by_id(d, "delete-chain-e2e-chain").click()
    by_id(d, "confirm-delete-chain-e2e-chain").click()
    refused = wait_for("the refusal", lambda: text_of(d, "chain-error-e2e-chain"))
    assert '"via-chain"' in refused, refused
