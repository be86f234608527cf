// The Settings view against a scripted backend (mockIPC): what it shows of the saved
// preferences, what each control sends, errors beside their control, the no-tray
// message; and the window following the tray (snapshot-changed) and telling it.
import { afterEach, describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import App from "../../App.svelte";
import type { DesktopSettings } from "../bindings/DesktopSettings";
import type { DesktopState } from "../bindings/DesktopState";
import { appError, backend, snapshot, type Handler } from "../../test/fixtures";

function settings(over: Partial<DesktopSettings> = {}): DesktopSettings {
  return {
    closeToTray: true,
    startMinimized: false,
    startAtLogin: false,
    theme: "system",
    statsIntervalMs: 500,
    logLevel: "info",
    notifications: true,
    ...over,
  };
}

function state(over: Partial<DesktopSettings> = {}, trayAvailable = true): DesktopState {
  return { settings: settings(over), trayAvailable, trayProblem: trayAvailable ? null : "no StatusNotifierWatcher on the session D-Bus" };
}

/** desktop_settings_set answers with what it was sent, unless a handler says otherwise. */
async function openSettings(handlers: Record<string, Handler> = {}, initial = state()) {
  let current = initial;
  const listeners: number[] = [];
  const b = backend({
    desktop_state: () => current,
    desktop_settings_set: (args) => {
      current = { ...current, settings: args.settings as DesktopSettings };
      return current;
    },
    "plugin:event|listen": (args) => {
      if (args.event === "snapshot-changed") listeners.push(args.handler as number);
      return listeners.length;
    },
    "plugin:event|emit": () => null,
    "plugin:event|unlisten": () => null,
    ...handlers,
  });
  render(App);
  await screen.findByTestId("rule-row-web");
  await fireEvent.click(screen.getByTestId("tab-settings"));
  await screen.findByTestId("settings-theme");
  return { b, listeners };
}

function input(id: string): HTMLInputElement {
  return screen.getByTestId(id) as HTMLInputElement;
}

afterEach(() => {
  document.documentElement.removeAttribute("data-theme");
});

describe("Settings view", () => {
  it("shows the saved preferences, every control labelled", async () => {
    await openSettings({}, state({ startAtLogin: true, theme: "dark", statsIntervalMs: 2500, logLevel: "debug", notifications: false }));
    expect(input("settings-close-to-tray").checked).toBe(true);
    expect(input("settings-start-minimized").checked).toBe(false);
    expect(input("settings-start-at-login").checked).toBe(true);
    expect(input("settings-notifications").checked).toBe(false);
    expect(input("settings-theme").value).toBe("dark");
    expect(input("settings-stats-interval").value).toBe("2.5");
    expect(input("settings-log-level").value).toBe("debug");
    for (const id of ["settings-close-to-tray", "settings-start-minimized", "settings-start-at-login", "settings-notifications", "settings-theme", "settings-stats-interval", "settings-log-level"]) {
      const el = input(id);
      expect(el.labels?.length ?? 0, `${id} has a label`).toBeGreaterThan(0);
    }
    expect(screen.queryByTestId("settings-no-tray")).toBeNull();
    // The saved theme applies to the window at start.
    expect(document.documentElement.getAttribute("data-theme")).toBe("dark");
  });

  it("a toggle sends the whole preferences with that one changed, and shows the answer", async () => {
    const { b } = await openSettings();
    await fireEvent.click(input("settings-close-to-tray"));
    await waitFor(() => expect(b.callsOf("desktop_settings_set")).toHaveLength(1));
    expect(b.callsOf("desktop_settings_set")[0].args).toEqual({ settings: settings({ closeToTray: false }) });
    await waitFor(() => expect(input("settings-close-to-tray").checked).toBe(false));
  });

  it("the theme applies to the window through data-theme; system removes it", async () => {
    const { b } = await openSettings();
    expect(document.documentElement.hasAttribute("data-theme")).toBe(false);
    await fireEvent.change(input("settings-theme"), { target: { value: "dark" } });
    await waitFor(() => expect(document.documentElement.getAttribute("data-theme")).toBe("dark"));
    expect(b.callsOf("desktop_settings_set")[0].args).toEqual({ settings: settings({ theme: "dark" }) });
    await fireEvent.change(input("settings-theme"), { target: { value: "system" } });
    await waitFor(() => expect(document.documentElement.hasAttribute("data-theme")).toBe(false));
  });

  it("the stats interval is sent in milliseconds and the log level as chosen", async () => {
    const { b } = await openSettings();
    await fireEvent.change(input("settings-stats-interval"), { target: { value: "0.25" } });
    await waitFor(() => expect(b.callsOf("desktop_settings_set")).toHaveLength(1));
    expect((b.callsOf("desktop_settings_set")[0].args.settings as DesktopSettings).statsIntervalMs).toBe(250);
    await fireEvent.change(input("settings-log-level"), { target: { value: "trace" } });
    await waitFor(() => expect(b.callsOf("desktop_settings_set")).toHaveLength(2));
    expect(b.callsOf("desktop_settings_set")[1].args).toEqual({ settings: settings({ statsIntervalMs: 250, logLevel: "trace" }) });
  });

  it("an error appears under the control that caused it, and the control keeps the saved value", async () => {
    await openSettings({
      desktop_settings_set: (args) => {
        const s = args.settings as DesktopSettings;
        if (s.statsIntervalMs > 10000) throw appError({ code: "invalid", field: "statsIntervalMs", message: "the stats interval must be between 250 ms and 10 s" });
        throw appError({ code: "storage", field: "startAtLogin", message: "cannot change the login entry: permission denied", retryable: true });
      },
    });
    await fireEvent.change(input("settings-stats-interval"), { target: { value: "20" } });
    const err = await screen.findByTestId("settings-error-statsIntervalMs");
    expect(err.textContent).toBe("the stats interval must be between 250 ms and 10 s");
    await fireEvent.click(input("settings-start-at-login"));
    const login = await screen.findByTestId("settings-error-startAtLogin");
    expect(login.textContent).toContain("permission denied");
    expect(input("settings-start-at-login").checked).toBe(false);
    expect(screen.queryByTestId("settings-error-theme")).toBeNull();
    expect(screen.queryByTestId("error-banner")).toBeNull();
  });

  it("a stats interval that is not a number is flagged without sending anything", async () => {
    const { b } = await openSettings();
    await fireEvent.change(input("settings-stats-interval"), { target: { value: "" } });
    expect((await screen.findByTestId("settings-error-statsIntervalMs")).textContent).toContain("0.25 to 10");
    expect(b.callsOf("desktop_settings_set")).toHaveLength(0);
  });

  it("without a system tray it says closing quits, and the tray settings are off", async () => {
    await openSettings({}, state({}, false));
    expect(screen.getByTestId("settings-no-tray").textContent).toContain("No system tray was found; closing the window quits Portway.");
    expect(screen.getByTestId("settings-tray-why").textContent).toBe("Why: no StatusNotifierWatcher on the session D-Bus.");
    expect(input("settings-close-to-tray").disabled).toBe(true);
    expect(input("settings-start-minimized").disabled).toBe(true);
    expect(input("settings-start-at-login").disabled).toBe(false);
  });

  it("shows why the settings could not be read", async () => {
    backend({ desktop_state: () => { throw appError({ code: "storage", message: "settings.json is corrupt" }); } });
    render(App);
    await screen.findByTestId("rule-row-web");
    await fireEvent.click(screen.getByTestId("tab-settings"));
    expect((await screen.findByTestId("settings-load-error")).textContent).toContain("settings.json is corrupt");
  });
});

describe("window and tray in step", () => {
  it("the window re-reads the snapshot when the tray changed something", async () => {
    const off = snapshot();
    off.rules[0] = { ...off.rules[0], enabled: false, state: "disabled" };
    let snap = snapshot();
    const { listeners } = await openSettings({ app_snapshot: () => snap });
    await fireEvent.click(screen.getByTestId("tab-rules"));
    expect(listeners).toHaveLength(1);
    snap = off;
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    internals.runCallback(listeners[0], { event: "snapshot-changed", id: 1, payload: null });
    await waitFor(() => expect(screen.getByTestId("rule-toggle-web").getAttribute("aria-checked")).toBe("false"));
  });

  it("a command of the window tells the app, so the tray follows", async () => {
    const { b } = await openSettings({ rule_set_enabled: () => snapshot() });
    await fireEvent.click(screen.getByTestId("tab-rules"));
    await fireEvent.click(screen.getByTestId("rule-toggle-web"));
    await waitFor(() => expect(b.callsOf("plugin:event|emit").map((c) => c.args.event)).toEqual(["window-changed"]));
  });
});
