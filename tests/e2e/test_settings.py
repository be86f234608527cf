"""Settings end to end: the real app under Xvfb (where no system tray exists), a
theme and a stats interval chosen in the window, kept across a restart with the
same config folder."""

import json
import os

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from e2e import by_id, shot, text_of, wait_for

DARK_BG = "rgb(21, 24, 28)"  # --bg of the dark theme (app.css)


def theme_of(d):
    return d.execute_script("return document.documentElement.getAttribute('data-theme')")


def page_bg(d):
    return d.execute_script("return getComputedStyle(document.documentElement).backgroundColor")


def saved(session):
    with open(os.path.join(session.config_dir, "settings.json")) as f:
        return json.load(f).get("desktop", {})


def enter_interval(d, text):
    field = by_id(d, "settings-stats-interval")
    # WebDriver's clear() fires a change of its own with the field empty, which the
    # window answers with "Enter a number of seconds"; the value typed next replaces
    # that error once the app has answered, a moment after it saved the file.
    field.clear()
    # change fires when the field loses focus (Tab: clicking a select would open
    # its popup, which holds the WebDriver)
    field.send_keys(text + Keys.TAB)


def interval_error(d):
    """The interval's error text, or None."""
    found = d.find_elements("css selector", '[data-testid="settings-error-statsIntervalMs"]')
    return found[0].text if found else None


def open_settings(d):
    wait_for("the tabs", lambda: by_id(d, "tab-settings"))
    by_id(d, "tab-settings").click()
    return wait_for("the settings", lambda: by_id(d, "settings-theme"))


def test_theme_and_stats_interval_survive_a_restart(session):
    d = session.open()
    open_settings(d)
    # Xvfb has no StatusNotifier host: the window must say closing quits.
    assert text_of(d, "settings-no-tray").startswith("No system tray was found; closing the window quits Portway.")
    assert not by_id(d, "settings-close-to-tray").is_enabled()

    Select(by_id(d, "settings-theme")).select_by_value("dark")
    wait_for("the dark theme", lambda: theme_of(d) == "dark")
    wait_for("dark colours", lambda: page_bg(d) == DARK_BG)

    enter_interval(d, "2.5")
    wait_for("the interval saved", lambda: saved(session).get("statsIntervalMs") == 2500)
    assert saved(session).get("theme") == "dark"
    wait_for("no settings error", lambda: not d.find_elements("css selector", '[data-testid^="settings-error-"]'))

    # Out of range: refused beside the field, nothing saved.
    enter_interval(d, "60")

    def range_error():
        text = interval_error(d) or ""
        return "between 250 ms and 10 s" in text

    wait_for("the range error beside the field", range_error)
    assert saved(session).get("statsIntervalMs") == 2500
    enter_interval(d, "2.5")
    wait_for("the error cleared", lambda: not d.find_elements("css selector", '[data-testid="settings-error-statsIntervalMs"]'))
    shot(d, "settings-01")
    session.close_app()

    d = session.open()
    # The theme applies at start, before Settings is opened.
    wait_for("the rules", lambda: by_id(d, "tab-rules"))
    wait_for("the dark theme at start", lambda: theme_of(d) == "dark" and page_bg(d) == DARK_BG)
    open_settings(d)
    assert Select(by_id(d, "settings-theme")).first_selected_option.get_attribute("value") == "dark"
    wait_for("the kept interval", lambda: by_id(d, "settings-stats-interval").get_attribute("value") == "2.5")
    assert text_of(d, "settings-no-tray").startswith("No system tray was found")

    # Back to the system theme: the attribute goes.
    Select(by_id(d, "settings-theme")).select_by_value("system")
    wait_for("the system theme", lambda: theme_of(d) is None)
    wait_for("saved", lambda: saved(session).get("theme") == "system")
    session.close_app()
