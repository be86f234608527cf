import { describe, expect, it } from "vitest";
import type { ClosedConn } from "./bindings/ClosedConn";
import type { ConnRow } from "./bindings/ConnRow";
import type { ConnsFrame } from "./bindings/ConnsFrame";
import { ConnTable, filterRows, formatAge, nextSort, RECENT_MAX, sortRows, visibleRange } from "./conns";

function row(id: number, over: Partial<ConnRow> = {}): ConnRow {
  return { id, rule: "web", network: "tcp", client: `127.0.0.1:${50000 + id}`, target: "127.0.0.1:8000", node: "target-0", since: 1000 * id, bytesIn: 0, bytesOut: 0, rateIn: 0, rateOut: 0, ...over };
}

function closed(id: number, error: string | null = null): ClosedConn {
  return { conn: row(id), closedAt: 10_000 + id, durationMs: 500, error };
}

function frame(over: Partial<ConnsFrame> = {}): ConnsFrame {
  return { time: 5000, reset: false, upsert: [], update: [], removed: [], closed: [], live: 0, ...over };
}

describe("ConnTable", () => {
  it("builds the table from a reset frame and then from changes only", () => {
    const t = new ConnTable();
    t.apply(frame({ reset: true, upsert: [row(1), row(2), row(3)], closed: [closed(7), closed(8)], live: 3 }));
    expect([...t.rows.keys()]).toEqual([1, 2, 3]);
    expect(t.closed.map((c) => c.conn.id)).toEqual([8, 7]); // newest first
    t.apply(frame({ time: 6000, upsert: [row(4)], update: [[2, 99, 7, 50, 5], [42, 1, 1, 1, 1]], removed: [1], closed: [closed(1, "closed by user")], live: 3 }));
    expect([...t.rows.keys()].sort()).toEqual([2, 3, 4]);
    expect(t.rows.get(2)).toEqual(row(2, { bytesIn: 99, bytesOut: 7, rateIn: 50, rateOut: 5 }));
    expect(t.closed.map((c) => c.conn.id)).toEqual([1, 8, 7]);
    expect(t.time).toBe(6000);
    expect(t.live).toBe(3);
    // A new stream starts over.
    t.apply(frame({ reset: true, upsert: [row(9)], live: 1 }));
    expect([...t.rows.keys()]).toEqual([9]);
    expect(t.closed).toEqual([]);
  });

  it("keeps at most the last 200 closed connections", () => {
    const t = new ConnTable();
    for (let i = 0; i < 250; i += 10) t.apply(frame({ closed: Array.from({ length: 10 }, (_, k) => closed(i + k)) }));
    expect(t.closed.length).toBe(RECENT_MAX);
    expect(t.closed[0].conn.id).toBe(249);
    expect(t.closed[RECENT_MAX - 1].conn.id).toBe(50);
  });
});

describe("filterRows", () => {
  const rows = [row(1, { rule: "web", client: "10.0.0.5:4000" }), row(2, { rule: "db", target: "DB.internal:5432" }), row(3, { rule: "web", node: "backup-node" })];
  it("filters by rule", () => {
    expect(filterRows(rows, "web", "").map((r) => r.id)).toEqual([1, 3]);
    expect(filterRows(rows, "", "").map((r) => r.id)).toEqual([1, 2, 3]);
  });
  it("filters by text in client, target or node, ignoring case", () => {
    expect(filterRows(rows, "", "10.0.0.5").map((r) => r.id)).toEqual([1]);
    expect(filterRows(rows, "", "db.INTERNAL").map((r) => r.id)).toEqual([2]);
    expect(filterRows(rows, "", "backup").map((r) => r.id)).toEqual([3]);
    expect(filterRows(rows, "db", "backup")).toEqual([]);
  });
});

describe("sortRows", () => {
  const rows = () => [row(1, { bytesIn: 30, rateOut: 5, client: "127.0.0.1:10" }), row(2, { bytesIn: 10, rateOut: 50, client: "127.0.0.1:9" }), row(3, { bytesIn: 20, rateOut: 0, client: "127.0.0.1:100" })];
  it("sorts numbers both ways", () => {
    expect(sortRows(rows(), "bytesIn", "asc").map((r) => r.id)).toEqual([2, 3, 1]);
    expect(sortRows(rows(), "rateOut", "desc").map((r) => r.id)).toEqual([2, 1, 3]);
  });
  it("sorts addresses naturally (port 9 before 10 before 100)", () => {
    expect(sortRows(rows(), "client", "asc").map((r) => r.id)).toEqual([2, 1, 3]);
  });
  it("sorts age ascending as newest first", () => {
    expect(sortRows(rows(), "age", "asc").map((r) => r.id)).toEqual([3, 2, 1]);
    expect(sortRows(rows(), "age", "desc").map((r) => r.id)).toEqual([1, 2, 3]);
  });
  it("flips on the sorted column; numbers start largest first", () => {
    expect(nextSort("age", "asc", "age")).toBe("desc");
    expect(nextSort("age", "asc", "bytesIn")).toBe("desc");
    expect(nextSort("bytesIn", "desc", "client")).toBe("asc");
  });
});

describe("formatAge", () => {
  it("reads as seconds, minutes, hours, days", () => {
    expect(formatAge(-5)).toBe("0 s");
    expect(formatAge(4_900)).toBe("4 s");
    expect(formatAge(200_000)).toBe("3 min 20 s");
    expect(formatAge((2 * 3600 + 5 * 60) * 1000)).toBe("2 h 5 min");
    expect(formatAge((3 * 86400 + 4 * 3600) * 1000)).toBe("3 d 4 h");
  });
});

describe("visibleRange", () => {
  it("covers the rows in view plus a few on each side, within bounds", () => {
    expect(visibleRange(0, 290, 1000, 29, 5)).toEqual([0, 15]);
    expect(visibleRange(29 * 100, 290, 1000, 29, 5)).toEqual([95, 115]);
    expect(visibleRange(29 * 995, 290, 1000, 29, 5)).toEqual([990, 1000]);
    expect(visibleRange(0, 290, 3, 29, 5)).toEqual([0, 3]);
    expect(visibleRange(5000, 290, 0, 29, 5)).toEqual([0, 0]);
  });
});
