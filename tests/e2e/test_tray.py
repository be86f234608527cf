"""The tray in a real desktop panel: xfce4-panel (whose systray plugin is a
StatusNotifier host, as KDE's and GNOME's AppIndicator extension are) on the test's
own session D-Bus and Xvfb. The app starts before the panel and must pick the tray
up when the panel appears; the panel's D-Bus menu (what the panel shows when the
icon is clicked) switches a rule off and on; the panel going away is said in
Settings, and under a window manager closing the window hides it in the tray.
Screenshots: tray-01-panel.png (the whole screen: panel and window),
tray-02-menu.png (the menu open in the panel, when xdotool is present)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from e2e import APP, SHOTS, T, EchoBackend, Session, by_id, free_port, hello, shot, text_of, wait_for

PANEL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="28"/>
      <property name="plugin-ids" type="array"><value type="int" value="1"/><value type="int" value="2"/></property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="separator">
      <property name="expand" type="bool" value="true"/>
      <property name="style" type="uint" value="0"/>
    </property>
    <property name="plugin-2" type="string" value="systray"/>
  </property>
</channel>
"""


def start_bus(env):
    """A private session bus; xfconfd (the panel's settings) is started by it, so it
    gets the test's XDG_CONFIG_HOME from this environment."""
    out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"], env=env, capture_output=True, text=True, timeout=10, check=True)
    addr, pid = out.stdout.split("\n")[:2]
    return addr.strip(), int(pid)


@pytest.fixture(scope="module")
def desk():
    if not shutil.which("xfce4-panel") or not shutil.which("gdbus"):
        pytest.fail("xfce4-panel and gdbus are needed (scripts/debian-packages.txt)")
    root = tempfile.mkdtemp(prefix="portway-tray-")
    xdg = os.path.join(root, "xdg")
    os.makedirs(os.path.join(xdg, "xfce4", "xfconf", "xfce-perchannel-xml"))
    with open(os.path.join(xdg, "xfce4", "xfconf", "xfce-perchannel-xml", "xfce4-panel.xml"), "w") as f:
        f.write(PANEL_XML)
    home = os.path.join(root, "home")
    os.makedirs(home)
    bus_env = dict(os.environ, XDG_CONFIG_HOME=xdg, HOME=home)
    addr, bus_pid = start_bus(bus_env)
    saved = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = addr
    config_dir = os.path.join(root, "portway")
    os.makedirs(config_dir)
    try:
        s = Session(config_dir)
    finally:
        if saved is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = saved
    s.panel_env = dict(s.env, DBUS_SESSION_BUS_ADDRESS=addr, XDG_CONFIG_HOME=xdg, HOME=home)
    s.panel = None
    s.wm = None
    yield s
    stop_panel(s)
    if s.wm is not None:
        stop_group(s.wm)
    s.shutdown()
    os.kill(bus_pid, signal.SIGTERM)
    shutil.rmtree(root, ignore_errors=True)


