// The Chains view's model: new chains/hops/nodes with GOST's defaults, the inline
// checks that mirror the engine's (src-tauri chains::validate; field keys like
// `hops.1.nodes.0.addr` are the ones AppError.field carries), node health as words,
// and where a probe broke.

import type { ChainDraft } from "./bindings/ChainDraft";
import type { ChainHealth } from "./bindings/ChainHealth";
import type { HopDraft } from "./bindings/HopDraft";
import type { NodeDraft } from "./bindings/NodeDraft";
import type { NodeHealthView } from "./bindings/NodeHealthView";
import type { ProbeView } from "./bindings/ProbeView";
import { splitHostPort } from "./address";
import type { FieldErrors } from "./rule";

export const PROTOCOLS: { value: string; label: string }[] = [
  { value: "socks5", label: "SOCKS5" },
  { value: "http", label: "HTTP" },
  { value: "relay", label: "Relay" },
  { value: "sshd", label: "SSH (sshd)" },
  { value: "forward", label: "Forward" },
];

export const TRANSPORTS: { value: string; label: string }[] = [
  { value: "tcp", label: "TCP" },
  { value: "tls", label: "TLS" },
];

/** Every protocol the engine runs (the form offers the common ones). */
const ENGINE_PROTOCOLS = ["forward", "socks5", "socks", "socks4", "socks4a", "http", "relay", "ssu", "sshd"];
const ENGINE_TRANSPORTS = ["tcp", "tls", "udp", "sshd"];

export function newNode(name = "node-0"): NodeDraft {
  return { name, protocol: "socks5", transport: "tcp", addr: "", username: "", password: "", options: [], origin: null };
}

export function newHop(name = "hop-0"): HopDraft {
  return { name, strategy: "round", maxFails: 1, failTimeoutSecs: 10, nodes: [newNode()], shared: false, origin: null };
}

export function newChain(name = ""): ChainDraft {
  return { name, hops: [newHop()] };
}

/** A deep copy the form can edit freely. */
export function cloneChain(d: ChainDraft): ChainDraft {
  return JSON.parse(JSON.stringify(d)) as ChainDraft;
}

/** `stem-N` not among `taken`, counting from `taken.length`. */
export function freeName(stem: string, taken: string[]): string {
  for (let i = taken.length; ; i++) {
    const n = `${stem}-${i}`;
    if (!taken.includes(n)) return n;
  }
}

/** Why a node address is not host:port with a port, or null. */
export function nodeAddressProblem(addr: string): string | null {
  const a = addr.trim();
  if (a === "") return "enter host:port, e.g. 127.0.0.1:1080";
  if (a !== addr) return "no spaces around the address";
  const hp = splitHostPort(a);
  if (!hp) return a.includes(":") ? `"${a}" is not host:port` : "address needs a port";
  const [host, port] = hp;
  if (port === "" || port === "0") return "address needs a port";
  if (/\s/.test(host)) return "invalid host";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `port "${port}" is not a number from 0 to 65535`;
  return null;
}

