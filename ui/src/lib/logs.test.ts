import { describe, expect, it } from "vitest";
import { copyText, filterLines, formatLine, LogTail, MAX_LINES, ruleChoices, type LogEntry } from "./logs";

let n = 0;
function line(over: Partial<LogEntry> = {}): LogEntry {
  n++;
  return { seq: n, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), level: "info", rule: "web", message: `line ${n}`, fields: [], ...over };
}

function seqs(lines: LogEntry[]): number[] {
  return lines.map((l) => l.seq);
}

describe("filters", () => {
  const lines = [
    line({ seq: 1, level: "error", rule: "db", message: "dial 10.0.0.5:5432: connection refused" }),
    line({ seq: 2, level: "warn", rule: "web", message: "node not available", fields: [{ name: "client", value: "127.0.0.1:5000" }] }),
    line({ seq: 3, level: "info", rule: "web", message: "tcp listening on 127.0.0.1:8080" }),
    line({ seq: 4, level: "debug", rule: null, message: "smux session ends" }),
    line({ seq: 5, level: "trace", rule: "dns", message: "udp reply" }),
  ];

  it("a level keeps that level and the more severe ones", () => {
    expect(seqs(filterLines(lines, { level: "error", rule: "", text: "" }))).toEqual([1]);
    expect(seqs(filterLines(lines, { level: "warn", rule: "", text: "" }))).toEqual([1, 2]);
    expect(seqs(filterLines(lines, { level: "info", rule: "", text: "" }))).toEqual([1, 2, 3]);
    expect(seqs(filterLines(lines, { level: "trace", rule: "", text: "" }))).toEqual([1, 2, 3, 4, 5]);
  });

  it("a rule keeps only its lines", () => {
    expect(seqs(filterLines(lines, { level: "trace", rule: "web", text: "" }))).toEqual([2, 3]);
    expect(seqs(filterLines(lines, { level: "warn", rule: "web", text: "" }))).toEqual([2]);
    expect(seqs(filterLines(lines, { level: "trace", rule: "nope", text: "" }))).toEqual([]);
  });

  it("text matches message, fields, rule and level, ignoring case and spaces around", () => {
    expect(seqs(filterLines(lines, { level: "trace", rule: "", text: " REFUSED " }))).toEqual([1]);
    expect(seqs(filterLines(lines, { level: "trace", rule: "", text: "client=127.0.0.1" }))).toEqual([2]);
    expect(seqs(filterLines(lines, { level: "trace", rule: "", text: "[dns]" }))).toEqual([5]);
    expect(seqs(filterLines(lines, { level: "trace", rule: "", text: "debug" }))).toEqual([4]);
    expect(seqs(filterLines(lines, { level: "info", rule: "web", text: "listening" }))).toEqual([3]);
  });

  it("rule choices are the profile's and the lines', once each, sorted", () => {
    expect(ruleChoices(lines, ["web", "api"])).toEqual(["api", "db", "dns", "web"]);
  });
});

describe("copy text", () => {
  it("one line per entry: UTC time, level, rule, message, fields (quoted when needed)", () => {
    const a = line({ level: "warn", rule: "db", message: "dial 10.0.0.5:5432: connection refused", fields: [
      { name: "client", value: "127.0.0.1:5000" },
      { name: "target", value: "10.0.0.5:5432" },
      { name: "note", value: "two words" },
      { name: "empty", value: "" },
    ] });
    const b = line({ level: "info", rule: null, message: "first snapshot served 80 ms after start" });
    expect(formatLine(a)).toBe(
      '2026-01-02T03:04:05.678Z WARN  [db] dial 10.0.0.5:5432: connection refused client=127.0.0.1:5000 target=10.0.0.5:5432 note="two words" empty=""',
    );
    expect(copyText([a, b])).toBe(`${formatLine(a)}\n2026-01-02T03:04:05.678Z INFO  first snapshot served 80 ms after start\n`);
    expect(copyText([])).toBe("");
  });
});

describe("LogTail", () => {
  function batch(from: number, to: number) {
    const lines: LogEntry[] = [];
    for (let s = from; s <= to; s++) lines.push(line({ seq: s, message: `m${s}` }));
    return { lines };
  }

  it(`keeps at most ${MAX_LINES} lines, dropping the oldest`, () => {
    const t = new LogTail();
    t.add(batch(1, 3000));
    t.add(batch(3001, 6000));
    expect(t.lines.length).toBe(MAX_LINES);
    expect(t.lines[0].seq).toBe(1001);
    expect(t.lines[MAX_LINES - 1].seq).toBe(6000);
    t.add(batch(6001, 20000));
    expect(t.lines.length).toBe(MAX_LINES);
    expect(t.lines[0].seq).toBe(15001);
  });

  it("pause holds new lines and counts them; resume appends them and stays bounded", () => {
    const t = new LogTail(10);
    t.add(batch(1, 4));
    t.pause();
    t.add(batch(5, 7));
    expect(seqs(t.lines)).toEqual([1, 2, 3, 4]);
    expect(t.newCount).toBe(3);
    t.add(batch(8, 20));
    // Held lines are bounded too; the ones pushed out still count as new.
    expect(t.held.length).toBe(10);
    expect(t.newCount).toBe(16);
    t.resume();
    expect(t.newCount).toBe(0);
    expect(seqs(t.lines)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    t.add(batch(21, 21));
    expect(t.lines.at(-1)?.seq).toBe(21);
  });

  it("a resumed stream repeats nothing, and a gap in the numbers counts as skipped", () => {
    const t = new LogTail();
    t.add(batch(101, 110));
    expect(t.skipped).toBe(0);
    // A new stream asked for lines after 110 but the ring also sent older ones.
    t.add(batch(105, 112));
    expect(seqs(t.lines).slice(-3)).toEqual([110, 111, 112]);
    expect(t.lines.length).toBe(12);
    t.add(batch(120, 121));
    expect(t.skipped).toBe(7);
    expect(t.lastSeq).toBe(121);
  });
});