def start_in_group(s, argv):
    # Its own process group (whose id is its PID), stopped as one: the panel runs
    # each plugin in a child process.
    return subprocess.Popen(argv, env=s.panel_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_group(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def start_panel(s):
    s.panel = start_in_group(s, ["xfce4-panel", "--disable-wm-check"])
    # These tests are about what Portway does with a tray, so the panel's watcher
    # must answer before Portway starts looking for it. (One CI run, under load,
    # timed out waiting for Portway's item when Portway started first.)
    wait_for("the panel's StatusNotifierWatcher", lambda: registered_watcher(s))


def registered_watcher(s):
    """True once the watcher answers; raises (so `wait_for` retries) before."""
    watcher_items(s)
    return True


def watcher_items(s):
    """The watcher's RegisteredStatusNotifierItems as gdbus prints it; raises when
    no watcher answers."""
    return gdbus(s, "org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get", "org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems")


def stop_panel(s):
    if s.panel is not None:
        stop_group(s.panel)
        s.panel = None


def gdbus(s, dest, path, method, *args):
    out = subprocess.run(["gdbus", "call", "--session", "--dest", dest, "--object-path", path, "--method", method, "--", *args], env=s.panel_env, capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout


def registered_items(s):
    try:
        out = watcher_items(s)
    except RuntimeError:
        return []
    return re.findall(r"'([^']+)'", out)


def portway_item(s):
    """(bus name, object path) of Portway's StatusNotifierItem, once the panel's host
    has registered it."""
    for item in registered_items(s):
        if "portway" in item:
            bus, _, path = item.partition("/")
            return bus, "/" + path
    return None


def menu(s, item):
    """The menu the panel would show: [(id, label, checked or None, enabled)]."""
    bus, path = item
    out = gdbus(s, bus, path, "org.freedesktop.DBus.Properties.Get", "org.kde.StatusNotifierItem", "Menu")
    menu_path = re.search(r"objectpath '([^']+)'", out).group(1)
    layout = gdbus(s, bus, menu_path, "com.canonical.dbusmenu.GetLayout", "0", "-1", "[]")
    entries = []
    for m in re.finditer(r"\((\d+), \{([^{}]*)\}", layout):
        props = m.group(2)
        label = re.search(r"'label': <'([^']*)'>", props)
        if not label:
            continue
        state = re.search(r"'toggle-state': <(-?\d+)>", props)
        enabled = "'enabled': <false>" not in props
        entries.append((int(m.group(1)), label.group(1), None if state is None else state.group(1) == "1", enabled))
    return bus, menu_path, entries


def click(s, item, label):
    """What the panel does when the user picks `label` in the tray menu."""
    bus, menu_path, entries = menu(s, item)
    ids = [e[0] for e in entries if e[1] == label]
    assert ids, "no %r in the tray menu: %r" % (label, entries)
    gdbus(s, bus, menu_path, "com.canonical.dbusmenu.Event", str(ids[0]), "clicked", "<0>", "0")


def checked(s, item, label):
    return [e[2] for e in menu(s, item)[2] if e[1] == label]


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def screen(s, name):
    """The whole X screen (the panel is not part of the window's screenshot)."""
    subprocess.run(["import", "-display", s.env["DISPLAY"], "-window", "root", os.path.join(SHOTS, name + ".png")], timeout=20, check=True)


def write_profile(config_dir, port, target):
    os.makedirs(os.path.join(config_dir, "profiles"), exist_ok=True)
    with open(os.path.join(config_dir, "profiles", "tray.yaml"), "w") as f:
        f.write(
            "services:\n- name: tray-rule\n  addr: 127.0.0.1:%d\n  handler: {type: tcp}\n  listener: {type: tcp}\n"
            "  forwarder: {nodes: [{name: target-0, addr: \"%s\"}]}\n" % (port, target)
        )
    with open(os.path.join(config_dir, "settings.json"), "w") as f:
        json.dump({"activeProfile": "tray"}, f)


def start_minimised(config_dir):
    """Settings of a user who starts Portway minimised into the tray."""
    with open(os.path.join(config_dir, "settings.json"), "w") as f:
        json.dump({"activeProfile": "tray", "desktop": {"startMinimized": True, "closeToTray": True}}, f)


def visibility(d):
    return d.execute_script("return document.visibilityState")


def test_the_tray_in_a_real_panel(desk):
    try:
        run(desk)
    except Exception:
        if desk.driver is not None:
            shot(desk.driver, "tray-failure")
        raise


def run(s):
    backend = EchoBackend("tray-backend")
    port = free_port()
    write_profile(s.config_dir, port, backend.addr)
    d = s.open()
    wait_for("the rule running", lambda: text_of(d, "rule-status-tray-rule") == "running")
    by_id(d, "tab-settings").click()
    # No panel yet: the window says so, and why.
    wait_for("the no-tray note", lambda: by_id(d, "settings-no-tray"))
    assert "no StatusNotifierWatcher" in text_of(d, "settings-tray-why")
    assert not by_id(d, "settings-close-to-tray").is_enabled()

    # The panel starts after the app: the tray appears in it, and Settings follows.
    start_panel(s)
    item = wait_for("Portway's item registered with the panel", lambda: portway_item(s))
    wait_for("Settings to see the tray", lambda: not d.find_elements("css selector", '[data-testid="settings-no-tray"]'))
    assert by_id(d, "settings-close-to-tray").is_enabled()
    labels = [e[1] for e in menu(s, item)[2]]
    for want in ("tray-rule", "Profile", "tray", "Stop all", "Open Portway", "Quit"):
        assert want in labels, "%r not in the tray menu %r" % (want, labels)
    assert checked(s, item, "tray-rule") == [True]
    assert hello(port)[0] == "tray-backend"
    screen(s, "tray-01-panel")
    if shutil.which("xdotool"):
        open_menu_in_panel(s)

    # The panel's menu switches the rule off: its port closes, the window and the
    # menu's check mark follow.
    by_id(d, "tab-rules").click()
    click(s, item, "tray-rule")
    wait_for("the port closed", lambda: refused(port))
    wait_for("the window to show it off", lambda: text_of(d, "rule-status-tray-rule") == "switched off")
    wait_for("the check mark cleared", lambda: checked(s, item, "tray-rule") == [False])
    click(s, item, "tray-rule")
    wait_for("the port open again", lambda: not refused(port))
    assert hello(port)[0] == "tray-backend"
    wait_for("the check mark back", lambda: checked(s, item, "tray-rule") == [True])

    # The panel goes away: Settings says so (closing the window would quit now).
    stop_panel(s)
    by_id(d, "tab-settings").click()
    wait_for("the tray gone", lambda: "went away" in text_of(d, "settings-tray-why"))
    assert not by_id(d, "settings-close-to-tray").is_enabled()
    backend.close()


def open_menu_in_panel(s):
    """Clicks the icon where the panel drew it (the panel's right end, which holds
    only the tray) for a screenshot of the real menu, then closes it."""
    env = dict(s.env)
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "Xfce4-panel"], env=env, capture_output=True, text=True, timeout=10)
    best = None
    for wid in out.stdout.split():
        g = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid], env=env, capture_output=True, text=True, timeout=10).stdout
        geo = dict(line.split("=", 1) for line in g.split() if "=" in line)
        w, h = int(geo.get("WIDTH", 0)), int(geo.get("HEIGHT", 0))
        if w > 200 and h < 60:
            best = geo
    if best is None:
        return
    x = int(best["X"]) + int(best["WIDTH"]) - int(best["HEIGHT"]) // 2
    y = int(best["Y"]) + int(best["HEIGHT"]) // 2
    before = visible_windows(env)
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"], env=env, timeout=10)
    # The menu is a new window on the screen.
    if wait_quietly(lambda: visible_windows(env) - before):
        screen(s, "tray-02-menu")
    subprocess.run(["xdotool", "key", "Escape"], env=env, timeout=10)