/** Obvious mistakes, named by field; `others`: the profile's other chain names. */
export function validateChain(d: ChainDraft, others: string[]): FieldErrors {
  const e: FieldErrors = {};
  if (d.name.trim() === "") e.name = "a chain needs a name";
  else if (d.name.trim() !== d.name) e.name = "no spaces at the start or end of the name";
  else if (others.includes(d.name)) e.name = `another chain is already called "${d.name}"`;
  if (d.hops.length === 0) e.hops = "add at least one hop";
  d.hops.forEach((h, i) => {
    const hf = `hops.${i}`;
    if (h.shared) return;
    if (!["round", "rand", "fifo", "hash"].includes(h.strategy)) e[`${hf}.strategy`] = "pick a strategy";
    if (!Number.isInteger(h.maxFails) || h.maxFails < 1) e[`${hf}.maxFails`] = "at least 1";
    if (!Number.isInteger(h.failTimeoutSecs) || h.failTimeoutSecs < 1) e[`${hf}.failTimeout`] = "at least 1 second";
    if (h.nodes.length === 0) e[`${hf}.nodes`] = "add at least one node";
    h.nodes.forEach((n, j) => {
      const nf = `${hf}.nodes.${j}`;
      if (n.name.trim() === "") e[`${nf}.name`] = "a node needs a name";
      else if (h.nodes.slice(0, j).some((o) => o.name === n.name)) e[`${nf}.name`] = `another node of this hop is already called "${n.name}"`;
      if (!ENGINE_PROTOCOLS.includes(n.protocol)) e[`${nf}.protocol`] = "pick a protocol";
      if (!ENGINE_TRANSPORTS.includes(n.transport)) e[`${nf}.transport`] = "pick a transport";
      else if ((n.protocol === "sshd") !== (n.transport === "sshd"))
        e[`${nf}.transport`] = "an sshd node runs over SSH: protocol and transport are both sshd";
      const ap = nodeAddressProblem(n.addr);
      if (ap) e[`${nf}.addr`] = ap;
      if (n.username === "" && n.password !== "") e[`${nf}.username`] = "a password needs a username";
      n.options.forEach((o, k) => {
        const key = o.key.trim();
        if (key === "" || key !== o.key || key.includes("=")) e[`${nf}.options.${k}`] = "an option needs a key (no spaces or '=')";
        else if (n.options.slice(0, k).some((p) => p.key.toLowerCase() === key.toLowerCase())) e[`${nf}.options.${k}`] = `option "${key}" is given twice`;
        else if (key.toLowerCase() === "secure" && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(o.value.trim()))
          e[`${nf}.options.${k}`] = "secure is true or false";
      });
    });
  });
  return e;
}

/** What is sent: an sshd node's transport is sshd whatever the select said. */
export function chainForSave(d: ChainDraft): ChainDraft {
  const out = cloneChain(d);
  for (const h of out.hops) for (const n of h.nodes) if (n.protocol === "sshd") n.transport = "sshd";
  return out;
}

/** `HH:MM:SS` of a unix-seconds time, in local time. */
export function clock(unixSecs: number): string {
  const t = new Date(unixSecs * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

export type HealthKind = "ok" | "failing" | "dead" | "unknown";

/** A node's health as words: "ok", "failures 2", "dead until 14:03:07". `nowMs`: the frame's time. */
export function healthOf(h: NodeHealthView | undefined, nowMs: number): { kind: HealthKind; text: string } {
  if (!h) return { kind: "unknown", text: "no data" };
  if (h.deadUntil !== null && h.deadUntil * 1000 > nowMs) return { kind: "dead", text: `dead until ${clock(h.deadUntil)}` };
  if (h.fails > 0) return { kind: "failing", text: `failures ${h.fails}` };
  return { kind: "ok", text: "ok" };
}

/** The health of node `j` of hop `i` (matched by name and address, else by place). */
export function nodeHealth(health: ChainHealth | undefined, i: number, node: NodeDraft, j: number): NodeHealthView | undefined {
  const hop = health?.hops[i];
  if (!hop) return undefined;
  return hop.nodes.find((n) => n.name === node.name && n.addr === node.addr) ?? (hop.nodes[j]?.addr === node.addr ? hop.nodes[j] : undefined);
}

/** Where a probe broke: the hop index (null: reaching the target) and why, in words. */
export function probeFailure(p: ProbeView): { index: number | null; text: string } | null {
  if (p.ok) return null;
  const step = [...p.hops].reverse().find((h) => h.error !== null);
  if (!step) return { index: null, text: p.error ?? "the probe failed" };
  if (step.index === null) return { index: null, text: `target ${step.addr} could not be reached through the last hop: ${step.error}` };
  return { index: step.index, text: `hop ${step.index + 1} (${step.addr}) refused: ${step.error}` };
}

/** Milliseconds the probe spent on hop `i`, if it got there. */
export function probeMs(p: ProbeView | null, i: number): number | null {
  const h = p?.hops.find((x) => x.index === i);
  return h ? Number(h.ms) : null;
}
