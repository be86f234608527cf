// The Logs view against a scripted backend: the stream's lifecycle (open, hidden,
// closed), filters, Pause and Copy as a user sees them.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import App from "../../App.svelte";
import LogsHarness from "../../test/LogsHarness.svelte";
import type { Channel } from "@tauri-apps/api/core";
import type { LogBatch } from "../bindings/LogBatch";
import type { LogEntry } from "../bindings/LogEntry";
import { copyText } from "../logs";
import { backend, setHidden } from "../../test/fixtures";

function entry(seq: number, over: Partial<LogEntry> = {}): LogEntry {
  return { seq, time: 1_767_323_045_000 + seq, level: "info", rule: "web", message: `line ${seq}`, fields: [], ...over };
}

/** A backend whose logs_subscribe hands out ids and keeps the channel to push batches. */
function logsBackend() {
  let channel: Channel<LogBatch> | null = null;
  let index = 0;
  let next = 1;
  const b = backend({
    logs_subscribe: (args) => {
      channel = args.onBatch as Channel<LogBatch>;
      index = 0;
      return next++;
    },
    logs_unsubscribe: () => true,
  });
  return {
    ...b,
    push(lines: LogEntry[]) {
      if (!channel) throw new Error("no logs channel");
      const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
      internals.runCallback(channel.id, { index: index++, message: { lines } });
    },
  };
}

async function openLogs() {
  const b = logsBackend();
  render(App);
  await fireEvent.click(await screen.findByTestId("tab-logs"));
  await waitFor(() => expect(b.callsOf("logs_subscribe").length).toBe(1));
  return b;
}

function shownSeqs(): number[] {
  return screen.queryAllByTestId("log-line").map((e) => Number(e.getAttribute("data-seq")));
}

let writeText: ReturnType<typeof vi.fn>;
beforeEach(() => {
  writeText = vi.fn(async () => {});
  Object.defineProperty(navigator, "clipboard", { configurable: true, value: { writeText } });
});
afterEach(() => {
  delete (navigator as unknown as Record<string, unknown>).clipboard;
});

