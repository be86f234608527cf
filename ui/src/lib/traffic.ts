// Traffic history for the Traffic view: five minutes of rates (one sample a second)
// in fixed-size ring buffers, for the total and per rule. Recording costs a few
// array writes per frame whether or not the view is open; only drawing is skipped.

import type { StatsFrame } from "./bindings/StatsFrame";

/** One sample a second for five minutes. */
export const TRAFFIC_SAMPLES = 300;

/** A fixed-capacity ring of numbers; the oldest sample is overwritten. */
export class Ring {
  #buf: Float64Array;
  #start = 0;
  #len = 0;

  constructor(readonly capacity: number) {
    this.#buf = new Float64Array(capacity);
  }

  get length(): number {
    return this.#len;
  }

  push(v: number): void {
    const x = Number.isFinite(v) ? v : 0;
    if (this.#len < this.capacity) {
      this.#buf[(this.#start + this.#len) % this.capacity] = x;
      this.#len++;
    } else {
      this.#buf[this.#start] = x;
      this.#start = (this.#start + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): number[] {
    const out = new Array<number>(this.#len);
    for (let i = 0; i < this.#len; i++) out[i] = this.#buf[(this.#start + i) % this.capacity];
    return out;
  }
}

export interface Series {
  rateIn: Ring;
  rateOut: Ring;
}

/** What a chart draws: x in unix seconds, rates in bytes/s, all the same length. */
export interface ChartData {
  times: number[];
  rateIn: number[];
  rateOut: number[];
}

function series(cap: number): Series {
  return { rateIn: new Ring(cap), rateOut: new Ring(cap) };
}

export class TrafficHistory {
  readonly times: Ring;
  readonly total: Series;
  readonly rules = new Map<string, Series>();

  constructor(readonly capacity = TRAFFIC_SAMPLES) {
    this.times = new Ring(capacity);
    this.total = series(capacity);
  }

  push(frame: StatsFrame): void {
    let tin = 0;
    let tout = 0;
    const seen = new Set<string>();
    for (const r of frame.rules) {
      seen.add(r.name);
      let s = this.rules.get(r.name);
      if (!s) {
        // A rule that appears later had no traffic before: pad it to the others' length.
        s = series(this.capacity);
        for (let i = 0; i < this.times.length; i++) {
          s.rateIn.push(0);
          s.rateOut.push(0);
        }
        this.rules.set(r.name, s);
      }
      s.rateIn.push(r.rateIn);
      s.rateOut.push(r.rateOut);
      tin += r.rateIn;
      tout += r.rateOut;
    }
    // Rules gone from the engine (deleted, renamed) lose their history.
    for (const name of [...this.rules.keys()]) if (!seen.has(name)) this.rules.delete(name);
    this.times.push(frame.time / 1000);
    this.total.rateIn.push(tin);
    this.total.rateOut.push(tout);
  }

  /** The total (no name) or one rule's history; null for a rule we have none of. */
  data(rule?: string): ChartData | null {
    const s = rule === undefined ? this.total : this.rules.get(rule);
    if (!s) return null;
    return { times: this.times.toArray(), rateIn: s.rateIn.toArray(), rateOut: s.rateOut.toArray() };
  }

  ruleNames(): string[] {
    return [...this.rules.keys()].sort();
  }
}

/** The y-axis never tops out below this, so an idle graph is a flat line at the bottom. */
export const MIN_Y_TOP = 1024;

/** The highest rate, in or out, in a chart's data (0 for none). */
export function peakOf(d: ChartData | null): number {
  let max = 0;
  if (!d) return max;
  for (const v of d.rateIn) if (v > max) max = v;
  for (const v of d.rateOut) if (v > max) max = v;
  return max;
}

/**
 * The top of a chart's y-axis: the shared top when the graphs share one scale
 * (so they compare at a glance), else the chart's own peak.
 */
export function yTop(ownPeak: number, shared: number | null): number {
  return Math.max(shared ?? ownPeak, MIN_Y_TOP);
}

const NICE = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];

/**
 * A rate rounded up to a round number in its binary unit (501 KiB/s → 600 KiB/s),
 * so a small graph's three ticks (0, half, top) read as round numbers.
 */
export function niceTop(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return MIN_Y_TOP;
  let unit = 1;
  while (v >= 1024 * unit && unit < 1024 ** 4) unit *= 1024;
  const x = v / unit;
  const p = 10 ** Math.floor(Math.log10(x));
  const m = NICE.find((n) => n * p >= x * (1 - 1e-12)) ?? 10;
  return m * p * unit;
}

/** "08:05" for unix seconds, in local time (the small graphs' time axis). */
export function clockLabel(secs: number): string {
  const d = new Date(secs * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

const UNITS = ["B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"];

/**
 * Labels for an axis's ticks in one unit chosen by the largest tick, so the axis
 * reads 0, 512 KiB/s, 1 MiB/s … rather than mixing units; decimals only when the
 * ticks need them to stay distinct.
 */
export function rateTicks(ticks: number[]): string[] {
  let max = 0;
  for (const t of ticks) if (Number.isFinite(t) && Math.abs(t) > max) max = Math.abs(t);
  let u = 0;
  while (max >= 1024 && u < UNITS.length - 1) {
    max /= 1024;
    u++;
  }
  const div = 1024 ** u;
  const scaled = ticks.map((t) => (Number.isFinite(t) ? t / div : 0));
  let digits = 0;
  while (digits < 2 && new Set(scaled.map((v) => v.toFixed(digits))).size < new Set(scaled).size) digits++;
  return scaled.map((v) => (v === 0 ? "0" : `${v.toFixed(u === 0 ? 0 : digits)} ${UNITS[u]}`));
}
