// The Logs view's model, without Svelte: the lines kept (bounded), what arrives while
// paused, the display filters and the text a copy puts on the clipboard. The engine
// numbers its lines (`seq`), so a stream that resumes after the window was hidden can
// ask for what came after the last line kept and nothing is shown twice.

import type { LogBatch } from "./bindings/LogBatch";
import type { LogEntry } from "./bindings/LogEntry";
import type { LogLevel } from "./bindings/LogLevel";

export type { LogBatch, LogEntry, LogLevel };

/** Lines kept in the window at most; older ones go first. */
export const MAX_LINES = 5000;

/** Most severe first: a filter level keeps its own and everything before it. */
export const LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug", "trace"];

export const LEVEL_LABELS: Record<LogLevel, string> = {
  error: "Errors only",
  warn: "Warnings and errors",
  info: "Info and above",
  debug: "Debug and above",
  trace: "Everything",
};

export interface LogFilter {
  /** Lines at least this severe. */
  level: LogLevel;
  /** Only lines of this rule; "" for all. */
  rule: string;
  /** Case-insensitive text in the message, rule, level or fields; "" for all. */
  text: string;
}

export const NO_FILTER: LogFilter = { level: "trace", rule: "", text: "" };

function rank(l: LogLevel): number {
  const i = LEVELS.indexOf(l);
  return i < 0 ? LEVELS.indexOf("info") : i;
}

/** The line as one searchable, copyable text. */
export function formatLine(l: LogEntry): string {
  const parts = [new Date(l.time).toISOString(), l.level.toUpperCase().padEnd(5)];
  if (l.rule) parts.push(`[${l.rule}]`);
  parts.push(l.message);
  if (l.fields.length > 0) parts.push(fieldsText(l));
  return parts.join(" ");
}

/** `client=127.0.0.1:5000 target=10.0.0.5:5432`, values quoted when they need it. */
export function fieldsText(l: LogEntry): string {
  return l.fields.map((f) => `${f.name}=${quote(f.value)}`).join(" ");
}

function quote(v: string): string {
  return v === "" || /[\s"]/.test(v) ? JSON.stringify(v) : v;
}

/** A predicate for `f`, built once per filter change rather than once per line. */
export function matcher(f: LogFilter): (l: LogEntry) => boolean {
  const max = rank(f.level);
  const needle = f.text.trim().toLowerCase();
  return (l) => {
    if (rank(l.level) > max) return false;
    if (f.rule !== "" && l.rule !== f.rule) return false;
    if (needle === "") return true;
    return formatLine(l).toLowerCase().includes(needle);
  };
}

export function filterLines(lines: readonly LogEntry[], f: LogFilter): LogEntry[] {
  if (f.level === "trace" && f.rule === "" && f.text.trim() === "") return lines.slice();
  return lines.filter(matcher(f));
}

/** What Copy puts on the clipboard: one line per entry, oldest first. */
export function copyText(lines: readonly LogEntry[]): string {
  return lines.map(formatLine).join("\n") + (lines.length > 0 ? "\n" : "");
}

/** The rules a filter can pick: the profile's and any the lines name, sorted. */
export function ruleChoices(lines: readonly LogEntry[], profileRules: readonly string[]): string[] {
  const set = new Set(profileRules);
  for (const l of lines) if (l.rule) set.add(l.rule);
  return [...set].sort((a, b) => a.localeCompare(b));
}

/**
 * The lines of one Logs view. `add` takes batches in order; lines already kept
 * (a stream resumed from an older point) are dropped, and a gap in the numbers
 * counts as skipped (the engine dropped lines it could not send in time). While paused, new lines wait in `held` (bounded too) and
 * `resume` appends them.
 */
export class LogTail {
  /** What the view shows (before filters), oldest first, at most `max`. */
  lines: LogEntry[] = [];
  /** Arrived while paused. */
  held: LogEntry[] = [];
  /** Arrived while paused but pushed out of `held` by newer ones. */
  heldDropped = 0;
  paused = false;
  /** Lines the engine numbered that never reached us (overflow, or the ring forgot them). */
  skipped = 0;
  /** The last line number seen: where a new stream continues. */
  lastSeq = 0;
  readonly max: number;

  constructor(max = MAX_LINES) {
    this.max = max;
  }

  add(batch: LogBatch): void {
    const fresh: LogEntry[] = [];
    for (const l of batch.lines) {
      if (l.seq <= this.lastSeq) continue;
      // The first batch of the first stream starts wherever the ring does.
      if (this.lastSeq > 0) this.skipped += l.seq - this.lastSeq - 1;
      this.lastSeq = l.seq;
      fresh.push(l);
    }
    if (fresh.length === 0) return;
    if (this.paused) {
      const all = this.held.concat(fresh);
      const over = Math.max(0, all.length - this.max);
      this.heldDropped += over;
      this.held = over > 0 ? all.slice(over) : all;
    } else {
      this.lines = bound(this.lines.concat(fresh), this.max);
    }
  }

  /** Lines waiting while paused (including those already pushed out). */
  get newCount(): number {
    return this.held.length + this.heldDropped;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.held.length > 0) this.lines = bound(this.lines.concat(this.held), this.max);
    this.held = [];
    this.heldDropped = 0;
  }
}

function bound(lines: LogEntry[], max: number): LogEntry[] {
  return lines.length > max ? lines.slice(lines.length - max) : lines;
}
