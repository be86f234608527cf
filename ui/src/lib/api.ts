// The one typed IPC layer: every `invoke` of the window lives here, typed with the
// bindings ts-rs generates from crates/ipc (never hand-written). Every command rejects
// with an AppError; anything else that reaches us (a bare string from a command that is
// missing, a TypeError outside Tauri) is normalised to one, so callers handle one shape.
// The dialog plugin's save() is an invoke too (plugin:dialog|save): it is wrapped here.

import { Channel, invoke, type InvokeArgs } from "@tauri-apps/api/core";
import { emit, listen, type UnlistenFn } from "@tauri-apps/api/event";
import { save } from "@tauri-apps/plugin-dialog";
import type { AppError } from "./bindings/AppError";
import type { AppSnapshot } from "./bindings/AppSnapshot";
import type { DesktopSettings } from "./bindings/DesktopSettings";
import type { DesktopState } from "./bindings/DesktopState";
import type { ClosedConn } from "./bindings/ClosedConn";
import type { ConnRow } from "./bindings/ConnRow";
import type { ConnsFrame } from "./bindings/ConnsFrame";
import type { ChainDraft } from "./bindings/ChainDraft";
import type { ChainView } from "./bindings/ChainView";
import type { ProbeView } from "./bindings/ProbeView";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { ImportPreview } from "./bindings/ImportPreview";
import type { LogBatch } from "./bindings/LogBatch";
import type { ProfileExport } from "./bindings/ProfileExport";
import type { RuleDraft } from "./bindings/RuleDraft";
import type { RulePreview } from "./bindings/RulePreview";
import type { StatsFrame } from "./bindings/StatsFrame";

export type { DesktopSettings, DesktopState };
export type { AppError, AppSnapshot, ClosedConn, ConnRow, ConnsFrame, ErrorCode, ImportPreview, LogBatch, ProfileExport, RuleDraft, RulePreview, StatsFrame };
export type { ChainDraft, ChainView, ProbeView };

// Keyed by ErrorCode so the compiler flags a code added on the Rust side.
const CODES: Record<ErrorCode, true> = {
  invalid: true,
  parse: true,
  notFound: true,
  alreadyExists: true,
  storage: true,
  engine: true,
};

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && Object.prototype.hasOwnProperty.call(CODES, v);
}

/** True for a well-formed AppError as the Rust side serialises it. */
export function isAppError(v: unknown): v is AppError {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    isErrorCode(o.code) &&
    typeof o.message === "string" &&
    (o.rule === null || typeof o.rule === "string") &&
    (o.field === null || typeof o.field === "string") &&
    typeof o.retryable === "boolean"
  );
}

