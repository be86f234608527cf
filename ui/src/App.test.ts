// The window against a scripted backend (mockIPC): what is rendered from a snapshot,
// what each control sends, and how stats frames reach the rows.
import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "./App.svelte";
import { appError, backend, frame, ruleView, setHidden, snapshot, stats } from "./test/fixtures";

async function renderApp(b = backend()) {
  render(App);
  await screen.findByTestId("rule-row-web");
  return b;
}

describe("Rules view", () => {
  it("renders each rule of the snapshot with its switch, status, route and the engine's error", async () => {
    await renderApp();
    expect(screen.getByTestId("rule-row-dns")).toBeTruthy();
    expect(screen.getByTestId("rule-status-web").textContent).toBe("running");
    expect(screen.getByTestId("rule-status-db").textContent).toBe("failed");
    expect(screen.getByTestId("rule-error-db").textContent).toBe("127.0.0.1:5432: address already in use");
    expect(screen.getByTestId("rule-route-dns").textContent).toContain(":10053");
    expect(screen.getByTestId("rule-route-dns").textContent).toContain("1.1.1.1:53, 8.8.8.8:53");
    const toggle = screen.getByTestId("rule-toggle-web");
    expect(toggle.getAttribute("role")).toBe("switch");
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    expect(toggle.getAttribute("aria-label")).toBe("Run rule web");
    expect(screen.getByTestId("rule-conns-web").textContent).toBe("0");
  });

  it("shows the profile's warnings and the services the form cannot show", async () => {
    await renderApp();
    expect(screen.getByTestId("profile-warnings").textContent).toContain('key "limiter" is kept but not acted on');
    expect(screen.getByTestId("other-services").textContent).toContain("socks-proxy");
  });

  it("says so when a rule is switched off", async () => {
    await renderApp(
      backend({}, snapshot({ rules: [ruleView({ enabled: false, state: "disabled" })], warnings: [], otherServices: [] })),
    );
    expect(screen.getByTestId("rule-status-web").textContent).toBe("switched off");
    expect(screen.getByTestId("rule-toggle-web").getAttribute("aria-checked")).toBe("false");
    expect(screen.queryByTestId("profile-warnings")).toBeNull();
  });

  it("a toggle click calls rule_set_enabled with the rule's name and the new state, then shows the answer", async () => {
    const off = snapshot();
    off.rules[0] = { ...off.rules[0], enabled: false, state: "disabled" };
    const b = await renderApp(backend({ rule_set_enabled: () => off }));
    await fireEvent.click(screen.getByTestId("rule-toggle-web"));
    expect(b.callsOf("rule_set_enabled").map((c) => c.args)).toEqual([{ name: "web", enabled: false }]);
    await waitFor(() => expect(screen.getByTestId("rule-toggle-web").getAttribute("aria-checked")).toBe("false"));
    expect(screen.getByTestId("rule-status-web").textContent).toBe("switched off");
  });

  it("a failed toggle leaves the switch as the engine has it and shows the error in the banner", async () => {
    const b = await renderApp(
      backend({
        rule_set_enabled: () => {
          throw appError({ code: "engine", message: "address already in use", rule: "db", retryable: true });
        },
      }),
    );
    await fireEvent.click(screen.getByTestId("rule-toggle-db"));
    const banner = await screen.findByTestId("error-banner");
    expect(banner.textContent).toContain("Rule “db”: address already in use");
    expect(screen.getByTestId("rule-toggle-db").getAttribute("aria-checked")).toBe("true");
    // retryable: Retry sends the same command again
    await fireEvent.click(screen.getByTestId("error-retry"));
    await waitFor(() => expect(b.callsOf("rule_set_enabled")).toHaveLength(2));
    expect(b.callsOf("rule_set_enabled")[1].args).toEqual({ name: "db", enabled: false });
  });

  it("rows are keyboard navigable: arrows move, Space toggles, Enter edits", async () => {
    const b = await renderApp(backend({ rule_set_enabled: () => snapshot() }));
    const web = screen.getByTestId("rule-row-web");
    const dns = screen.getByTestId("rule-row-dns");
    expect(web.getAttribute("tabindex")).toBe("0");
    expect(dns.getAttribute("tabindex")).toBe("-1");
    web.focus();
    await fireEvent.keyDown(web, { key: "ArrowDown" });
    await waitFor(() => expect(document.activeElement).toBe(dns));
    expect(dns.getAttribute("tabindex")).toBe("0");
    expect(web.getAttribute("tabindex")).toBe("-1");
    await fireEvent.keyDown(dns, { key: " " });
    expect(b.callsOf("rule_set_enabled").map((c) => c.args)).toEqual([{ name: "dns", enabled: false }]);
    await fireEvent.keyDown(dns, { key: "ArrowUp" });
    await waitFor(() => expect(document.activeElement).toBe(web));
    await fireEvent.keyDown(web, { key: "Enter" });
    const editor = await screen.findByTestId("rule-editor");
    expect((within(editor).getByTestId("field-name") as HTMLInputElement).value).toBe("web");
  });

  it("Delete asks first, then calls rule_delete", async () => {
    const after = snapshot();
    after.rules = after.rules.filter((r) => r.rule.name !== "db");
    const b = await renderApp(backend({ rule_delete: () => after }));
    await fireEvent.click(screen.getByTestId("delete-rule-db"));
    expect(b.callsOf("rule_delete")).toHaveLength(0);
    await fireEvent.click(screen.getByTestId("confirm-delete-db"));
    expect(b.callsOf("rule_delete").map((c) => c.args)).toEqual([{ name: "db" }]);
    await waitFor(() => expect(screen.queryByTestId("rule-row-db")).toBeNull());
  });

  it("switching profile calls profile_switch", async () => {
    const b = await renderApp(backend({ profile_switch: () => snapshot({ activeProfile: "office", rules: [] }) }));
    await fireEvent.change(screen.getByTestId("profile-select"), { target: { value: "office" } });
    expect(b.callsOf("profile_switch").map((c) => c.args)).toEqual([{ name: "office" }]);
    await screen.findByTestId("rules-empty");
    expect((screen.getByTestId("profile-select") as HTMLSelectElement).value).toBe("office");
  });

  it("when app_snapshot fails the window explains instead of staying blank, and can retry", async () => {
    let fail = true;
    backend({
      app_snapshot: () => {
        if (fail) throw appError({ code: "storage", message: "cannot read ~/.config/portway/settings.json: permission denied" });
        return snapshot();
      },
    });
    render(App);
    const box = await screen.findByTestId("load-error");
    expect(box.textContent).toContain("permission denied");
    fail = false;
    await fireEvent.click(screen.getByTestId("load-retry"));
    await screen.findByTestId("rule-row-web");
  });
});

