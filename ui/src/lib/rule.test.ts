import { describe, expect, it } from "vitest";
import { addressProblem, splitHostPort } from "./address";
import { draftForSave, newDraft, normaliseField, uniqueName, validateDraft } from "./rule";
import { draft } from "../test/fixtures";

describe("splitHostPort follows Go's net.SplitHostPort", () => {
  it.each([
    ["127.0.0.1:8080", ["127.0.0.1", "8080"]],
    [":8080", ["", "8080"]],
    ["[::1]:53", ["::1", "53"]],
    ["example.com:443", ["example.com", "443"]],
    ["::1:53", null],
    ["8080", null],
    ["[::1]53", null],
  ])("%s", (a, want) => {
    expect(splitHostPort(a)).toEqual(want);
  });
});

describe("addressProblem", () => {
  it("accepts listen addresses with or without a host", () => {
    expect(addressProblem(":8080", { needPort: false })).toBeNull();
    expect(addressProblem("0.0.0.0:0", { needPort: false })).toBeNull();
  });
  it("names what is wrong", () => {
    expect(addressProblem("", { needPort: false })).toMatch(/host:port/);
    expect(addressProblem("localhost", { needPort: false })).toMatch(/not host:port/);
    expect(addressProblem("h:99999", { needPort: false })).toMatch(/0 to 65535/);
    expect(addressProblem("h:http", { needPort: false })).toMatch(/not a number/);
    expect(addressProblem("h:0", { needPort: true })).toMatch(/needs a port/);
    expect(addressProblem("${HOST}:80", { needPort: true })).toMatch(/placeholder/);
    expect(addressProblem(" h:80", { needPort: true })).toMatch(/spaces/);
  });
});

describe("validateDraft mirrors the engine's field names", () => {
  it("accepts a complete rule", () => {
    expect(validateDraft(draft(), [], [])).toEqual({});
  });

  it("flags an empty name, a bad listen address and a bad second target", () => {
    const e = validateDraft(draft({ name: "", listen: "8080", targets: ["a:1", "b"] }), [], []);
    expect(e.name).toMatch(/needs a name/);
    expect(e.listen).toMatch(/not host:port/);
    expect(e["targets.1"]).toMatch(/not host:port/);
    expect(e["targets.0"]).toBeUndefined();
  });

  it("wants a target unless local TCP goes through a chain", () => {
    expect(validateDraft(draft({ targets: [] }), [], []).targets).toMatch(/at least one target/);
    expect(validateDraft(draft({ targets: [], chain: "c" }), [], ["c"]).targets).toBeUndefined();
    expect(validateDraft(draft({ kind: "localUdp", targets: [], chain: "c" }), [], ["c"]).targets).toBeDefined();
  });

  it("refuses a duplicate name and an unknown chain", () => {
    const e = validateDraft(draft({ chain: "gone" }), ["web"], ["c"]);
    expect(e.name).toMatch(/already called/);
    expect(e.chain).toMatch(/no chain named/);
  });

  it("checks numbers under the engine's keys, ttl only for UDP", () => {
    const e = validateDraft(draft({ maxFails: 0, failTimeoutSecs: 0, ttlSecs: 0 }), [], []);
    expect(Object.keys(e).sort()).toEqual(["failTimeout", "maxFails"]);
    expect(validateDraft(draft({ kind: "remoteUdp", ttlSecs: 0 }), [], []).ttl).toBeDefined();
  });

  it("a new draft carries GOST's defaults and is incomplete", () => {
    const d = newDraft();
    expect(d).toMatchObject({ strategy: "round", maxFails: 1, failTimeoutSecs: 10, ttlSecs: 5, keepAlive: false, chain: "" });
    expect(Object.keys(validateDraft(d, [], [])).sort()).toEqual(["listen", "name", "targets.0"]);
  });
});

describe("helpers", () => {
  it("server-side drafts are sent without a chain", () => {
    expect(draftForSave(draft({ kind: "serverSide", chain: "c" })).chain).toBe("");
    expect(draftForSave(draft({ chain: "c" })).chain).toBe("c");
  });
  it("uniqueName counts up past taken names", () => {
    expect(uniqueName("web", ["web", "web-2"])).toBe("web-3");
    expect(uniqueName("web-2", ["web", "web-2"])).toBe("web-3");
  });
  it("normaliseField maps the DTO's spellings to the engine's", () => {
    expect(normaliseField("failTimeoutSecs")).toBe("failTimeout");
    expect(normaliseField("ttlSecs")).toBe("ttl");
    expect(normaliseField("targets[2]")).toBe("targets.2");
    expect(normaliseField("targets.1")).toBe("targets.1");
  });
});
