// Snapshots, frames and a scripted backend for the tests.
import { mockIPC } from "@tauri-apps/api/mocks";
import type { Channel } from "@tauri-apps/api/core";
import type { AppError } from "../lib/bindings/AppError";
import type { AppSnapshot } from "../lib/bindings/AppSnapshot";
import type { RuleDraft } from "../lib/bindings/RuleDraft";
import type { RuleStats } from "../lib/bindings/RuleStats";
import type { RuleView } from "../lib/bindings/RuleView";
import type { StatsFrame } from "../lib/bindings/StatsFrame";

export function draft(over: Partial<RuleDraft> = {}): RuleDraft {
  return {
    name: "web",
    kind: "localTcp",
    listen: "127.0.0.1:8080",
    targets: ["127.0.0.1:8000"],
    strategy: "round",
    maxFails: 1,
    failTimeoutSecs: 10,
    keepAlive: false,
    ttlSecs: 5,
    chain: "",
    ...over,
  };
}

export function ruleView(over: Partial<Omit<RuleView, "rule">> & { rule?: Partial<RuleDraft> } = {}): RuleView {
  const { rule, ...rest } = over;
  const r = draft(rule);
  return {
    rule: r,
    enabled: true,
    state: "running",
    error: null,
    listening: [r.listen],
    gostCmdline: `gost -L tcp://${r.listen}/${r.targets.join(",")}`,
    ...rest,
  };
}

export function snapshot(over: Partial<AppSnapshot> = {}): AppSnapshot {
  return {
    profiles: ["default", "office"],
    activeProfile: "default",
    rules: [
      ruleView(),
      ruleView({ rule: { name: "dns", kind: "localUdp", listen: ":10053", targets: ["1.1.1.1:53", "8.8.8.8:53"] } }),
      ruleView({
        rule: { name: "db", listen: "127.0.0.1:5432", targets: ["10.0.0.5:5432"] },
        state: "failed",
        error: "127.0.0.1:5432: address already in use",
      }),
    ],
    chains: ["via-bastion"],
    otherServices: ["socks-proxy"],
    warnings: ['service "web": key "limiter" is kept but not acted on'],
    ...over,
  };
}

export function stats(name: string, over: Partial<RuleStats> = {}): RuleStats {
  return { name, active: 0, total: 0, bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0, errors: 0, state: "running", error: null, lastError: null, lastErrorAt: null, ...over };
}

export function frame(rules: RuleStats[], time = Date.now()): StatsFrame {
  return { time, rules };
}

export function appError(over: Partial<AppError> = {}): AppError {
  return { code: "invalid", message: "bad", rule: null, field: null, retryable: false, ...over };
}

export type Handler = (args: Record<string, unknown>) => unknown;

/**
 * A scripted backend: `handlers[cmd]` answers a command (throw to reject); every call
 * is recorded. `app_snapshot` and `stats_subscribe` have defaults; `push(frame)` sends
 * a StatsFrame down the subscribed channel the way Tauri does (runCallback with an
 * index), so Channel's ordering logic runs too.
 */
export function backend(handlers: Record<string, Handler> = {}, snap: AppSnapshot = snapshot()) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  let channel: Channel<StatsFrame> | null = null;
  let index = 0;
  mockIPC((cmd, payload) => {
    const args = (payload ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args });
    const h = handlers[cmd];
    if (h) return h(args);
    if (cmd === "app_snapshot") return snap;
    if (cmd === "stats_subscribe") {
      channel = args.onFrame as Channel<StatsFrame>;
      return null;
    }
    if (cmd === "rule_preview") return { cmdline: "gost -L tcp://127.0.0.1:8080/127.0.0.1:8000", yaml: "services:\n- name: web\n" };
    throw appError({ code: "engine", message: `unexpected command ${cmd}` });
  });
  return {
    calls,
    callsOf: (cmd: string) => calls.filter((c) => c.cmd === cmd),
    get subscribed() {
      return channel !== null;
    },
    push(f: StatsFrame) {
      if (!channel) throw new Error("no stats channel subscribed");
      const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } })
        .__TAURI_INTERNALS__;
      internals.runCallback(channel.id, { index: index++, message: f });
    },
  };
}

/** Makes document.hidden read `hidden` and fires visibilitychange. */
export function setHidden(hidden: boolean): void {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  document.dispatchEvent(new Event("visibilitychange"));
}