describe("live stats", () => {
  it("a stats frame updates the connection count, rates and total bytes", async () => {
    const b = await renderApp();
    await waitFor(() => expect(b.subscribed).toBe(true));
    b.push(frame([stats("web", { active: 3, total: 10, bytesIn: 1000, bytesOut: 2345, rateIn: 2048, rateOut: 512 })]));
    await waitFor(() => expect(screen.getByTestId("rule-conns-web").textContent).toBe("3"));
    const bytes = screen.getByTestId("rule-bytes-web");
    expect(bytes.getAttribute("data-bytes-total")).toBe("3345");
    expect(bytes.getAttribute("title")).toContain("3,345 bytes");
    expect(bytes.textContent).toContain("2.0 KiB/s");
    expect(bytes.textContent).toContain("512 B/s");
    expect(screen.getByTestId("rule-spark-web").getAttribute("data-samples")).toBe("1");
    expect(screen.getByTestId("rule-conns-dns").textContent).toBe("0");
  });

  it("a frame newer than the snapshot shows a rule that failed since, with the engine's message", async () => {
    const b = await renderApp();
    await waitFor(() => expect(b.subscribed).toBe(true));
    expect(screen.getByTestId("rule-status-web").textContent).toBe("running");
    b.push(frame([stats("web", { state: "failed", error: "127.0.0.1:8080: address already in use" })], Date.now() + 1000));
    await waitFor(() => expect(screen.getByTestId("rule-status-web").textContent).toBe("failed"));
    expect(screen.getByTestId("rule-error-web").textContent).toBe("127.0.0.1:8080: address already in use");
  });

  it("a running rule shows its latest error from the engine, and no error line while there is none", async () => {
    const b = await renderApp();
    await waitFor(() => expect(b.subscribed).toBe(true));
    b.push(frame([stats("web", { active: 1 })], Date.now() + 1000));
    await waitFor(() => expect(screen.getByTestId("rule-conns-web").textContent).toBe("1"));
    expect(screen.queryByTestId("rule-last-error-web")).toBeNull();
    const msg = 'chain "c" hop "hop-1" node "a" (127.0.0.12:1080): socks5: authentication failed (server rejected user "u")';
    b.push(frame([stats("web", { errors: 1, lastError: msg, lastErrorAt: Date.now() })], Date.now() + 2000));
    await waitFor(() => expect(screen.getByTestId("rule-last-error-web").textContent).toContain(msg));
    expect(screen.getByTestId("rule-status-web").textContent).toBe("running");
  });

  it("a frame older than the snapshot does not undo the snapshot's state", async () => {
    const b = await renderApp(backend({}, snapshot({ rules: [ruleView({ enabled: false, state: "disabled" })] })));
    await waitFor(() => expect(b.subscribed).toBe(true));
    b.push(frame([stats("web", { active: 2, state: "running" })], 1));
    await waitFor(() => expect(screen.getByTestId("rule-conns-web").textContent).toBe("2"));
    expect(screen.getByTestId("rule-status-web").textContent).toBe("switched off");
  });

  it("pauses updates while the document is hidden and resumes on visibilitychange", async () => {
    const b = await renderApp();
    await waitFor(() => expect(b.subscribed).toBe(true));
    b.push(frame([stats("web", { active: 1 })]));
    await waitFor(() => expect(screen.getByTestId("rule-conns-web").textContent).toBe("1"));

    setHidden(true);
    b.push(frame([stats("web", { active: 5 })]));
    b.push(frame([stats("web", { active: 6 })]));
    // Give a render every chance to happen.
    await new Promise((r) => setTimeout(r, 60));
    expect(screen.getByTestId("rule-conns-web").textContent).toBe("1");

    setHidden(false);
    await waitFor(() => expect(screen.getByTestId("rule-conns-web").textContent).toBe("6"));
    expect(screen.getByTestId("rule-spark-web").getAttribute("data-samples")).toBe("3");
  });
});

