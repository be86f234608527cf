import { describe, expect, it } from "vitest";
import { mockIPC } from "@tauri-apps/api/mocks";
import * as api from "./api";
import { appError, backend, draft, frame, snapshot, stats } from "../test/fixtures";

describe("api wrappers send the contract's command names and camelCase args", () => {
  it("rule_save sends the draft and the original name", async () => {
    const snap = snapshot();
    const b = backend({ rule_save: () => snap });
    const d = draft({ name: "web2" });
    await expect(api.ruleSave(d, "web")).resolves.toEqual(snap);
    expect(b.calls).toEqual([{ cmd: "rule_save", args: { draft: d, original: "web" } }]);
  });

  it("rule_save of a new rule sends original: null", async () => {
    const b = backend({ rule_save: () => snapshot() });
    await api.ruleSave(draft(), null);
    expect(b.callsOf("rule_save")[0].args.original).toBeNull();
  });

  it("each command maps to its invoke name and arguments", async () => {
    const b = backend({
      rule_delete: () => snapshot(),
      rule_set_enabled: () => snapshot(),
      profile_switch: () => snapshot(),
      profile_create: () => snapshot(),
      profile_import_preview: () => ({ format: "cmdline", rules: [], otherServices: [], chains: [], warnings: [] }),
      profile_import: () => snapshot(),
    });
    await api.appSnapshot();
    await api.ruleDelete("db");
    await api.ruleSetEnabled("web", false);
    await api.rulePreview(draft());
    await api.profileSwitch("office");
    await api.profileCreate("home");
    await api.profileImportPreview("gost -L tcp://:1/a:2", null);
    await api.profileImport("services: []", "x.yaml", "x");
    expect(b.calls.map((c) => [c.cmd, c.args])).toEqual([
      ["app_snapshot", {}],
      ["rule_delete", { name: "db" }],
      ["rule_set_enabled", { name: "web", enabled: false }],
      ["rule_preview", { draft: draft() }],
      ["profile_switch", { name: "office" }],
      ["profile_create", { name: "home" }],
      ["profile_import_preview", { text: "gost -L tcp://:1/a:2", fileName: null }],
      ["profile_import", { text: "services: []", fileName: "x.yaml", name: "x" }],
    ]);
  });

  it("the profile commands send the contract's names and camelCase args", async () => {
    const exp = { name: "office", yaml: "services: []\n", cmdline: null };
    const b = backend({
      profile_duplicate: () => snapshot(),
      profile_rename: () => snapshot(),
      profile_delete: () => snapshot(),
      profile_export: () => exp,
      profile_export_to: () => null,
    });
    await api.profileDuplicate("default", "default-2");
    await api.profileRename("office", "work");
    await api.profileDelete("work");
    await expect(api.profileExport("office")).resolves.toEqual(exp);
    await api.profileExportTo("office", "/tmp/office.yaml");
    expect(b.calls.map((c) => [c.cmd, c.args])).toEqual([
      ["profile_duplicate", { name: "default", newName: "default-2" }],
      ["profile_rename", { name: "office", newName: "work" }],
      ["profile_delete", { name: "work" }],
      ["profile_export", { name: "office" }],
      ["profile_export_to", { name: "office", path: "/tmp/office.yaml" }],
    ]);
  });

  it("chooseExportPath asks the dialog plugin for <profile>.yaml and normalises its errors", async () => {
    let answer: () => unknown = () => "/home/me/office.yaml";
    const b = backend({ "plugin:dialog|save": () => answer() });
    await expect(api.chooseExportPath("office")).resolves.toBe("/home/me/office.yaml");
    expect(b.callsOf("plugin:dialog|save")[0].args).toEqual({
      options: { title: "Export profile “office”", defaultPath: "office.yaml", filters: [{ name: "GOST YAML", extensions: ["yaml", "yml"] }] },
    });
    answer = () => null;
    await expect(api.chooseExportPath("office")).resolves.toBeNull();
    answer = () => Promise.reject("dialog.save not allowed. Permissions associated with this command: dialog:allow-save");
    await expect(api.chooseExportPath("office")).rejects.toMatchObject({ code: "engine", message: expect.stringContaining("dialog:allow-save") });
  });

  it("stats_subscribe passes a Channel whose frames reach the callback in order", async () => {
    const b = backend();
    const got: number[] = [];
    await api.statsSubscribe((f) => got.push(f.time));
    expect(b.subscribed).toBe(true);
    b.push(frame([stats("web")], 1));
    b.push(frame([stats("web")], 2));
    expect(got).toEqual([1, 2]);
  });
});

describe("errors are normalised to AppError", () => {
  it("passes a well-formed AppError through unchanged", async () => {
    const e = appError({ code: "engine", message: "127.0.0.1:8080: address already in use", rule: "web", field: "listen", retryable: true });
    mockIPC(() => {
      throw e;
    });
    await expect(api.ruleSetEnabled("web", true)).rejects.toEqual(e);
  });

  it("turns a bare string rejection into an engine AppError with that text", async () => {
    mockIPC(() => Promise.reject("command rule_sav not found"));
    await expect(api.appSnapshot()).rejects.toEqual({
      code: "engine",
      message: "command rule_sav not found",
      rule: null,
      field: null,
      retryable: false,
    });
  });

  it("parses an AppError that arrives serialised as a JSON string", async () => {
    mockIPC(() => Promise.reject(JSON.stringify(appError({ code: "parse", message: "line 3: bad key", field: "text" }))));
    await expect(api.profileImportPreview("x", null)).rejects.toMatchObject({ code: "parse", message: "line 3: bad key", field: "text" });
  });

  it("uses an Error's message", () => {
    expect(api.toAppError(new TypeError("window.__TAURI_INTERNALS__ is undefined"))).toEqual({
      code: "engine",
      message: "window.__TAURI_INTERNALS__ is undefined",
      rule: null,
      field: null,
      retryable: false,
    });
  });

  it("keeps what it can of a partial object with an unknown code", () => {
    expect(api.toAppError({ code: "quota", message: "too many", rule: "web", retryable: true })).toEqual({
      code: "engine",
      message: "too many",
      rule: "web",
      field: null,
      retryable: true,
    });
  });

  it("isAppError rejects objects missing fields", () => {
    expect(api.isAppError(appError())).toBe(true);
    expect(api.isAppError({ code: "invalid", message: "x" })).toBe(false);
    expect(api.isAppError({ ...appError(), code: "nope" })).toBe(false);
    expect(api.isAppError(null)).toBe(false);
  });

  it("describes undefined and numbers", () => {
    expect(api.toAppError(undefined).message).toBe("Unknown error");
    expect(api.toAppError(42).message).toBe("42");
  });
});
