// The window's state: the last AppSnapshot the engine confirmed, and the error banner.
// The UI holds nothing the engine has not confirmed: every change is a command whose
// answer (a new snapshot or an AppError) replaces what is shown.

import { getContext, setContext } from "svelte";
import * as api from "./api";
import type { AppError, AppSnapshot } from "./api";
import type { StatsStore } from "./stats.svelte";

export interface Banner {
  error: AppError;
  /** Offered when the error says retrying may help. */
  retry: (() => void) | null;
}

export class AppState {
  snapshot: AppSnapshot | null = $state.raw(null);
  /** Unix ms when the shown snapshot arrived: a stats frame newer than this has the
   * fresher rule state (a rule can fail or recover between snapshots). */
  snapshotAt: number = $state(0);
  loading: boolean = $state(true);
  /** Set when the first app_snapshot failed: the window shows it instead of the rules. */
  loadError: AppError | null = $state.raw(null);
  banner: Banner | null = $state.raw(null);
  /** Names of rules with a command in flight (their switch shows busy). */
  pending: Set<string> = $state.raw(new Set());

  async load(): Promise<void> {
    this.loading = true;
    try {
      this.snapshot = await api.appSnapshot();
      this.snapshotAt = Date.now();
      this.loadError = null;
    } catch (e) {
      this.loadError = api.toAppError(e);
    } finally {
      this.loading = false;
    }
  }

  /** Re-reads the snapshot without disturbing the view (rule states may have moved). */
  async refresh(): Promise<void> {
    if (!this.snapshot) return;
    try {
      this.snapshot = await api.appSnapshot();
      this.snapshotAt = Date.now();
    } catch {
      /* keep what is shown; the next command reports its own error */
    }
  }

  /**
   * Runs a command that answers with a snapshot. On failure the error goes to the
   * banner unless `quiet` (the caller shows it, e.g. next to a form field); either
   * way it is returned.
   */
  async apply(run: () => Promise<AppSnapshot>, opts: { quiet?: boolean; rule?: string } = {}): Promise<AppError | null> {
    if (opts.rule) this.pending = new Set([...this.pending, opts.rule]);
    try {
      this.snapshot = await run();
      this.snapshotAt = Date.now();
      if (!opts.quiet) this.banner = null;
      // The tray shows the same rules and profiles: it follows.
      api.announceWindowChange();
      return null;
    } catch (e) {
      const err = api.toAppError(e);
      if (!opts.quiet) this.report(err, () => void this.apply(run, opts));
      return err;
    } finally {
      if (opts.rule) {
        const next = new Set(this.pending);
        next.delete(opts.rule);
        this.pending = next;
      }
    }
  }

  /** Shows an error in the banner. */
  report(error: AppError, retry: (() => void) | null = null): void {
    this.banner = { error, retry: error.retryable ? retry : null };
  }

  dismiss(): void {
    this.banner = null;
  }
}

/** "Rule “web”: port in use" when the error names a rule its text does not. */
export function errorText(e: AppError): string {
  if (e.rule && !e.message.includes(e.rule)) return `Rule “${e.rule}”: ${e.message}`;
  return e.message;
}

const APP = Symbol("portway-app");
const STATS = Symbol("portway-stats");

export function provide(app: AppState, stats: StatsStore): void {
  setContext(APP, app);
  setContext(STATS, stats);
}

export function useApp(): AppState {
  return getContext<AppState>(APP);
}

export function useStats(): StatsStore {
  return getContext<StatsStore>(STATS);
}
