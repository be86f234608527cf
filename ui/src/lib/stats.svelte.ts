// Live numbers for the Rules view. The engine pushes one StatsFrame a second over a
// Channel; this store keeps a minute of rate history per rule (cheap, non-reactive
// arrays) and publishes a new view at most once per frame, on the next animation
// frame, so a burst of frames (after a stall) costs one render. While the document
// is hidden nothing is published (history still records, so the sparkline is right
// when the window comes back); visibilitychange resumes it. The Traffic view's five
// minutes of history (`traffic`) is recorded the same way and drawn on publish.

import type { ChainHealth } from "./bindings/ChainHealth";
import type { RuleStats } from "./bindings/RuleStats";
import type { StatsFrame } from "./bindings/StatsFrame";
import { pushSample, SPARK_SAMPLES } from "./sparkline";
import { TrafficHistory } from "./traffic";

export interface RuleLive {
  stats: RuleStats;
  /** Rates in bytes/s, oldest first, at most SPARK_SAMPLES. */
  rateIn: number[];
  rateOut: number[];
}

export interface StatsView {
  /** Unix ms of the frame shown; 0 before the first one. */
  time: number;
  rules: Record<string, RuleLive>;
  /** Node health per chain a running rule uses (the Chains view's path). */
  chains: ChainHealth[];
}

type Scheduler = (cb: () => void) => void;

function defaultScheduler(cb: () => void): void {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => cb());
  else setTimeout(cb, 16);
}

export class StatsStore {
  /** What the view renders; replaced whole on each publish. */
  view: StatsView = $state.raw({ time: 0, rules: {}, chains: [] });
  /** True while the document is hidden and updates are held back. */
  paused: boolean = $state(false);
  /** Frames published (for tests and diagnostics). */
  renders = 0;
  /** Five minutes of rates for the Traffic view, recorded from app start. */
  readonly traffic = new TrafficHistory();

  #history = new Map<string, { rateIn: number[]; rateOut: number[] }>();
  #latest: StatsFrame | null = null;
  #dirty = false;
  #scheduled = false;
  #doc: Document | null;
  #schedule: Scheduler;
  #onVisibility = () => this.#visibilityChanged();

  constructor(opts: { doc?: Document | null; schedule?: Scheduler } = {}) {
    this.#doc = opts.doc === undefined ? (typeof document === "undefined" ? null : document) : opts.doc;
    this.#schedule = opts.schedule ?? defaultScheduler;
    this.paused = this.#hidden();
    this.#doc?.addEventListener("visibilitychange", this.#onVisibility);
  }

  /** Stops listening to visibility changes. */
  destroy(): void {
    this.#doc?.removeEventListener("visibilitychange", this.#onVisibility);
  }

  /** Takes one frame from the engine. */
  ingest(frame: StatsFrame): void {
    const seen = new Set<string>();
    for (const r of frame.rules) {
      seen.add(r.name);
      let h = this.#history.get(r.name);
      if (!h) {
        h = { rateIn: [], rateOut: [] };
        this.#history.set(r.name, h);
      }
      pushSample(h.rateIn, r.rateIn, SPARK_SAMPLES);
      pushSample(h.rateOut, r.rateOut, SPARK_SAMPLES);
    }
    // Rules gone from the engine (deleted, renamed) lose their history.
    for (const name of [...this.#history.keys()]) if (!seen.has(name)) this.#history.delete(name);
    this.traffic.push(frame);
    this.#latest = frame;
    this.#dirty = true;
    this.#request();
  }

  #hidden(): boolean {
    return this.#doc?.hidden === true;
  }

  #request(): void {
    if (this.#scheduled || this.#hidden()) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      if (this.#hidden()) return;
      this.#publish();
    });
  }

  #publish(): void {
    if (!this.#dirty || !this.#latest) return;
    this.#dirty = false;
    const rules: Record<string, RuleLive> = {};
    for (const r of this.#latest.rules) {
      const h = this.#history.get(r.name);
      rules[r.name] = { stats: r, rateIn: h ? [...h.rateIn] : [], rateOut: h ? [...h.rateOut] : [] };
    }
    this.renders++;
    this.view = { time: this.#latest.time, rules, chains: this.#latest.chains ?? [] };
  }

  #visibilityChanged(): void {
    const hidden = this.#hidden();
    this.paused = hidden;
    if (!hidden && this.#dirty) this.#request();
  }
}
