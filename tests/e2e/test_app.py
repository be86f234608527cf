"""The real Portway app end to end: built binary, Xvfb, tauri-driver + WebKitWebDriver.

What a user does, checked by what a user sees: create a local TCP rule in the form,
send bytes through its port with a real client to a real backend, watch the
connection count and byte counters move, switch the rule off and see the port
close, import a GOST YAML and see its rule run, restart the app and find the
profile intact. A screenshot of each view is saved under target/e2e-screenshots/.
"""

import os
import socket


from e2e import EchoBackend, by_id, free_port, hello, shot, text_of, wait_for


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
