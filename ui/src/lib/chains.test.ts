import { describe, expect, it } from "vitest";
import { chainForSave, clock, healthOf, newChain, nodeAddressProblem, probeFailure, validateChain } from "./chains";

describe("chains model", () => {
  it("node addresses need a port, as the engine says", () => {
    expect(nodeAddressProblem("127.0.0.1")).toBe("address needs a port");
    expect(nodeAddressProblem("127.0.0.1:0")).toBe("address needs a port");
    expect(nodeAddressProblem("127.0.0.1:")).toBe("address needs a port");
    expect(nodeAddressProblem("[::1]:1080")).toBeNull();
    expect(nodeAddressProblem("h:99999")).toContain("not a number");
  });

  it("health reads as ok, failures n, or dead until HH:MM:SS (only while in the future)", () => {
    const h = { name: "a", addr: "x:1", fails: 2, totalFailures: 5, successes: 1, deadUntil: 2_000_000_000 };
    expect(healthOf(h, 1_999_999_999_000)).toEqual({ kind: "dead", text: `dead until ${clock(2_000_000_000)}` });
    expect(healthOf(h, 2_000_000_001_000)).toEqual({ kind: "failing", text: "failures 2" });
    expect(healthOf({ ...h, fails: 0, deadUntil: null }, 0).text).toBe("ok");
    expect(healthOf(undefined, 0).kind).toBe("unknown");
    expect(clock(0)).toMatch(/^\d\d:\d\d:\d\d$/);
  });

  it("a probe that fails at the target says so; one without steps shows the engine's error", () => {
    const base = { rule: "r", chain: "c", target: "t:1", ok: false, ms: 5, error: "plan error", targets: [] };
    expect(probeFailure({ ...base, hops: [{ index: 0, hop: "h", node: "n", addr: "a:1", ms: 1, error: null }, { index: null, hop: "target", node: "t:1", addr: "t:1", ms: 1, error: "connection refused" }] })).toEqual({
      index: null,
      text: "target t:1 could not be reached through the last hop: connection refused",
    });
    expect(probeFailure({ ...base, hops: [] })).toEqual({ index: null, text: "plan error" });
    expect(probeFailure({ ...base, ok: true, hops: [] })).toBeNull();
  });

  it("validation names hop and node fields; sshd nodes are sent with the sshd transport", () => {
    const d = newChain("c");
    d.hops[0].nodes[0].addr = "1.2.3.4:22";
    d.hops[0].nodes[0].protocol = "sshd";
    expect(validateChain(d, [])["hops.0.nodes.0.transport"]).toContain("sshd");
    expect(chainForSave(d).hops[0].nodes[0].transport).toBe("sshd");
    d.hops[0].maxFails = 0;
    d.hops[0].nodes[0].options = [{ key: "udp", value: "true" }, { key: "UDP", value: "1" }];
    const e = validateChain(d, ["c"]);
    expect(Object.keys(e).sort()).toEqual(["hops.0.maxFails", "hops.0.nodes.0.options.1", "hops.0.nodes.0.transport", "name"]);
  });
});
