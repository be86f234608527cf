"""The Connections and Traffic views end to end: the real app, a rule to a real echo
backend, real client sockets.

Three clients hold connections open through the rule; the Connections view lists
them; closing one from the view closes that client's socket while the other two
still echo; the closed one shows under "Recently closed" with its totals and why it
ended. With traffic flowing, the Traffic view draws its graphs.
"""

import json
import os
import socket
import threading
import time

from selenium.webdriver.common.by import By

from e2e import EchoBackend, by_id, free_port, hello, shot, wait_for


def test_connections_and_traffic(session):
    try:
        run_scenario(session)
    except Exception:
        if session.driver is not None:
            shot(session.driver, "conns-failure")
        raise


def write_profile(config_dir, port, target):
    os.makedirs(os.path.join(config_dir, "profiles"), exist_ok=True)
    with open(os.path.join(config_dir, "profiles", "conns.yaml"), "w") as f:
        f.write(
            "services:\n- name: echo-fwd\n  addr: 127.0.0.1:%d\n  handler: {type: tcp}\n  listener: {type: tcp}\n"
            "  forwarder: {nodes: [{name: target-0, addr: \"%s\"}]}\n" % (port, target)
        )
    with open(os.path.join(config_dir, "settings.json"), "w") as f:
        json.dump({"activeProfile": "conns"}, f)


def live_row(d, client):
    return d.find_element(By.CSS_SELECTOR, 'tr[data-testid^="conn-row-"][data-client="%s"]' % client)


def closed_row(d, client):
    return d.find_element(By.CSS_SELECTOR, 'tr[data-testid^="closed-row-"][data-client="%s"]' % client)


def cells_of(row):
    # textContent: WebKitWebDriver's visible-text rules are stricter than a reader's
    # eyes inside a scrolling table.
    return [c.get_attribute("textContent").strip() for c in row.find_elements(By.TAG_NAME, "td")]


def echoes(s, payload=b"ping"):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        d = s.recv(65536)
        if not d:
            return False
        got += d
    return got == payload


def closed_by_peer(s):
    """True when the socket reads EOF or an error; a timeout (still open) is False."""
    s.settimeout(5)
    try:
        return s.recv(16) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def run_scenario(session):
    backend = EchoBackend("backend-1")
    port = free_port()
    write_profile(session.config_dir, port, backend.addr)
    d = session.open()
    wait_for("the rule running", lambda: "running" in by_id(d, "rule-status-echo-fwd").text.lower())

    clients = []
    for _ in range(3):
        who, s = hello(port)
        assert who == "backend-1"
        assert echoes(s)
        clients.append(s)
    names = ["127.0.0.1:%d" % s.getsockname()[1] for s in clients]

    by_id(d, "tab-connections").click()
    for n in names:
        wait_for("the row of %s" % n, lambda n=n: live_row(d, n))
    wait_for("three live connections", lambda: by_id(d, "conns-live-count").text.strip() == "3")
    row = live_row(d, names[0])
    cells = cells_of(row)
    assert cells[0] == "echo-fwd" and cells[2] == backend.addr and cells[3] == "target-0", cells
    # What the client sent through the tunnel (4 bytes) shows as In.
    wait_for("bytes shown", lambda: cells_of(live_row(d, names[0]))[5] == "4 B")
    shot(d, "conns-01-live")

    # Close the middle one from the view: its socket closes, the others still echo.
    live_row(d, names[1]).find_element(By.CSS_SELECTOR, '[data-testid^="conn-close-"]').click()
    assert closed_by_peer(clients[1]), "the closed connection's client socket is still open"
    assert echoes(clients[0], b"still 0") and echoes(clients[2], b"still 2")
    wait_for("the row gone", lambda: len(d.find_elements(By.CSS_SELECTOR, 'tr[data-testid^="conn-row-"][data-client="%s"]' % names[1])) == 0)
    wait_for("two live connections", lambda: by_id(d, "conns-live-count").text.strip() == "2")
    gone = wait_for("the recently closed row", lambda: closed_row(d, names[1]))
    cells = cells_of(gone)
    assert cells[1] == "echo-fwd" and cells[3] == backend.addr, cells
    assert cells[6] == "4 B", cells  # what the client sent
    assert cells[8] == "closed by user", cells
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", by_id(d, "conns-closed"))
    shot(d, "conns-02-recently-closed")

    # Traffic flowing through the two open connections, then the graphs.
    stop = threading.Event()
    errors = []

    def pump():
        chunk = os.urandom(32 * 1024)
        try:
            while not stop.is_set():
                for s in (clients[0], clients[2]):
                    if not echoes(s, chunk):
                        errors.append("echo failed")
                        return
                time.sleep(0.05)
        except OSError as e:
            errors.append(str(e))

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        by_id(d, "tab-traffic").click()
        wait_for("traffic in the total", lambda: float(by_id(d, "traffic-total-in").get_attribute("data-rate")) > 10_000)
        wait_for("a few samples drawn", lambda: int(by_id(d, "traffic-chart-total").get_attribute("data-samples")) >= 5)
        # uPlot drew on its canvases (one per graph).
        assert len(d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-chart-total"] canvas')) == 1
        # The rule's small graph in its card (created when the card scrolls into sight).
        d.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", by_id(d, "traffic-card-echo-fwd"))
        wait_for("the rule's card graph", lambda: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-card-echo-fwd"] canvas')) == 1)
        assert by_id(d, "traffic-card-status-echo-fwd").get_attribute("textContent").strip() == "running"
        assert "KiB/s" in by_id(d, "traffic-card-rates-echo-fwd").text or "MiB/s" in by_id(d, "traffic-card-rates-echo-fwd").text
        assert "KiB/s" in by_id(d, "traffic-total-in").text or "MiB/s" in by_id(d, "traffic-total-in").text
        time.sleep(3)  # a few more seconds of curve for the screenshot
        shot(d, "traffic-01-graphs")
        # The card opens the rule's graph large in the total's place; Back returns.
        by_id(d, "traffic-card-echo-fwd").click()
        wait_for("the large rule graph", lambda: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-chart-rule"] canvas')) == 1)
        assert not d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-chart-total"]')
        shot(d, "traffic-02-rule-large")
        by_id(d, "traffic-back").click()
        wait_for("the total graph back", lambda: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="traffic-chart-total"] canvas')) == 1)
    finally:
        stop.set()
        t.join(timeout=10)
    assert not errors, errors

    for s in clients:
        s.close()
    backend.close()
    session.close_app()
