// The Connections view against a scripted backend: the stream's frames become rows,
// headers sort, filters narrow, Close and Close-all call the backend with the right
// ids, recently closed renders, and the stream runs only while the view is open and
// the window visible.
import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import type { Channel } from "@tauri-apps/api/core";
import App from "../../App.svelte";
import type { ClosedConn } from "../bindings/ClosedConn";
import type { ConnRow } from "../bindings/ConnRow";
import type { ConnsFrame } from "../bindings/ConnsFrame";
import { appError, backend, setHidden, type Handler } from "../../test/fixtures";

function row(id: number, over: Partial<ConnRow> = {}): ConnRow {
  return { id, rule: "web", network: "tcp", client: `127.0.0.1:${40000 + id}`, target: "127.0.0.1:8000", node: "target-0", since: 100_000, bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0, ...over };
}

const ROWS = [
  row(1, { bytesIn: 300, client: "10.1.1.1:5000" }),
  row(2, { rule: "db", target: "10.0.0.5:5432", bytesIn: 100, node: "primary" }),
  row(3, { bytesIn: 200, since: 90_000 }),
];

/** A scripted backend with the connections commands; `push` sends down the latest stream. */
async function openView(handlers: Record<string, Handler> = {}) {
  let channel: Channel<ConnsFrame> | null = null;
  let nextId = 0;
  let index = 0;
  const b = backend({
    conns_subscribe: (args) => {
      channel = args.onFrame as Channel<ConnsFrame>;
      index = 0;
      return ++nextId;
    },
    conns_unsubscribe: () => null,
    conn_close: () => null,
    conns_close: (args) => (args.ids as number[]).length,
    ...handlers,
  });
  render(App);
  await screen.findByTestId("rule-row-web");
  await fireEvent.click(screen.getByTestId("tab-connections"));
  await waitFor(() => expect(b.callsOf("conns_subscribe").length).toBe(1));
  const push = (f: Partial<ConnsFrame>) => {
    const internals = (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__;
    const full: ConnsFrame = { time: 110_000, reset: false, upsert: [], update: [], removed: [], closed: [], live: 0, ...f };
    internals.runCallback(channel!.id, { index: index++, message: full });
  };
  return { b, push };
}

function bodyRows(): HTMLElement[] {
  return within(screen.getByTestId("conns-table")).getAllByRole("row").slice(1);
}

function ids(): string[] {
  return bodyRows().filter((r) => r.dataset.testid).map((r) => r.dataset.testid!.replace("conn-row-", ""));
}

describe("Connections view", () => {
  it("lists the stream's rows with rule, client, target, node, age and bytes, and applies changes", async () => {
    const { push } = await openView();
    push({ reset: true, upsert: ROWS, live: 3 });
    await screen.findByTestId("conn-row-1");
    const cells = within(screen.getByTestId("conn-row-3")).getAllByRole("cell").map((c) => c.textContent?.trim());
    expect(cells.slice(0, 7)).toEqual(["web", "127.0.0.1:40003", "127.0.0.1:8000", "target-0", "20 s", "200 B", "0 B"]);
    expect(screen.getByTestId("conns-live-count").textContent).toBe("3");

    push({ time: 111_000, update: [[3, 4096, 0, 2048, 0]], removed: [1], live: 2 });
    await waitFor(() => expect(screen.queryByTestId("conn-row-1")).toBeNull());
    const cells2 = within(screen.getByTestId("conn-row-3")).getAllByRole("cell").map((c) => c.textContent?.trim());
    expect(cells2.slice(4, 9)).toEqual(["21 s", "4.0 KiB", "0 B", "2.0 KiB/s", "0 B/s"]);
  });

  it("sorts by a clicked header, both ways, with aria-sort on that column", async () => {
    const { push } = await openView();
    push({ reset: true, upsert: ROWS, live: 3 });
    await screen.findByTestId("conn-row-1");
    // Default: age ascending, newest first (3 is the oldest).
    expect(ids()).toEqual(["1", "2", "3"]);
    const header = screen.getByTestId("conns-sort-bytesIn");
    header.focus();
    expect(document.activeElement).toBe(header); // a button: Tab reaches it, Enter clicks it
    await fireEvent.click(header);
    expect(ids()).toEqual(["1", "3", "2"]);
    expect(header.closest("th")!.getAttribute("aria-sort")).toBe("descending");
    expect(screen.getByTestId("conns-sort-age").closest("th")!.getAttribute("aria-sort")).toBe("none");
    await fireEvent.click(header);
    expect(ids()).toEqual(["2", "3", "1"]);
    expect(header.closest("th")!.getAttribute("aria-sort")).toBe("ascending");
  });

  it("filters by rule and by text in client, target or node", async () => {
    const { push } = await openView();
    push({ reset: true, upsert: ROWS, live: 3 });
    await screen.findByTestId("conn-row-1");
    const select = screen.getByTestId("conns-filter-rule") as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(["", "db", "dns", "web"]);
    await fireEvent.change(select, { target: { value: "web" } });
    expect(ids().sort()).toEqual(["1", "3"]);
    expect(screen.getByTestId("conns-close-all").textContent).toContain("Close all shown (2)");
    const text = screen.getByTestId("conns-filter-text");
    await fireEvent.input(text, { target: { value: "10.1.1" } });
    expect(ids()).toEqual(["1"]);
    await fireEvent.change(select, { target: { value: "" } });
    await fireEvent.input(text, { target: { value: "PRIMARY" } });
    expect(ids()).toEqual(["2"]);
    await fireEvent.input(text, { target: { value: "nothing-like-this" } });
    expect(screen.getByTestId("conns-none-match")).toBeTruthy();
    expect((screen.getByTestId("conns-close-all") as HTMLButtonElement).disabled).toBe(true);
  });

  it("Close calls conn_close with the row's id; an error is shown", async () => {
    const { b, push } = await openView({
      conn_close: (args) => {
        if (args.id === 2) throw appError({ code: "engine", message: "could not close 2" });
        return null;
      },
    });
    push({ reset: true, upsert: ROWS, live: 3 });
    await fireEvent.click(await screen.findByTestId("conn-close-3"));
    expect(b.callsOf("conn_close").map((c) => c.args)).toEqual([{ id: 3 }]);
    expect((screen.getByTestId("conn-close-3") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.click(screen.getByTestId("conn-close-2"));
    expect((await screen.findByTestId("conns-error")).textContent).toContain("could not close 2");
  });

  it("Close all shown asks first, then closes exactly the filtered rows", async () => {
    const { b, push } = await openView();
    push({ reset: true, upsert: ROWS, live: 3 });
    await screen.findByTestId("conn-row-1");
    await fireEvent.change(screen.getByTestId("conns-filter-rule"), { target: { value: "web" } });
    await fireEvent.click(screen.getByTestId("conns-close-all"));
    expect(b.callsOf("conns_close")).toEqual([]);
    await fireEvent.click(screen.getByTestId("conns-close-all-cancel"));
    expect(b.callsOf("conns_close")).toEqual([]);
    await fireEvent.click(screen.getByTestId("conns-close-all"));
    await fireEvent.click(screen.getByTestId("conns-close-all-confirm"));
    const sent = b.callsOf("conns_close").map((c) => (c.args.ids as number[]).slice().sort());
    expect(sent).toEqual([[1, 3]]);
    expect((await screen.findByTestId("conns-notice")).textContent).toBe("Closed 2 connections.");
  });

  it("shows recently closed connections newest first with totals, duration and error", async () => {
    const { push } = await openView();
    const closed = (id: number, error: string | null): ClosedConn => ({ conn: row(id, { bytesIn: 2048, bytesOut: 512 }), closedAt: 100_000 + id, durationMs: 65_000, error });
    push({ reset: true, upsert: [], closed: [closed(7, null)], live: 0 });
    await screen.findByTestId("closed-row-7");
    expect(screen.getByTestId("conns-empty")).toBeTruthy();
    push({ closed: [closed(8, "connection reset by peer")] });
    await screen.findByTestId("closed-row-8");
    const rows = within(screen.getByTestId("conns-closed")).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.dataset.testid)).toEqual(["closed-row-8", "closed-row-7"]);
    expect(screen.getByTestId("conns-closed-count").textContent).toBe("2");
    const cells = within(rows[0]).getAllByRole("cell").map((c) => c.textContent?.trim());
    expect(cells.slice(1)).toEqual(["web", "127.0.0.1:40008", "127.0.0.1:8000", "target-0", "1 min 5 s", "2.0 KiB", "512 B", "connection reset by peer"]);
    expect(screen.getByTestId("closed-error-7").textContent).toBe("—");
  });

  it("renders only the rows in view of 1,000, and the others as the table scrolls", async () => {
    const { push } = await openView();
    push({ reset: true, upsert: Array.from({ length: 1000 }, (_, i) => row(i + 1, { since: 100_000 - i })), live: 1000 });
    await screen.findByTestId("conn-row-1");
    const n = bodyRows().filter((r) => r.dataset.testid?.startsWith("conn-row-")).length;
    expect(n).toBeGreaterThan(10);
    expect(n).toBeLessThan(50);
    expect(screen.getByTestId("conns-table").getAttribute("aria-rowcount")).toBe("1001");
    expect(screen.getByTestId("conns-live-count").textContent).toBe("1,000");
    expect(screen.getByTestId("conns-close-all").textContent).toContain("(1,000)");
    // Scrolled to row 500 (29 px each): rows around it are rendered, the first are not.
    const box = screen.getByTestId("conns-scroll");
    box.scrollTop = 500 * 29;
    await fireEvent.scroll(box);
    await screen.findByTestId("conn-row-501");
    expect(screen.queryByTestId("conn-row-1")).toBeNull();
    expect(screen.getByTestId("conn-row-501").getAttribute("aria-rowindex")).toBe("502");
  });

  it("stops the stream while hidden or when another view is shown, and starts it again", async () => {
    const { b, push } = await openView();
    push({ reset: true, upsert: ROWS, live: 3 });
    setHidden(true);
    await waitFor(() => expect(b.callsOf("conns_unsubscribe").map((c) => c.args)).toEqual([{ id: 1 }]));
    expect(screen.getByTestId("conns-paused")).toBeTruthy();
    setHidden(false);
    await waitFor(() => expect(b.callsOf("conns_subscribe").length).toBe(2));
    await fireEvent.click(screen.getByTestId("tab-rules"));
    await waitFor(() => expect(b.callsOf("conns_unsubscribe").map((c) => c.args)).toEqual([{ id: 1 }, { id: 2 }]));
    expect(b.callsOf("conns_subscribe").length).toBe(2);
  });

  it("does not subscribe while the window is hidden", async () => {
    setHidden(true);
    const b = backend({ conns_subscribe: () => 1 });
    render(App);
    await screen.findByTestId("rule-row-web");
    await fireEvent.click(screen.getByTestId("tab-connections"));
    await screen.findByTestId("conns-paused");
    expect(b.callsOf("conns_subscribe")).toEqual([]);
  });
});
