// The rule editor's model: kinds and strategies as the form shows them, a new draft
// with GOST's defaults (crates/core rule::Rule::new), and the inline checks that
// mirror Rule::validate. Field keys are the ones the engine puts in AppError.field
// (`name`, `listen`, `targets`, `targets.1`, `strategy`, `maxFails`, `failTimeout`,
// `ttl`, `chain`), so client and server errors land in the same place.

import type { RuleDraft } from "./bindings/RuleDraft";
import type { RuleKindDto } from "./bindings/RuleKindDto";
import type { RuleState } from "./bindings/RuleState";
import { addressProblem } from "./address";

export const KINDS: { value: RuleKindDto; label: string; hint: string }[] = [
  { value: "localTcp", label: "Local TCP", hint: "Listen here, forward each TCP connection to a target." },
  { value: "localUdp", label: "Local UDP", hint: "Listen here, forward UDP datagrams to a target." },
  { value: "remoteTcp", label: "Remote TCP", hint: "Listen on the far side of the chain, forward back to a target here." },
  { value: "remoteUdp", label: "Remote UDP", hint: "Remote listening for UDP through the chain." },
  { value: "serverSide", label: "Server-side", hint: "The server end of server-side forwarding: clients with a forward connector pick the target." },
];

export const STRATEGIES: { value: string; label: string }[] = [
  { value: "round", label: "Round robin" },
  { value: "rand", label: "Random" },
  { value: "fifo", label: "First available (fifo)" },
  { value: "hash", label: "Hash of client IP" },
];

export function kindLabel(kind: RuleKindDto): string {
  return KINDS.find((k) => k.value === kind)?.label ?? kind;
}

export function isUdp(kind: RuleKindDto): boolean {
  return kind === "localUdp" || kind === "remoteUdp";
}

/** A rule's state and error as shown: the engine's at the latest tick when that is
 * newer than the snapshot, so a rule that fails (or recovers) later shows it
 * without a reload. */
export function shownState(
  view: { state: RuleState; error: string | null },
  live: { state: RuleState; error: string | null } | undefined,
  liveIsNewer: boolean,
): { state: RuleState; error: string | null } {
  return liveIsNewer && live?.state ? { state: live.state, error: live.error } : { state: view.state, error: view.error };
}

export const STATE_LABELS: Record<RuleState, string> = {
  running: "running",
  stopped: "stopped",
  disabled: "switched off",
  failed: "failed",
};

/** A new rule with GOST's defaults. */
export function newDraft(name = ""): RuleDraft {
  return {
    name,
    kind: "localTcp",
    listen: "",
    targets: [""],
    strategy: "round",
    maxFails: 1,
    failTimeoutSecs: 10,
    keepAlive: false,
    ttlSecs: 5,
    chain: "",
  };
}

export function cloneDraft(d: RuleDraft): RuleDraft {
  return { ...d, targets: [...d.targets] };
}

/** "web" → "web-2" (or -3 …), not clashing with `taken`. */
export function uniqueName(base: string, taken: Iterable<string>): string {
  const set = new Set(taken);
  const stem = base.replace(/-\d+$/, "") || "rule";
  for (let i = 2; ; i++) {
    const n = `${stem}-${i}`;
    if (!set.has(n)) return n;
  }
}

/** The field key the engine may use under another spelling → the form's key. */
export function normaliseField(field: string): string {
  if (field === "failTimeoutSecs") return "failTimeout";
  if (field === "ttlSecs") return "ttl";
  const m = /^targets\[(\d+)\]$/.exec(field);
  if (m) return `targets.${m[1]}`;
  return field;
}

export type FieldErrors = Record<string, string>;

/**
 * Obvious mistakes, named by field. `others`: names of the profile's other rules.
 * The draft is checked as it will be sent (see `draftForSave`).
 */
export function validateDraft(d: RuleDraft, others: string[], chains: string[]): FieldErrors {
  const e: FieldErrors = {};
  if (d.name.trim() === "") e.name = "a rule needs a name";
  else if (d.name.trim() !== d.name) e.name = "no spaces at the start or end of the name";
  else if (others.includes(d.name)) e.name = `another rule is already called "${d.name}"`;

  const lp = addressProblem(d.listen, { needPort: false });
  if (lp) e.listen = lp;

  const needsTargets = !(d.kind === "localTcp" && d.chain !== "");
  if (d.targets.length === 0 && needsTargets) e.targets = "add at least one target (host:port)";
  d.targets.forEach((t, i) => {
    const p = addressProblem(t, { needPort: true });
    if (p) e[`targets.${i}`] = p;
  });

  if (!["round", "rand", "fifo", "hash"].includes(d.strategy)) e.strategy = "pick a strategy";
  if (!Number.isInteger(d.maxFails) || d.maxFails < 1) e.maxFails = "at least 1";
  if (!Number.isInteger(d.failTimeoutSecs) || d.failTimeoutSecs < 1) e.failTimeout = "at least 1 second";
  if (isUdp(d.kind) && (!Number.isInteger(d.ttlSecs) || d.ttlSecs < 1)) e.ttl = "at least 1 second";
  if (d.chain !== "") {
    if (d.kind === "serverSide") e.chain = "server-side forwarding receives connections; it does not use a chain";
    else if (!chains.includes(d.chain)) e.chain = `the profile has no chain named "${d.chain}"`;
  }
  return e;
}

/** What is sent to the engine: no chain for server-side (the field is hidden there). */
export function draftForSave(d: RuleDraft): RuleDraft {
  const out = cloneDraft(d);
  if (out.kind === "serverSide") out.chain = "";
  return out;
}