describe("Logs view", () => {
  it("subscribes when opened, shows the batches, and unsubscribes when closed", async () => {
    const b = await openLogs();
    expect(b.callsOf("logs_subscribe")[0].args.after).toBe(0);
    expect(screen.getByTestId("logs-empty").textContent).toContain("No log lines yet");
    b.push([entry(1), entry(2, { level: "warn", rule: "db", message: "dial 10.0.0.5:5432: connection refused", fields: [{ name: "target", value: "10.0.0.5:5432" }] })]);
    await waitFor(() => expect(shownSeqs()).toEqual([1, 2]));
    const warn = screen.getAllByTestId("log-line")[1];
    expect(warn.textContent).toContain("WARN");
    expect(warn.textContent).toContain("db");
    expect(warn.textContent).toContain("connection refused");
    expect(warn.textContent).toContain("target=10.0.0.5:5432");

    await fireEvent.click(screen.getByTestId("tab-rules"));
    await waitFor(() => expect(b.callsOf("logs_unsubscribe").map((c) => c.args.id)).toEqual([1]));
  });

  it("stops while the window is hidden and continues after the last line it has", async () => {
    const b = await openLogs();
    b.push([entry(7), entry(8)]);
    await waitFor(() => expect(shownSeqs()).toEqual([7, 8]));
    setHidden(true);
    await waitFor(() => expect(b.callsOf("logs_unsubscribe").length).toBe(1));
    setHidden(false);
    await waitFor(() => expect(b.callsOf("logs_subscribe").length).toBe(2));
    expect(b.callsOf("logs_subscribe")[1].args.after).toBe(8);
    // The new stream's first batch may repeat a line: shown once.
    b.push([entry(8), entry(9)]);
    await waitFor(() => expect(shownSeqs()).toEqual([7, 8, 9]));
  });

  it("filters by level, rule and text; the rule list has the profile's rules and the lines'", async () => {
    const b = await openLogs();
    b.push([
      entry(1, { level: "error", rule: "db", message: "bind 127.0.0.1:5432: address in use" }),
      entry(2, { level: "warn", rule: "web", message: "dial 127.0.0.1:9: connection refused" }),
      entry(3, { level: "info", rule: "ghost", message: "tcp listening on 127.0.0.1:7000" }),
      entry(4, { level: "debug", rule: null, message: "smux session ends" }),
    ]);
    await waitFor(() => expect(shownSeqs()).toEqual([1, 2, 3, 4]));
    const ruleSelect = screen.getByTestId("logs-rule") as HTMLSelectElement;
    expect([...ruleSelect.options].map((o) => o.value)).toEqual(["", "db", "dns", "ghost", "socks-proxy", "web"]);

    await fireEvent.change(screen.getByTestId("logs-level"), { target: { value: "warn" } });
    expect(shownSeqs()).toEqual([1, 2]);
    expect(screen.getByTestId("logs-count").textContent).toBe("2 of 4");
    await fireEvent.change(ruleSelect, { target: { value: "web" } });
    expect(shownSeqs()).toEqual([2]);
    await fireEvent.change(ruleSelect, { target: { value: "dns" } });
    expect(shownSeqs()).toEqual([]);
    expect(screen.getByTestId("logs-empty").textContent).toContain("No lines match");
    await fireEvent.click(screen.getByTestId("logs-clear-filters"));
    expect(shownSeqs()).toEqual([1, 2, 3, 4]);
    await fireEvent.input(screen.getByTestId("logs-search"), { target: { value: "SMUX" } });
    expect(shownSeqs()).toEqual([4]);
  });

  it("Pause stops appending and counts new lines; Resume shows them", async () => {
    const b = await openLogs();
    b.push([entry(1)]);
    await waitFor(() => expect(shownSeqs()).toEqual([1]));
    const pause = screen.getByTestId("logs-pause");
    await fireEvent.click(pause);
    expect(pause.textContent).toBe("Resume");
    expect(pause.getAttribute("aria-pressed")).toBe("true");
    b.push([entry(2), entry(3, { level: "error" })]);
    await waitFor(() => expect(screen.getByTestId("logs-new").textContent).toContain("2 new lines"));
    expect(shownSeqs()).toEqual([1]);
    // The count follows the filters: only what Resume would show.
    await fireEvent.change(screen.getByTestId("logs-level"), { target: { value: "error" } });
    expect(screen.getByTestId("logs-new").textContent).toContain("1 new line");
    await fireEvent.change(screen.getByTestId("logs-level"), { target: { value: "trace" } });
    await fireEvent.click(pause);
    expect(screen.queryByTestId("logs-new")).toBeNull();
    expect(shownSeqs()).toEqual([1, 2, 3]);
  });

  it("Copy writes the shown lines as text", async () => {
    const b = await openLogs();
    const lines = [entry(1, { rule: "db", level: "error", message: "refused" }), entry(2, { rule: "web" })];
    b.push(lines);
    await waitFor(() => expect(shownSeqs()).toEqual([1, 2]));
    await fireEvent.change(screen.getByTestId("logs-rule"), { target: { value: "db" } });
    await fireEvent.click(screen.getByTestId("logs-copy"));
    await waitFor(() => expect(writeText).toHaveBeenCalledTimes(1));
    expect(writeText.mock.calls[0][0]).toBe(copyText([lines[0]]));
    expect(await screen.findByTestId("logs-status")).toHaveProperty("textContent", "Copied 1 line");
  });

  it("when the clipboard refuses, the lines are selected for Ctrl+C", async () => {
    writeText.mockRejectedValueOnce(new Error("denied"));
    const b = await openLogs();
    b.push([entry(1, { message: "only line" })]);
    await waitFor(() => expect(shownSeqs()).toEqual([1]));
    await fireEvent.click(screen.getByTestId("logs-copy"));
    expect((await screen.findByTestId("logs-status")).textContent).toContain("press Ctrl+C");
    expect(window.getSelection()?.toString()).toContain("only line");
  });

  // The 5,000 default is LogTail's (logs.test.ts); jsdom renders that many rows too
  // slowly for a unit test, so the view runs with a bound of 100 here.
  it("keeps at most its bound of lines, the newest", async () => {
    const b = logsBackend();
    render(LogsHarness, { maxLines: 100 });
    await waitFor(() => expect(b.callsOf("logs_subscribe").length).toBe(1));
    const many: LogEntry[] = [];
    for (let s = 1; s <= 250; s++) many.push(entry(s));
    b.push(many.slice(0, 200));
    b.push(many.slice(200));
    await waitFor(() => expect(shownSeqs().length).toBe(100));
    expect(shownSeqs()[0]).toBe(151);
    expect(shownSeqs()[99]).toBe(250);
  });

  it("says so when the stream cannot start", async () => {
    backend({ logs_subscribe: () => { throw { code: "engine", message: "engine stopped", rule: null, field: null, retryable: false }; } });
    render(App);
    await fireEvent.click(await screen.findByTestId("tab-logs"));
    expect((await screen.findByTestId("logs-error")).textContent).toContain("engine stopped");
  });
});
