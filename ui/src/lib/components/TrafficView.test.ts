// The Traffic view with uPlot replaced by a recorder (jsdom has no canvas): the total
// and one small graph per rule, drawn from the history the stats store kept from app
// start, redrawn once per published frame, created once per rule (lazily when an
// IntersectionObserver exists) and destroyed with its rule; nothing drawn while the
// window is hidden or another view is shown.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import App from "../../App.svelte";
import { AppState } from "../app.svelte";
import { chartCount } from "./TrafficChart.svelte";
import { backend, frame, ruleView, setHidden, snapshot, stats } from "../../test/fixtures";

type YRange = (u: unknown, min: number, max: number) => [number, number];
interface Rec {
  testid: string;
  data: number[][];
  draws: number;
  destroyed: boolean;
  axisValues: (u: unknown, s: number[]) => string[];
  yRange: YRange;
}
const plots = vi.hoisted(() => [] as Rec[]);

vi.mock("uplot", () => ({
  default: class {
    rec: Rec;
    constructor(
      opts: { axes: { values?: (u: unknown, s: number[]) => string[] }[]; scales: { y: { range: YRange } } },
      data: number[][],
      target: HTMLElement,
    ) {
      const testid = target.closest("figure")?.dataset.testid ?? "";
      this.rec = { testid, data, draws: 1, destroyed: false, axisValues: opts.axes[1].values!, yRange: opts.scales.y.range };
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
  chartCount.created = 0;
  chartCount.destroyed = 0;
});

afterEach(() => {
  vi.unstubAllGlobals();
});

/** The live (not destroyed) plot drawn in the figure with this testid. */
function plot(testid: string): Rec | undefined {
  return plots.find((p) => p.testid === testid && !p.destroyed);
}

function cardNames(): string[] {
  return [...document.querySelectorAll<HTMLElement>('[role="button"][data-testid^="traffic-card-"]')].map((e) => e.dataset.testid!.slice("traffic-card-".length));
}

async function start(snap = snapshot(), app?: AppState) {
  const b = backend({}, snap);
  render(App, app ? { props: { app } } : {});
  await screen.findByTestId("tab-traffic");
  await waitFor(() => expect(b.subscribed).toBe(true));
  return b;
}

async function openTraffic() {
  await fireEvent.click(screen.getByTestId("tab-traffic"));
  await screen.findByTestId("traffic-view");
}

/** Waits until the card shows these rates: the frame carrying them is published. */
async function published(rule: string, rates: string) {
  await waitFor(() => expect(screen.getByTestId(`traffic-card-rates-${rule}`).textContent).toBe(rates));
}

const KiB = 1024;

describe("Traffic view", () => {
  it("draws the total and a card per rule in the profile's order from history recorded before it opened", async () => {
    const b = await start();
    // Recorded while the Rules view is shown; the frame lists rules in another order.
    for (let i = 0; i < 5; i++)
      b.push(
        frame(
          [stats("db", { rateIn: 5 * KiB, state: "failed" }), stats("web", { rateIn: 10 * KiB, rateOut: KiB }), stats("dns", { rateIn: 2 * KiB })],
          (1000 + i) * 1000,
        ),
      );
    await openTraffic();
    // The profile's order: web, dns, db (as the snapshot lists them).
    await waitFor(() => expect(cardNames()).toEqual(["web", "dns", "db"]));
    // Total plus the two running rules; the failed one draws nothing.
    await waitFor(() => expect(plots.map((p) => p.testid).sort()).toEqual(["traffic-chart-rule-dns", "traffic-chart-rule-web", "traffic-chart-total"]));

    const total = plot("traffic-chart-total")!;
    expect(total.data[0]).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(total.data[1]).toEqual(Array(5).fill(17 * KiB));
    expect(total.axisValues(null, [0, 5 * KiB, 10 * KiB])).toEqual(["0", "5 KiB/s", "10 KiB/s"]);
    expect(screen.getByTestId("traffic-total-in").textContent).toContain("17 KiB/s");
    expect(plot("traffic-chart-rule-web")!.data[1]).toEqual(Array(5).fill(10 * KiB));
    expect(plot("traffic-chart-rule-dns")!.data[1]).toEqual(Array(5).fill(2 * KiB));

    const web = screen.getByTestId("traffic-card-web");
    expect(within(web).getByTestId("traffic-card-rates-web").textContent).toBe("↓ 10 KiB/s ↑ 1.0 KiB/s");
    expect(within(web).getByTestId("traffic-card-status-web").textContent).toBe("running");
    expect(web.getAttribute("aria-label")).toContain("Rule web, running, in 10 KiB/s, out 1.0 KiB/s");
    expect(screen.getByTestId("traffic-card-rates-dns").textContent).toBe("↓ 2.0 KiB/s ↑ 0 B/s");
    expect(screen.getByTestId("traffic-card-status-db").textContent).toBe("failed");
    expect(screen.getByTestId("traffic-card-db").querySelector("figure")).toBeNull();
    // The old one-rule picker is gone: the cards replace it.
    expect(screen.queryByTestId("traffic-rule")).toBeNull();
  });

  it("shows stopped and switched-off rules greyed with no graph, and draws one once it runs", async () => {
    const snap = snapshot({
      rules: [
        ruleView(),
        ruleView({ rule: { name: "idle", listen: "127.0.0.1:9000" }, state: "stopped" }),
        ruleView({ rule: { name: "off", listen: "127.0.0.1:9001" }, enabled: false, state: "disabled" }),
      ],
    });
    const b = await start(snap);
    b.push(frame([stats("web", { rateIn: 100 }), stats("idle", { state: "stopped" }), stats("off", { state: "disabled" })], 1_000_000));
    await openTraffic();
    await waitFor(() => expect(plot("traffic-chart-rule-web")).toBeDefined());
    expect(cardNames()).toEqual(["web", "idle", "off"]);

    const idle = screen.getByTestId("traffic-card-idle");
    expect(within(idle).getByTestId("traffic-card-status-idle").textContent).toBe("stopped");
    expect(within(idle).getByTestId("traffic-card-flat-idle").textContent).toContain("stopped");
    expect(idle.classList.contains("stopped")).toBe(true);
    const off = screen.getByTestId("traffic-card-off");
    expect(within(off).getByTestId("traffic-card-status-off").textContent).toBe("switched off");
    expect(within(off).getByTestId("traffic-card-flat-off").textContent).toContain("stopped");
    expect(screen.getByTestId("traffic-card-web").classList.contains("stopped")).toBe(false);
    // No graph for either: total and web only.
    expect(plots.map((p) => p.testid).sort()).toEqual(["traffic-chart-rule-web", "traffic-chart-total"]);

    // The engine starts "idle" (a frame newer than the snapshot says so): it gets its graph.
    b.push(frame([stats("web", { rateIn: 100 }), stats("idle", { rateIn: 3 * KiB, state: "running" }), stats("off", { state: "disabled" })], Date.now() + 60_000));
    await waitFor(() => expect(plot("traffic-chart-rule-idle")).toBeDefined());
    expect(screen.getByTestId("traffic-card-status-idle").textContent).toBe("running");
    expect(screen.queryByTestId("traffic-card-flat-idle")).toBeNull();
    expect(plot("traffic-chart-rule-idle")!.data[1]).toEqual([0, 3 * KiB]);
    expect(screen.getByTestId("traffic-card-flat-off")).toBeTruthy();
  });

  it("puts the small graphs on one scale, or each on its own with Same scale off", async () => {
    const b = await start();
    b.push(frame([stats("web", { rateIn: 10 * KiB, rateOut: 40 * KiB }), stats("dns", { rateIn: 2 * KiB }), stats("db", { rateIn: 99 * KiB, state: "failed" })], 1_000_000));
    b.push(frame([stats("web", { rateIn: 10 * KiB }), stats("dns", { rateIn: 3 * KiB }), stats("db", { state: "failed" })], 1_001_000));
    await openTraffic();
    await waitFor(() => expect(plot("traffic-chart-rule-dns")).toBeDefined());
    await published("dns", "↓ 3.0 KiB/s ↑ 0 B/s");
    const dns = plot("traffic-chart-rule-dns")!;
    const web = plot("traffic-chart-rule-web")!;
    const figure = (name: string) => screen.getByTestId(`traffic-chart-rule-${name}`);

    // Shared: the top is web's 40 KiB/s out (the failed rule is not drawn, so not counted).
    const toggle = screen.getByLabelText("Same scale") as HTMLInputElement;
    expect(toggle.checked).toBe(true);
    expect(screen.getByTestId("traffic-cards").dataset.ymax).toBe(String(40 * KiB));
    expect(figure("dns").dataset.ymax).toBe(String(40 * KiB));
    expect(figure("web").dataset.ymax).toBe(String(40 * KiB));
    expect(dns.yRange(null, 0, 3 * KiB)).toEqual([0, 40 * KiB]);

    // Each its own: dns tops at its own 3 KiB/s and is redrawn with that scale.
    const draws = dns.draws;
    await fireEvent.click(toggle);
    expect(toggle.checked).toBe(false);
    await waitFor(() => expect(figure("dns").dataset.ymax).toBe(String(3 * KiB)));
    expect(figure("web").dataset.ymax).toBe(String(40 * KiB));
    expect(dns.yRange(null, 0, 3 * KiB)).toEqual([0, 3 * KiB]);
    expect(web.yRange(null, 0, 40 * KiB)).toEqual([0, 40 * KiB]);
    expect(dns.draws).toBe(draws + 1);
    expect(screen.getByTestId("traffic-cards").dataset.ymax).toBe("");
    // The same plots, not new ones.
    expect(plots.filter((p) => p.testid === "traffic-chart-rule-dns")).toHaveLength(1);

    await fireEvent.click(toggle);
    await waitFor(() => expect(figure("dns").dataset.ymax).toBe(String(40 * KiB)));
    expect(dns.yRange(null, 0, 3 * KiB)).toEqual([0, 40 * KiB]);
  });

  it("opens a card's graph large on click, Enter or Space, and Back returns to the total", async () => {
    const b = await start();
    for (let i = 0; i < 3; i++) b.push(frame([stats("web", { rateIn: 10 * KiB }), stats("dns", { rateIn: 2 * KiB })], (1000 + i) * 1000));
    await openTraffic();
    await waitFor(() => expect(plot("traffic-chart-rule-dns")).toBeDefined());
    const total = plot("traffic-chart-total")!;

    await fireEvent.click(screen.getByTestId("traffic-card-web"));
    const large = await screen.findByTestId("traffic-chart-rule");
    expect(large.querySelector("figcaption")!.textContent).toBe("Rule web");
    await waitFor(() => expect(plot("traffic-chart-rule")).toBeDefined());
    expect(plot("traffic-chart-rule")!.data[1]).toEqual([10 * KiB, 10 * KiB, 10 * KiB]);
    // In the total's place.
    expect(screen.queryByTestId("traffic-chart-total")).toBeNull();
    expect(total.destroyed).toBe(true);
    expect(screen.getByTestId("traffic-card-web").getAttribute("aria-pressed")).toBe("true");
    expect(screen.getByTestId("traffic-card-dns").getAttribute("aria-pressed")).toBe("false");
    const backBtn = screen.getByRole("button", { name: /Back to total/ });
    await waitFor(() => expect(document.activeElement).toBe(backBtn));

    await fireEvent.click(backBtn);
    await screen.findByTestId("traffic-chart-total");
    expect(screen.queryByTestId("traffic-chart-rule")).toBeNull();
    await waitFor(() => expect(plot("traffic-chart-total")).toBeDefined());
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("traffic-card-web")));

    // From the keyboard: Enter on dns, then Space after going back.
    const dnsCard = screen.getByTestId("traffic-card-dns");
    expect(dnsCard.tabIndex).toBe(0);
    await fireEvent.keyDown(dnsCard, { key: "Enter" });
    expect((await screen.findByTestId("traffic-chart-rule")).querySelector("figcaption")!.textContent).toBe("Rule dns");
    await fireEvent.click(screen.getByTestId("traffic-back"));
    await screen.findByTestId("traffic-chart-total");
    await fireEvent.keyDown(screen.getByTestId("traffic-card-web"), { key: " " });
    expect((await screen.findByTestId("traffic-chart-rule")).querySelector("figcaption")!.textContent).toBe("Rule web");
    // The open card again goes back too.
    await fireEvent.click(screen.getByTestId("traffic-card-web"));
    await screen.findByTestId("traffic-chart-total");
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("traffic-card-web")));
    // Arrow keys move between cards.
    await fireEvent.keyDown(screen.getByTestId("traffic-card-web"), { key: "ArrowRight" });
    expect(document.activeElement).toBe(screen.getByTestId("traffic-card-dns"));
    await fireEvent.keyDown(screen.getByTestId("traffic-card-dns"), { key: "End" });
    expect(document.activeElement).toBe(screen.getByTestId("traffic-card-db"));
  });

  it("adds and removes cards with the profile's rules and destroys a removed rule's graph", async () => {
    const app = new AppState();
    const b = await start(snapshot(), app);
    b.push(frame([stats("web", { rateIn: 100 }), stats("dns", { rateIn: 200 })], 1_000_000));
    await openTraffic();
    await waitFor(() => expect(plot("traffic-chart-rule-dns")).toBeDefined());
    const dns = plot("traffic-chart-rule-dns")!;
    expect(chartCount.created - chartCount.destroyed).toBe(3);

    // dns deleted, "api" added (the engine's next frame has it, not dns).
    const snap = app.snapshot!;
    app.snapshot = { ...snap, rules: [...snap.rules.filter((r) => r.rule.name !== "dns"), ruleView({ rule: { name: "api", listen: "127.0.0.1:7000" } })] };
    await waitFor(() => expect(cardNames()).toEqual(["web", "db", "api"]));
    expect(dns.destroyed).toBe(true);
    expect(screen.queryByTestId("traffic-chart-rule-dns")).toBeNull();
    // No samples for api yet: its card waits without a graph.
    expect(within(screen.getByTestId("traffic-card-api")).getByText("No samples yet")).toBeTruthy();
    b.push(frame([stats("web", { rateIn: 100 }), stats("api", { rateIn: 300 })], 1_001_000));
    await waitFor(() => expect(plot("traffic-chart-rule-api")).toBeDefined());
    expect(plot("traffic-chart-rule-api")!.data[1]).toEqual([0, 300]);
    // total, web, api alive; dns's destroyed: nothing leaked.
    expect(chartCount.created - chartCount.destroyed).toBe(3);
    expect(plots.filter((p) => !p.destroyed).map((p) => p.testid).sort()).toEqual(["traffic-chart-rule-api", "traffic-chart-rule-web", "traffic-chart-total"]);

    // A rule shown large and then deleted: back to the total.
    await fireEvent.click(screen.getByTestId("traffic-card-api"));
    await screen.findByTestId("traffic-chart-rule");
    app.snapshot = { ...app.snapshot!, rules: app.snapshot!.rules.filter((r) => r.rule.name !== "api") };
    await screen.findByTestId("traffic-chart-total");
    expect(screen.queryByTestId("traffic-card-api")).toBeNull();
    // …and stays there when a rule of that name comes back.
    app.snapshot = { ...app.snapshot!, rules: [...app.snapshot!.rules, ruleView({ rule: { name: "api", listen: "127.0.0.1:7000" } })] };
    await screen.findByTestId("traffic-card-api");
    expect(screen.queryByTestId("traffic-chart-rule")).toBeNull();
    expect(screen.getByTestId("traffic-chart-total")).toBeTruthy();

    // Leaving the view destroys every graph it made.
    await fireEvent.click(screen.getByTestId("tab-rules"));
    await waitFor(() => expect(chartCount.destroyed).toBe(chartCount.created));
    expect(plots.every((p) => p.destroyed)).toBe(true);
  });

  it("with 20 rules creates a graph only when its card scrolls into sight and skips redraws out of sight", async () => {
    const observers: { cb: IntersectionObserverCallback; els: Element[] }[] = [];
    vi.stubGlobal(
      "IntersectionObserver",
      class {
        rec: { cb: IntersectionObserverCallback; els: Element[] };
        constructor(cb: IntersectionObserverCallback) {
          this.rec = { cb, els: [] };
          observers.push(this.rec);
        }
        observe(el: Element) {
          this.rec.els.push(el);
        }
        disconnect() {
          this.rec.els = [];
        }
      },
    );
    const scroll = (name: string, visible: boolean) => {
      const el = screen.getByTestId(`traffic-card-${name}`);
      const o = observers.find((x) => x.els.includes(el))!;
      o.cb([{ target: el, isIntersecting: visible } as unknown as IntersectionObserverEntry], o as unknown as IntersectionObserver);
    };
    const names = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, "0")}`);
    const rules = names.map((n, i) => ruleView({ rule: { name: n, listen: `127.0.0.1:${9000 + i}` } }));
    const b = await start(snapshot({ rules }));
    const tick = (t: number, rate: number) => b.push(frame(names.map((n) => stats(n, { rateIn: rate })), t * 1000));
    tick(1000, 100);
    await openTraffic();
    await waitFor(() => expect(plot("traffic-chart-total")).toBeDefined());
    // The first frame is published, so the next draw is the next frame's.
    await published("r19", "↓ 100 B/s ↑ 0 B/s");
    expect(cardNames()).toEqual(names);
    // Nothing in sight yet: only the total.
    expect(plots).toHaveLength(1);

    scroll("r00", true);
    scroll("r01", true);
    await waitFor(() => expect(plots).toHaveLength(3));
    const r01 = plot("traffic-chart-rule-r01")!;
    tick(1001, 200);
    await waitFor(() => expect(r01.draws).toBe(2));
    expect(r01.data[1]).toEqual([100, 200]);

    // Out of sight: kept, not redrawn; back in sight: one redraw with the latest.
    scroll("r01", false);
    tick(1002, 300);
    await waitFor(() => expect(plot("traffic-chart-rule-r00")!.draws).toBe(3));
    expect(r01.draws).toBe(2);
    scroll("r01", true);
    await waitFor(() => expect(r01.draws).toBe(3));
    expect(r01.data[1]).toEqual([100, 200, 300]);
    expect(plots).toHaveLength(3);
    expect(chartCount.created).toBe(3);
  });

  it("redraws per frame, not while hidden, and not at all once another view is shown", async () => {
    const b = await start();
    b.push(frame([stats("web", { rateIn: 100 }), stats("dns")], 1_000_000));
    await openTraffic();
    await waitFor(() => expect(plots).toHaveLength(3));
    await published("web", "↓ 100 B/s ↑ 0 B/s");
    const total = plot("traffic-chart-total")!;
    const web = plot("traffic-chart-rule-web")!;
    const before = total.draws;
    const webBefore = web.draws;
    b.push(frame([stats("web", { rateIn: 200 }), stats("dns")], 1_001_000));
    await waitFor(() => expect(total.draws).toBe(before + 1));
    await waitFor(() => expect(web.draws).toBe(webBefore + 1));
    expect(total.data[1]).toEqual([100, 200]);
    expect(web.data[1]).toEqual([100, 200]);
    // Updated in place, never re-created per frame.
    expect(plots).toHaveLength(3);

    setHidden(true);
    for (let i = 0; i < 3; i++) b.push(frame([stats("web", { rateIn: 300 }), stats("dns")], 1_002_000 + i * 1000));
    await new Promise((r) => setTimeout(r, 100));
    expect(total.draws).toBe(before + 1);
    expect(web.draws).toBe(webBefore + 1);
    setHidden(false);
    // Back in view: one redraw with everything recorded meanwhile.
    await waitFor(() => expect(total.draws).toBe(before + 2));
    await waitFor(() => expect(web.draws).toBe(webBefore + 2));
    expect(total.data[1]).toEqual([100, 200, 300, 300, 300]);
    expect(web.data[1]).toEqual([100, 200, 300, 300, 300]);
    expect(plots).toHaveLength(3);

    await fireEvent.click(screen.getByTestId("tab-rules"));
    await waitFor(() => expect(plots.every((p) => p.destroyed)).toBe(true));
    const draws = plots.map((p) => p.draws);
    b.push(frame([stats("web", { rateIn: 400 }), stats("dns")], 1_010_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(plots.map((p) => p.draws)).toEqual(draws);
  });
});