describe("rule editor", () => {
  async function openNew() {
    await fireEvent.click(screen.getByTestId("new-rule"));
    return screen.findByTestId("rule-editor");
  }

  it("shows the engine's error next to the field it names (targets.1 → the second target)", async () => {
    const b = await renderApp(
      backend({
        rule_save: () => {
          throw appError({ code: "invalid", message: '"10.0.0.9:99999": port out of range', rule: "api", field: "targets.1" });
        },
      }),
    );
    const editor = await openNew();
    const user = userEvent.setup();
    await user.type(within(editor).getByTestId("field-name"), "api");
    await user.type(within(editor).getByTestId("field-listen"), "127.0.0.1:9000");
    await user.type(within(editor).getByTestId("field-target-0"), "10.0.0.8:80");
    await user.click(within(editor).getByTestId("add-target"));
    await user.type(within(editor).getByTestId("field-target-1"), "10.0.0.9:9999");
    await user.click(within(editor).getByTestId("save-rule"));

    await waitFor(() => expect(b.callsOf("rule_save")).toHaveLength(1));
    expect(b.callsOf("rule_save")[0].args).toMatchObject({
      original: null,
      draft: { name: "api", listen: "127.0.0.1:9000", targets: ["10.0.0.8:80", "10.0.0.9:9999"], kind: "localTcp" },
    });
    const err = await within(editor).findByTestId("error-targets.1");
    expect(err.textContent).toBe('"10.0.0.9:99999": port out of range');
    expect(within(editor).getByTestId("field-target-1").getAttribute("aria-invalid")).toBe("true");
    expect(within(editor).queryByTestId("error-targets.0")).toBeNull();
    expect(screen.queryByTestId("error-banner")).toBeNull();
    // Editing the field clears the engine's complaint.
    await user.clear(within(editor).getByTestId("field-target-1"));
    await user.type(within(editor).getByTestId("field-target-1"), "10.0.0.9:9000");
    expect(within(editor).queryByTestId("error-targets.1")).toBeNull();
  });

  it("an error without a field goes to the banner and the editor stays open", async () => {
    await renderApp(
      backend({
        rule_save: () => {
          throw appError({ code: "storage", message: "disk full", retryable: false });
        },
      }),
    );
    await fireEvent.click(screen.getByTestId("edit-rule-web"));
    const editor = await screen.findByTestId("rule-editor");
    await fireEvent.click(within(editor).getByTestId("save-rule"));
    expect((await screen.findByTestId("error-banner")).textContent).toContain("disk full");
    expect(screen.getByTestId("rule-editor")).toBeTruthy();
  });

  it("flags obvious mistakes inline and sends nothing", async () => {
    const b = await renderApp();
    const editor = await openNew();
    await fireEvent.input(within(editor).getByTestId("field-listen"), { target: { value: "8080" } });
    await fireEvent.click(within(editor).getByTestId("save-rule"));
    expect(within(editor).getByTestId("error-name").textContent).toBe("a rule needs a name");
    expect(within(editor).getByTestId("error-listen").textContent).toContain("not host:port");
    expect(within(editor).getByTestId("error-targets.0").textContent).toContain("host:port");
    expect(b.callsOf("rule_save")).toHaveLength(0);
  });

  it("editing sends the original name and closes on success", async () => {
    const b = await renderApp(backend({ rule_save: () => snapshot() }));
    await fireEvent.click(screen.getByTestId("edit-rule-web"));
    const editor = await screen.findByTestId("rule-editor");
    await fireEvent.input(within(editor).getByTestId("field-name"), { target: { value: "web-new" } });
    await fireEvent.change(within(editor).getByTestId("field-strategy"), { target: { value: "hash" } });
    await fireEvent.click(within(editor).getByTestId("save-rule"));
    await waitFor(() => expect(screen.queryByTestId("rule-editor")).toBeNull());
    expect(b.callsOf("rule_save")[0].args).toMatchObject({ original: "web", draft: { name: "web-new", strategy: "hash" } });
  });

  it("reorders targets and shows UDP options and the chain picker by kind", async () => {
    await renderApp();
    await fireEvent.click(screen.getByTestId("edit-rule-dns"));
    const editor = await screen.findByTestId("rule-editor");
    expect(within(editor).getByTestId("udp-options")).toBeTruthy();
    await fireEvent.click(within(editor).getByTestId("target-down-0"));
    expect((within(editor).getByTestId("field-target-0") as HTMLInputElement).value).toBe("8.8.8.8:53");
    expect((within(editor).getByTestId("field-target-1") as HTMLInputElement).value).toBe("1.1.1.1:53");
    const chain = within(editor).getByTestId("field-chain") as HTMLSelectElement;
    expect([...chain.options].map((o) => o.value)).toEqual(["", "via-bastion"]);
    await fireEvent.change(within(editor).getByTestId("field-kind"), { target: { value: "serverSide" } });
    expect(within(editor).queryByTestId("field-chain")).toBeNull();
    expect(within(editor).queryByTestId("udp-options")).toBeNull();
  });

  it("shows the GOST equivalent from rule_preview", async () => {
    const b = await renderApp(
      backend({ rule_preview: () => ({ cmdline: "gost -L tcp://127.0.0.1:8080/127.0.0.1:8000", yaml: "services:\n- name: web\n  addr: 127.0.0.1:8080\n" }) }),
    );
    await fireEvent.click(screen.getByTestId("edit-rule-web"));
    const editor = await screen.findByTestId("rule-editor");
    const cmd = await within(editor).findByTestId("preview-cmdline", {}, { timeout: 2000 });
    expect(cmd.textContent).toBe("gost -L tcp://127.0.0.1:8080/127.0.0.1:8000");
    expect(within(editor).getByTestId("preview-yaml").textContent).toContain("addr: 127.0.0.1:8080");
    expect(b.callsOf("rule_preview")[0].args).toEqual({ draft: snapshot().rules[0].rule });
  });

  it("masks passwords in the GOST equivalent until asked, and copies the real text", async () => {
    const cmdline = "gost -L tcp://127.0.0.1:8080/127.0.0.1:8000 -F socks5://bob:s3cr3t@127.0.0.1:1080";
    const yaml = "chains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - name: n\n      addr: 127.0.0.1:1080\n      connector:\n        type: socks5\n        auth:\n          username: bob\n          password: s3cr3t\n";
    await renderApp(backend({ rule_preview: () => ({ cmdline, yaml }) }));
    const written: string[] = [];
    Object.defineProperty(navigator, "clipboard", { value: { writeText: async (t: string) => void written.push(t) }, configurable: true });
    await fireEvent.click(screen.getByTestId("edit-rule-web"));
    const editor = await screen.findByTestId("rule-editor");
    const cmd = await within(editor).findByTestId("preview-cmdline", {}, { timeout: 2000 });
    expect(cmd.textContent).toBe("gost -L tcp://127.0.0.1:8080/127.0.0.1:8000 -F socks5://bob:••••@127.0.0.1:1080");
    expect(within(editor).getByTestId("preview-yaml").textContent).not.toContain("s3cr3t");
    await fireEvent.click(within(editor).getByTestId("copy-cmdline"));
    await waitFor(() => expect(written).toEqual([cmdline]));
    await fireEvent.click(within(editor).getByTestId("preview-show-secrets"));
    expect(within(editor).getByTestId("preview-cmdline").textContent).toBe(cmdline);
    expect(within(editor).getByTestId("preview-yaml").textContent).toContain("password: s3cr3t");
  });

  it("Duplicate opens a new rule with a free name", async () => {
    await renderApp();
    await fireEvent.click(screen.getByTestId("duplicate-rule-web"));
    const editor = await screen.findByTestId("rule-editor");
    expect((within(editor).getByTestId("field-name") as HTMLInputElement).value).toBe("web-2");
  });
});