function optString(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

/**
 * Turns whatever a rejected invoke gave us into an AppError. There is no "internal"
 * code in the contract, so failures that are not the engine's own answers (IPC
 * unavailable, a command missing) are reported as `engine` with their text.
 */
export function toAppError(e: unknown): AppError {
  if (isAppError(e)) return { ...e };
  if (typeof e === "string") {
    // A command that returned its error pre-serialised.
    const t = e.trim();
    if (t.startsWith("{")) {
      try {
        const parsed: unknown = JSON.parse(t);
        if (typeof parsed === "object" && parsed !== null) return toAppError(parsed);
      } catch {
        /* not JSON: use the text as it is */
      }
    }
    return { code: "engine", message: e || "Unknown error", rule: null, field: null, retryable: false };
  }
  if (e instanceof Error) {
    return { code: "engine", message: e.message || e.name, rule: null, field: null, retryable: false };
  }
  if (typeof e === "object" && e !== null) {
    // Partly formed (e.g. a newer backend with a code we do not know): keep what we can.
    const o = e as Record<string, unknown>;
    const message =
      typeof o.message === "string" && o.message !== "" ? o.message : safeJson(e);
    return {
      code: isErrorCode(o.code) ? o.code : "engine",
      message,
      rule: optString(o.rule),
      field: optString(o.field),
      retryable: o.retryable === true,
    };
  }
  return { code: "engine", message: e === undefined ? "Unknown error" : String(e), rule: null, field: null, retryable: false };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** The one place that calls invoke. */
async function call<T>(cmd: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toAppError(e);
  }
}

export function appSnapshot(): Promise<AppSnapshot> {
  return call<AppSnapshot>("app_snapshot");
}

/** `original`: the rule's name before this edit; null for a new rule. */
export function ruleSave(draft: RuleDraft, original: string | null): Promise<AppSnapshot> {
  return call<AppSnapshot>("rule_save", { draft, original });
}

export function ruleDelete(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("rule_delete", { name });
}

export function ruleSetEnabled(name: string, enabled: boolean): Promise<AppSnapshot> {
  return call<AppSnapshot>("rule_set_enabled", { name, enabled });
}

export function rulePreview(draft: RuleDraft): Promise<RulePreview> {
  return call<RulePreview>("rule_preview", { draft });
}

export function profileSwitch(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_switch", { name });
}

/** Creates an empty profile and makes it active. */
export function profileCreate(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_create", { name });
}

/** `text`: pasted or read GOST YAML/JSON, or a `gost -L … -F …` command line. */
export function profileImportPreview(text: string, fileName: string | null): Promise<ImportPreview> {
  return call<ImportPreview>("profile_import_preview", { text, fileName });
}

/** Writes the import as profile `name` and switches to it. */
export function profileImport(text: string, fileName: string | null, name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_import", { text, fileName, name });
}

/** Copies profile `name`'s file as `newName`; the active profile does not change. */
export function profileDuplicate(name: string, newName: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_duplicate", { name, newName });
}

/** Renames a profile; the active one stays active under its new name. */
export function profileRename(name: string, newName: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_rename", { name, newName });
}

/** Deletes a profile's file. The engine refuses (`invalid`) for the active profile. */
export function profileDelete(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("profile_delete", { name });
}

/** The profile as GOST reads it: its YAML, and a command line when GOST's can say it. */
export function profileExport(name: string): Promise<ProfileExport> {
  return call<ProfileExport>("profile_export", { name });
}

/** Writes the profile's GOST YAML to `path` (atomically). */
export function profileExportTo(name: string, path: string): Promise<void> {
  return call<void>("profile_export_to", { name, path });
}

/** The system's save dialog for exporting profile `name`; null when cancelled. */
export async function chooseExportPath(name: string): Promise<string | null> {
  try {
    return await save({
      title: `Export profile “${name}”`,
      defaultPath: `${name}.yaml`,
      filters: [{ name: "GOST YAML", extensions: ["yaml", "yml"] }],
    });
  } catch (e) {
    throw toAppError(e);
  }
}

/**
 * Subscribes to the engine's stats: one frame per second arrives on `onFrame`.
 * The returned channel must stay referenced for as long as frames are wanted.
 */
export async function statsSubscribe(onFrame: (frame: StatsFrame) => void): Promise<Channel<StatsFrame>> {
  const channel = new Channel<StatsFrame>(onFrame);
  await call<void>("stats_subscribe", { onFrame: channel });
  return channel;
}

// --- Desktop: settings, and keeping the window and the tray in step -------------

/** The saved preferences and whether this desktop has a system tray. */
export function desktopState(): Promise<DesktopState> {
  return call<DesktopState>("desktop_state");
}

/** Saves and applies the preferences; an error's `field` names the setting at fault. */
export function desktopSettingsSet(settings: DesktopSettings): Promise<DesktopState> {
  return call<DesktopState>("desktop_settings_set", { settings });
}

/** Calls `onChange` when the state changed outside the window (the tray, the engine). */
export async function onSnapshotChanged(onChange: () => void): Promise<UnlistenFn> {
  try {
    return await listen("snapshot-changed", () => onChange());
  } catch (e) {
    throw toAppError(e);
  }
}

/** Tells the app a command of the window changed the state, so the tray follows. */
export function announceWindowChange(): void {
  emit("window-changed").catch(() => {
    /* no tray to tell (or outside Tauri): nothing to do */
  });
}

/** A running log stream: its id for logsUnsubscribe, and the channel to keep referenced. */
export interface LogSubscription {
  id: number;
  channel: Channel<LogBatch>;
}

/**
 * Streams the engine's log lines: first the recent ones numbered after `after` (the
 * last line the view has; 0 for none), then new ones in batches, at most four a
 * second, until logsUnsubscribe.
 */
export async function logsSubscribe(after: number, onBatch: (batch: LogBatch) => void): Promise<LogSubscription> {
  const channel = new Channel<LogBatch>(onBatch);
  const id = await call<number>("logs_subscribe", { after, onBatch: channel });
  return { id, channel };
}

/** Ends a log stream; false when it had already ended. */
export function logsUnsubscribe(id: number): Promise<boolean> {
  return call<boolean>("logs_unsubscribe", { id });
}

/**
 * Streams the live connections: a full frame at once, then the changes once per tick
 * until `connsUnsubscribe(id)`. The channel must stay referenced meanwhile.
 */
export async function connsSubscribe(onFrame: (frame: ConnsFrame) => void): Promise<{ id: number; channel: Channel<ConnsFrame> }> {
  const channel = new Channel<ConnsFrame>(onFrame);
  const id = await call<number>("conns_subscribe", { onFrame: channel });
  return { id, channel };
}

/** Stops a connections stream: the backend stops sampling for it. */
export function connsUnsubscribe(id: number): Promise<void> {
  return call<void>("conns_unsubscribe", { id });
}

/** Closes one connection; `notFound` when it has already gone. */
export function connClose(id: number): Promise<void> {
  return call<void>("conn_close", { id });
}

/** Closes the connections listed; resolves to how many were still open. */
export function connsClose(ids: number[]): Promise<number> {
  return call<number>("conns_close", { ids });
}

/** The active profile's chains as the Chains view edits them, with the rules using each. */
export function chainsList(): Promise<ChainView[]> {
  return call<ChainView[]>("chains_list");
}

/**
 * Saves a chain (validated, written atomically, applied as a diff: only rules using
 * it restart). `original`: its name before this edit; null for a new chain.
 */
export function chainSave(draft: ChainDraft, original: string | null): Promise<AppSnapshot> {
  return call<AppSnapshot>("chain_save", { draft, original });
}

/** Deletes a chain; refused (`invalid`, naming them) while rules use it. */
export function chainDelete(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("chain_delete", { name });
}

/** Copies a chain, every setting included, under a free name. */
export function chainDuplicate(name: string): Promise<AppSnapshot> {
  return call<AppSnapshot>("chain_duplicate", { name });
}

/** Dials through `rule`'s chain to its first target; each hop's result and time. */
export function chainProbe(rule: string): Promise<ProbeView> {
  return call<ProbeView>("chain_probe", { rule });
}
