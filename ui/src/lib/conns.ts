// The Connections view's data: the table rebuilt from the backend's change frames,
// and the pure sort/filter/format helpers the view renders with.

import type { ClosedConn } from "./bindings/ClosedConn";
import type { ConnRow } from "./bindings/ConnRow";
import type { ConnsFrame } from "./bindings/ConnsFrame";

/** Height of a live row in CSS pixels: the table renders only the rows in view. */
export const ROW_HEIGHT = 29;
/** Rows rendered beyond the visible ones, above and below, so scrolling shows no gap. */
export const OVERSCAN = 8;

/** The slice of `total` rows to render for a viewport: [start, end). */
export function visibleRange(scrollTop: number, viewport: number, total: number, rowHeight = ROW_HEIGHT, overscan = OVERSCAN): [number, number] {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const start = Math.max(0, Math.min(first - overscan, total));
  const end = Math.min(total, first + Math.ceil(Math.max(0, viewport) / rowHeight) + overscan);
  return [start, Math.max(start, end)];
}
/** Closed connections kept (the backend keeps as many). */
export const RECENT_MAX = 200;

export type SortKey = "rule" | "client" | "target" | "node" | "age" | "bytesIn" | "bytesOut" | "rateIn" | "rateOut";
export type SortDir = "asc" | "desc";

/**
 * Live rows by id plus the recently closed list, newest first. Plain (non-reactive)
 * state: the view bumps a counter after `apply` so one frame costs one render.
 */
export class ConnTable {
  rows = new Map<number, ConnRow>();
  /** Newest first, at most RECENT_MAX. */
  closed: ClosedConn[] = [];
  /** Unix ms of the last frame: ages are measured against it, so no row needs a timer. */
  time = 0;
  live = 0;

  apply(f: ConnsFrame): void {
    if (f.reset) {
      this.rows.clear();
      this.closed = [];
    }
    for (const id of f.removed) this.rows.delete(id);
    for (const r of f.upsert) this.rows.set(r.id, r);
    for (const [id, bytesIn, bytesOut, rateIn, rateOut] of f.update) {
      const r = this.rows.get(id);
      if (r) this.rows.set(id, { ...r, bytesIn, bytesOut, rateIn, rateOut });
    }
    if (f.closed.length > 0) {
      // Frames list them oldest first; the view shows the newest on top.
      const fresh = f.closed.slice().reverse();
      this.closed = fresh.concat(this.closed).slice(0, RECENT_MAX);
    }
    this.time = f.time;
    this.live = f.live;
  }

  /** The rule names of the live rows. */
  rules(): string[] {
    const s = new Set<string>();
    for (const r of this.rows.values()) s.add(r.rule);
    return [...s].sort();
  }
}

/** Rows of `rule` (all for "") whose client, target or node contains `text` (any case). */
export function filterRows(rows: Iterable<ConnRow>, rule: string, text: string): ConnRow[] {
  const needle = text.trim().toLowerCase();
  const out: ConnRow[] = [];
  for (const r of rows) {
    if (rule && r.rule !== rule) continue;
    if (needle && !r.client.toLowerCase().includes(needle) && !r.target.toLowerCase().includes(needle) && !r.node.toLowerCase().includes(needle)) continue;
    out.push(r);
  }
  return out;
}

const collator = new Intl.Collator("en", { numeric: true });

function compare(a: ConnRow, b: ConnRow, key: SortKey): number {
  switch (key) {
    case "rule":
    case "client":
    case "target":
    case "node":
      return collator.compare(a[key], b[key]);
    // Older is larger: ascending age lists the newest first.
    case "age":
      return b.since - a.since;
    default:
      return a[key] - b[key];
  }
}

/** Sorts in place (and returns) by `key`; ties keep the order they opened in. */
export function sortRows(rows: ConnRow[], key: SortKey, dir: SortDir): ConnRow[] {
  const sign = dir === "asc" ? 1 : -1;
  return rows.sort((a, b) => sign * compare(a, b, key) || a.id - b.id);
}

/** The direction a header click gives: the other one on the sorted column, else a
 * useful first one (largest first for numbers, A→Z for names). */
export function nextSort(current: SortKey, dir: SortDir, clicked: SortKey): SortDir {
  if (current === clicked) return dir === "asc" ? "desc" : "asc";
  return clicked === "rule" || clicked === "client" || clicked === "target" || clicked === "node" || clicked === "age" ? "asc" : "desc";
}

/** 4 s, 3 min 20 s, 2 h 5 min, 3 d 4 h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