describe("import", () => {
  const preview = {
    format: "yaml",
    rules: [
      { name: "ssh", kind: "localTcp", listen: ":2222", targets: ["10.0.0.2:22"], strategy: "round", maxFails: 1, failTimeoutSecs: 10, keepAlive: false, ttlSecs: 5, chain: "" },
    ],
    otherServices: ["proxy"],
    chains: ["hop1"],
    warnings: ['services[0].limiter: "lim" is kept but not acted on', "bypasses: not supported, kept in the file"],
  };

  it("Preview lists the rules, chains and every warning; Import writes it under the chosen name", async () => {
    const b = await renderApp(
      backend({
        profile_import_preview: () => preview,
        profile_import: () => snapshot({ activeProfile: "lab", profiles: ["default", "office", "lab"] }),
      }),
    );
    await fireEvent.click(screen.getByTestId("import-open"));
    const dialog = await screen.findByTestId("import-dialog");
    expect((within(dialog).getByTestId("import-confirm") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(within(dialog).getByTestId("import-text"), { target: { value: "services:\n- name: ssh\n" } });
    await fireEvent.click(within(dialog).getByTestId("import-preview"));
    const warnings = await within(dialog).findByTestId("import-warnings");
    expect(within(warnings).getAllByRole("listitem").map((li) => li.textContent)).toEqual(preview.warnings);
    expect(within(dialog).getByTestId("import-rule-ssh").textContent).toContain("10.0.0.2:22");
    expect(within(dialog).getByTestId("import-chains").textContent).toContain("hop1");
    expect(within(dialog).getByTestId("import-other-services").textContent).toContain("proxy");
    expect(b.callsOf("profile_import_preview")[0].args).toEqual({ text: "services:\n- name: ssh\n", fileName: null });

    await fireEvent.input(within(dialog).getByTestId("import-name"), { target: { value: "lab" } });
    const confirm = within(dialog).getByTestId("import-confirm") as HTMLButtonElement;
    expect(confirm.textContent?.trim()).toBe("Import as lab");
    await fireEvent.click(confirm);
    await waitFor(() => expect(screen.queryByTestId("import-dialog")).toBeNull());
    expect(b.callsOf("profile_import")[0].args).toEqual({ text: "services:\n- name: ssh\n", fileName: null, name: "lab" });
    expect((screen.getByTestId("profile-select") as HTMLSelectElement).value).toBe("lab");
  });

  it("shows a parse error in the dialog and refuses an existing profile name", async () => {
    await renderApp(
      backend({
        profile_import_preview: (args) => {
          if (String(args.text).startsWith("bad")) throw appError({ code: "parse", message: "line 2: mapping values are not allowed here" });
          return preview;
        },
      }),
    );
    await fireEvent.click(screen.getByTestId("import-open"));
    const dialog = await screen.findByTestId("import-dialog");
    await fireEvent.input(within(dialog).getByTestId("import-text"), { target: { value: "bad: : yaml" } });
    await fireEvent.click(within(dialog).getByTestId("import-preview"));
    expect((await within(dialog).findByTestId("import-error")).textContent).toContain("line 2: mapping values");
    await fireEvent.input(within(dialog).getByTestId("import-text"), { target: { value: "gost -L tcp://:2222/10.0.0.2:22" } });
    await fireEvent.click(within(dialog).getByTestId("import-preview"));
    await within(dialog).findByTestId("import-warnings");
    await fireEvent.input(within(dialog).getByTestId("import-name"), { target: { value: "office" } });
    expect(within(dialog).getByTestId("error-import-name").textContent).toContain("already a profile");
    expect((within(dialog).getByTestId("import-confirm") as HTMLButtonElement).disabled).toBe(true);
  });

  it("reads a chosen file and previews it with its file name", async () => {
    const b = await renderApp(backend({ profile_import_preview: () => preview }));
    await fireEvent.click(screen.getByTestId("import-open"));
    const dialog = await screen.findByTestId("import-dialog");
    const file = new File(["services:\n- name: ssh\n"], "office-vpn.yaml", { type: "application/yaml" });
    await userEvent.setup().upload(within(dialog).getByTestId("import-file") as HTMLInputElement, file);
    await within(dialog).findByTestId("import-warnings");
    expect(b.callsOf("profile_import_preview")[0].args).toEqual({ text: "services:\n- name: ssh\n", fileName: "office-vpn.yaml" });
    expect((within(dialog).getByTestId("import-name") as HTMLInputElement).value).toBe("office-vpn");
  });
});

describe("profiles", () => {
  it("New profile calls profile_create and shows the new, empty profile", async () => {
    const b = await renderApp(
      backend({ profile_create: () => snapshot({ profiles: ["default", "office", "home"], activeProfile: "home", rules: [] }) }),
    );
    await fireEvent.click(screen.getByTestId("new-profile"));
    const dialog = await screen.findByTestId("new-profile-dialog");
    await fireEvent.input(within(dialog).getByTestId("new-profile-name"), { target: { value: "home" } });
    await fireEvent.click(within(dialog).getByTestId("new-profile-create"));
    await screen.findByTestId("rules-empty");
    expect(b.callsOf("profile_create").map((c) => c.args)).toEqual([{ name: "home" }]);
    expect((screen.getByTestId("profile-select") as HTMLSelectElement).value).toBe("home");
  });

  it("a file dropped on the window opens Import with its text and previews it", async () => {
    const b = await renderApp(
      backend({ profile_import_preview: () => ({ format: "cmdline", rules: [], otherServices: [], chains: [], warnings: ["dropped"] }) }),
    );
    const file = new File(["gost -L tcp://:8080/127.0.0.1:80"], "fwd.txt", { type: "text/plain" });
    await fireEvent.drop(window, { dataTransfer: { files: [file], types: ["Files"] } });
    const dialog = await screen.findByTestId("import-dialog");
    expect((within(dialog).getByTestId("import-text") as HTMLTextAreaElement).value).toBe("gost -L tcp://:8080/127.0.0.1:80");
    expect(within(dialog).getByTestId("import-file-name").textContent).toContain("fwd.txt");
    expect((await within(dialog).findByTestId("import-warning-0")).textContent).toBe("dropped");
    expect(b.callsOf("profile_import_preview")[0].args).toEqual({ text: "gost -L tcp://:8080/127.0.0.1:80", fileName: "fwd.txt" });
    expect((within(dialog).getByTestId("import-name") as HTMLInputElement).value).toBe("fwd");
  });
});