def visible_windows(env):
    out = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", ""], env=env, capture_output=True, text=True, timeout=10)
    return set(out.stdout.split())


def wait_quietly(fn, timeout=5):
    """Like wait_for, for what only a screenshot depends on: False when it never came."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def test_a_window_hidden_in_the_tray_comes_back_when_the_panel_goes(desk):
    s = desk
    s.close_app()
    backend = EchoBackend("tray-backend")
    write_profile(s.config_dir, free_port(), backend.addr)
    start_minimised(s.config_dir)
    start_panel(s)
    d = s.open()
    wait_for("the item registered", lambda: portway_item(s))
    # Started minimised into the tray: the page is not shown.
    wait_for("the window hidden", lambda: visibility(d) == "hidden")
    # The panel goes: nothing else could bring the window back, so it comes back.
    stop_panel(s)
    wait_for("the window shown again", lambda: visibility(d) == "visible")
    backend.close()


def test_a_second_launch_with_show_brings_a_minimised_window_forward(desk):
    """`portway-app --show` is the way back to a window in a tray the user cannot
    reach: the running Portway shows its window and the second launch exits."""
    s = desk
    s.close_app()
    # --help and --version print and exit without a display or a window.
    no_display = {k: v for k, v in s.env.items() if k != "DISPLAY"}
    out = subprocess.run([APP, "--version"], env=no_display, capture_output=True, text=True, timeout=T)
    assert (out.returncode, out.stdout.startswith("portway-app ")) == (0, True), out
    out = subprocess.run([APP, "--help"], env=no_display, capture_output=True, text=True, timeout=T)
    assert out.returncode == 0 and "--show" in out.stdout, out
    backend = EchoBackend("tray-backend")
    write_profile(s.config_dir, free_port(), backend.addr)
    start_minimised(s.config_dir)
    start_panel(s)
    d = s.open()
    wait_for("the item registered", lambda: portway_item(s))
    wait_for("the window hidden", lambda: visibility(d) == "hidden")
    second = subprocess.run([APP, "--show"], env=s.env, capture_output=True, text=True, timeout=T)
    assert second.returncode == 0, second
    # It handed over before starting anything: no rule of its own (the port is the
    # first Portway's), no window.
    assert "listening on" not in second.stderr and "in use" not in second.stderr, second.stderr
    wait_for("the window shown by the second launch", lambda: visibility(d) == "visible")
    assert text_of(d, "rule-status-tray-rule") == "running", "the first Portway kept running"
    # Started with --show, the window shows despite "Start minimised".
    s.close_app()
    d = s.open(["--show"])
    wait_for("the item registered", lambda: portway_item(s))
    wait_for("the rule running", lambda: text_of(d, "rule-status-tray-rule") == "running")
    assert visibility(d) == "visible"
    stop_panel(s)
    backend.close()


def test_closing_the_window_under_a_window_manager_keeps_portway_in_the_tray(desk):
    """A desktop session's pieces: a window manager (xfwm4) and the panel. Closing
    the window the way a user does (Alt+F4, which the window manager turns into a
    close request) hides it; the rule keeps serving; the tray's Open brings it back."""
    s = desk
    s.close_app()
    if not shutil.which("xfwm4"):
        pytest.fail("xfwm4 is needed (scripts/debian-packages.txt)")
    backend = EchoBackend("tray-backend")
    port = free_port()
    write_profile(s.config_dir, port, backend.addr)
    start_panel(s)
    s.wm = start_in_group(s, ["xfwm4", "--compositor=off"])
    d = s.open()
    item = wait_for("the item registered", lambda: portway_item(s))
    wait_for("the rule running", lambda: text_of(d, "rule-status-tray-rule") == "running")
    wait_for("the window shown", lambda: visibility(d) == "visible")
    env = s.env
    win = wait_for("the window known to X", lambda: subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^Portway$"], env=env, capture_output=True, text=True, timeout=10).stdout.split())
    subprocess.run(["xdotool", "windowactivate", "--sync", win[0]], env=env, timeout=10)
    subprocess.run(["xdotool", "key", "--clearmodifiers", "alt+F4"], env=env, timeout=10)
    wait_for("the window hidden in the tray", lambda: visibility(d) == "hidden")
    assert hello(port)[0] == "tray-backend", "the engine keeps running while the window is hidden"
    screen(s, "tray-03-closed-to-tray")
    click(s, item, "Open Portway")
    wait_for("the window back", lambda: visibility(d) == "visible")
    assert text_of(d, "rule-status-tray-rule") == "running"
    backend.close()
