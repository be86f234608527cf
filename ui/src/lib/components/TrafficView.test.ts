// The Traffic view with uPlot replaced by a recorder (jsdom has no canvas): it draws
// the history the stats store kept from app start, redraws once per published frame,
// and draws nothing while the window is hidden or another view is shown.
import { beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import App from "../../App.svelte";
import { backend, frame, setHidden, stats } from "../../test/fixtures";

const plots = vi.hoisted(() => [] as { data: number[][]; draws: number; destroyed: boolean; axisValues: (u: unknown, s: number[]) => string[] }[]);

vi.mock("uplot", () => ({
  default: class {
    rec: (typeof plots)[number];
    constructor(opts: { axes: { values?: (u: unknown, s: number[]) => string[] }[] }, data: number[][]) {
      this.rec = { data, draws: 1, destroyed: false, axisValues: opts.axes[1].values! };
      plots.push(this.rec);
    }
    setData(d: number[][]) {
      this.rec.data = d;
      this.rec.draws++;
    }
    setSize() {}
    destroy() {
      this.rec.destroyed = true;
    }
  },
}));

beforeEach(() => {
  plots.length = 0;
});

async function start() {
  const b = backend();
  render(App);
  await screen.findByTestId("rule-row-web");
  await waitFor(() => expect(b.subscribed).toBe(true));
  return b;
}

const KiB = 1024;

describe("Traffic view", () => {
  it("draws the total and a chosen rule from history recorded before it opened", async () => {
    const b = await start();
    // Recorded while the Rules view is shown.
    for (let i = 0; i < 5; i++) b.push(frame([stats("web", { rateIn: 10 * KiB, rateOut: KiB }), stats("db", { rateIn: 2 * KiB })], (1000 + i) * 1000));
    await fireEvent.click(screen.getByTestId("tab-traffic"));
    await waitFor(() => expect(plots.length).toBe(2));
    const [total, rule] = plots;
    expect(total.data[0]).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(total.data[1]).toEqual(Array(5).fill(12 * KiB));
    expect(rule.data[1]).toEqual(Array(5).fill(2 * KiB)); // "db" comes first
    expect(screen.getByTestId("traffic-total-in").textContent).toContain("12 KiB/s");
    expect(total.axisValues(null, [0, 5 * KiB, 10 * KiB])).toEqual(["0", "5 KiB/s", "10 KiB/s"]);

    // Picking another rule draws that one.
    await fireEvent.change(screen.getByTestId("traffic-rule"), { target: { value: "web" } });
    await waitFor(() => expect(plots.length).toBe(3));
    expect(plots[1].destroyed).toBe(true);
    expect(plots[2].data[1]).toEqual(Array(5).fill(10 * KiB));
  });

  it("redraws per frame, not while hidden, and not at all once another view is shown", async () => {
    const b = await start();
    b.push(frame([stats("web", { rateIn: 100 })], 1_000_000));
    await fireEvent.click(screen.getByTestId("tab-traffic"));
    await waitFor(() => expect(plots.length).toBe(2));
    const total = plots[0];
    const before = total.draws;
    b.push(frame([stats("web", { rateIn: 200 })], 1_001_000));
    await waitFor(() => expect(total.draws).toBe(before + 1));
    expect(total.data[1]).toEqual([100, 200]);

    setHidden(true);
    for (let i = 0; i < 3; i++) b.push(frame([stats("web", { rateIn: 300 })], 1_002_000 + i * 1000));
    await new Promise((r) => setTimeout(r, 100));
    expect(total.draws).toBe(before + 1);
    setHidden(false);
    // Back in view: one redraw with everything recorded meanwhile.
    await waitFor(() => expect(total.draws).toBe(before + 2));
    expect(total.data[1]).toEqual([100, 200, 300, 300, 300]);

    await fireEvent.click(screen.getByTestId("tab-rules"));
    await waitFor(() => expect(total.destroyed).toBe(true));
    const draws = plots.map((p) => p.draws);
    b.push(frame([stats("web", { rateIn: 400 })], 1_010_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(plots.map((p) => p.draws)).toEqual(draws);
  });
});
