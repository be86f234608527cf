"""The Logs view end to end: a rule to a dead port, one connection through it, and
the engine's warning about it in the live tail, named by rule and target; the level
filter keeps it, another rule's filter hides it. Screenshot: logs-01-tail.png."""

import socket
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from e2e import by_id, free_port, shot, text_of, wait_for


def dead_addr():
    """A port where a listener was and is no more: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    addr = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    return addr


def connect_once(port):
    """Connects through the rule and waits for it to close (its target refused)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        c.recv(16)
    except OSError:
        pass
    c.close()


def lines(d):
    return d.find_elements(By.CSS_SELECTOR, '[data-testid="log-line"]')


def refusal(d, target):
    """The warning (or error) line of rule dead-end naming the target, if shown."""
    for el in lines(d):
        if el.get_attribute("data-rule") == "dead-end" and el.get_attribute("data-level") in ("warn", "error") and target in el.text:
            return el
    return None


def test_the_logs_view_shows_a_refused_target(session):
    try:
        run(session)
    except Exception:
        if session.driver is not None:
            shot(session.driver, "logs-failure")
        raise


def run(session):
    d = session.open()
    target = dead_addr()
    port = free_port()

    # A rule to the dead port, made in the Rules view.
    wait_for("the rules view", lambda: by_id(d, "new-rule")).click()
    wait_for("the editor", lambda: by_id(d, "field-name"))
    for tid, value in (("field-name", "dead-end"), ("field-listen", "127.0.0.1:%d" % port), ("field-target-0", target)):
        f = by_id(d, tid)
        f.clear()
        f.send_keys(value)
    by_id(d, "save-rule").click()
    wait_for("the rule running", lambda: "running" in text_of(d, "rule-status-dead-end").lower())
    connect_once(port)

    # The Logs view: the engine's warning, named by rule and target.
    started = time.time()
    by_id(d, "tab-logs").click()
    wait_for("the first lines", lambda: len(lines(d)) > 0)
    first_lines_s = time.time() - started
    line = wait_for("the refusal line", lambda: refusal(d, target))
    # What the row shows: the level, the rule in its column, the message and the target.
    assert "WARN" in line.text or "ERROR" in line.text, line.text
    assert "refused" in line.text and target in line.text, line.text
    assert line.find_element(By.CSS_SELECTOR, '[data-testid="log-rule"]').get_attribute("textContent") == "dead-end"
    shot(d, "logs-01-tail")

    # A later connection arrives live (the stream, not the initial batch).
    before = len(lines(d))
    connect_once(port)
    wait_for("a new line for the second connection", lambda: len(lines(d)) > before)

    # Level filters keep it; another rule's filter hides it.
    level = Select(by_id(d, "logs-level"))
    for value in ("warn", "error"):
        level.select_by_value(value)
        if value == "warn":
            wait_for("the refusal under 'warn'", lambda: refusal(d, target))
            assert all(el.get_attribute("data-level") in ("warn", "error") for el in lines(d))
        else:
            # The refusal is a warning: 'error' hides it (and keeps only errors).
            wait_for("only errors", lambda: all(el.get_attribute("data-level") == "error" for el in lines(d)))
            assert refusal(d, target) is None
    level.select_by_value("trace")
    wait_for("everything again", lambda: refusal(d, target))
    rule = Select(by_id(d, "logs-rule"))
    rule.select_by_value("web")
    wait_for("the refusal hidden by another rule's filter", lambda: refusal(d, target) is None)
    rule.select_by_value("dead-end")
    wait_for("the refusal under its own rule", lambda: refusal(d, target))

    # Text search.
    search = by_id(d, "logs-search")
    search.send_keys("no-such-text-anywhere")
    wait_for("nothing matches", lambda: by_id(d, "logs-empty"))
    search.send_keys(Keys.BACKSPACE * len("no-such-text-anywhere") + target)
    wait_for("the refusal found by its target", lambda: refusal(d, target))
    by_id(d, "logs-clear-filters").click()
    wait_for("all lines again", lambda: any(el.get_attribute("data-rule") != "dead-end" for el in lines(d)))

    # Pause: a new connection's line is counted, not shown; Resume shows it.
    shown = len(lines(d))
    by_id(d, "logs-pause").click()
    connect_once(port)
    wait_for("the new-lines count", lambda: "new line" in text_of(d, "logs-new") and not text_of(d, "logs-new").startswith("Paused · 0"))
    assert len(lines(d)) == shown
    by_id(d, "logs-pause").click()
    wait_for("the held lines shown", lambda: len(lines(d)) > shown)

    # Copy: the webview's clipboard takes the shown lines.
    by_id(d, "logs-copy").click()
    status = wait_for("the copy status", lambda: text_of(d, "logs-status"))
    print("copy status:", status, "| first lines after %.0f ms" % (first_lines_s * 1000))
    assert status.startswith("Copied"), status
    # The clipboard really holds them: paste into the search box.
    search = by_id(d, "logs-search")
    search.click()
    search.send_keys(Keys.CONTROL, "v")
    pasted = wait_for("the pasted text", lambda: search.get_attribute("value"))
    assert "[dead-end]" in pasted and target in pasted, pasted
