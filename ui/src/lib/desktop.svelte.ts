// The desktop preferences as the window knows them: loaded at start (the theme
// applies before anyone opens Settings), changed one setting at a time, each
// change sent at once; an error stays beside the setting it concerns.

import { getContext, setContext } from "svelte";
import * as api from "./api";
import type { AppError, DesktopSettings, DesktopState } from "./api";
import type { Theme } from "./bindings/Theme";

export type SettingKey = keyof DesktopSettings;

/** `system` follows prefers-color-scheme (no attribute); the others fix the colours. */
export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): void {
  if (theme === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", theme);
}

export class DesktopStore {
  state: DesktopState | null = $state.raw(null);
  loadError: AppError | null = $state.raw(null);
  /** The last failed change of each setting, shown beside its control. */
  errors: Partial<Record<SettingKey, AppError>> = $state.raw({});
  /** The setting whose change is in flight. */
  busy: SettingKey | null = $state(null);

  async load(): Promise<void> {
    try {
      this.state = await api.desktopState();
      this.loadError = null;
      applyTheme(this.state.settings.theme);
    } catch (e) {
      this.loadError = api.toAppError(e);
    }
  }

  /** Sends the preferences with `key` changed; the answer is what is shown. */
  async set<K extends SettingKey>(key: K, value: DesktopSettings[K]): Promise<AppError | null> {
    if (!this.state) return null;
    const next: DesktopSettings = { ...this.state.settings, [key]: value };
    this.busy = key;
    try {
      this.state = await api.desktopSettingsSet(next);
      applyTheme(this.state.settings.theme);
      this.setError(key, null);
      return null;
    } catch (e) {
      const err = api.toAppError(e);
      // One setting changes at a time: the error is that setting's unless it names another.
      const at = err.field && err.field in next ? (err.field as SettingKey) : key;
      this.setError(at, err);
      return err;
    } finally {
      this.busy = null;
    }
  }

  /** An error found before anything was sent (e.g. a value that is not a number). */
  setError(key: SettingKey, err: AppError | null): void {
    const next = { ...this.errors };
    if (err) next[key] = err;
    else delete next[key];
    this.errors = next;
  }
}

const DESKTOP = Symbol("portway-desktop");

export function provideDesktop(store: DesktopStore): void {
  setContext(DESKTOP, store);
}

/** The window's store; a view rendered on its own (tests) gets a fresh one. */
export function useDesktop(): DesktopStore {
  return getContext<DesktopStore | undefined>(DESKTOP) ?? new DesktopStore();
}
