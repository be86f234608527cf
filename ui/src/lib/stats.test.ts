import { describe, expect, it } from "vitest";
import { StatsStore } from "./stats.svelte";
import { frame, stats } from "../test/fixtures";

/** A document stand-in whose visibility the test controls. */
function fakeDoc() {
  const target = new EventTarget();
  const doc = Object.assign(target, { hidden: false });
  return {
    doc: doc as unknown as Document,
    setHidden(h: boolean) {
      doc.hidden = h;
      target.dispatchEvent(new Event("visibilitychange"));
    },
  };
}

/** A scheduler the test flushes by hand (stands in for requestAnimationFrame). */
function manualScheduler() {
  let queue: (() => void)[] = [];
  return {
    schedule: (cb: () => void) => void queue.push(cb),
    flush() {
      const q = queue;
      queue = [];
      q.forEach((cb) => cb());
    },
    get pending() {
      return queue.length;
    },
  };
}

describe("StatsStore", () => {
  it("publishes the latest frame once per scheduled render, however many frames arrived", () => {
    const d = fakeDoc();
    const s = manualScheduler();
    const store = new StatsStore({ doc: d.doc, schedule: s.schedule });
    store.ingest(frame([stats("web", { active: 1 })], 1000));
    store.ingest(frame([stats("web", { active: 2 })], 2000));
    store.ingest(frame([stats("web", { active: 3, rateIn: 30 })], 3000));
    expect(s.pending).toBe(1);
    expect(store.view.time).toBe(0); // nothing shown before the render
    s.flush();
    expect(store.renders).toBe(1);
    expect(store.view.time).toBe(3000);
    expect(store.view.rules.web.stats.active).toBe(3);
    expect(store.view.rules.web.rateIn).toEqual([0, 0, 30]);
  });

  it("does not publish while the document is hidden, and catches up when it is shown", () => {
    const d = fakeDoc();
    const s = manualScheduler();
    const store = new StatsStore({ doc: d.doc, schedule: s.schedule });
    store.ingest(frame([stats("web", { active: 1, rateOut: 5 })], 1000));
    s.flush();
    expect(store.view.rules.web.stats.active).toBe(1);

    d.setHidden(true);
    expect(store.paused).toBe(true);
    store.ingest(frame([stats("web", { active: 7, rateOut: 6 })], 2000));
    store.ingest(frame([stats("web", { active: 8, rateOut: 7 })], 3000));
    s.flush();
    expect(s.pending).toBe(0);
    expect(store.renders).toBe(1);
    expect(store.view.rules.web.stats.active).toBe(1);

    d.setHidden(false);
    expect(store.paused).toBe(false);
    s.flush();
    expect(store.renders).toBe(2);
    expect(store.view.rules.web.stats.active).toBe(8);
    // History kept recording while hidden, so the sparkline has no gap.
    expect(store.view.rules.web.rateOut).toEqual([5, 6, 7]);
  });

  it("drops a render scheduled before the document was hidden", () => {
    const d = fakeDoc();
    const s = manualScheduler();
    const store = new StatsStore({ doc: d.doc, schedule: s.schedule });
    store.ingest(frame([stats("web", { active: 4 })]));
    d.setHidden(true);
    s.flush();
    expect(store.renders).toBe(0);
  });

  it("keeps at most 60 samples and forgets rules that left the engine", () => {
    const s = manualScheduler();
    const store = new StatsStore({ doc: fakeDoc().doc, schedule: s.schedule });
    for (let i = 1; i <= 70; i++) store.ingest(frame([stats("web", { rateIn: i }), stats("old", { rateIn: 1 })], i));
    store.ingest(frame([stats("web", { rateIn: 71 })], 71));
    s.flush();
    expect(store.view.rules.web.rateIn).toHaveLength(60);
    expect(store.view.rules.web.rateIn.at(-1)).toBe(71);
    expect(store.view.rules.old).toBeUndefined();
    // Come back: a fresh history.
    store.ingest(frame([stats("web"), stats("old", { rateIn: 9 })], 72));
    s.flush();
    expect(store.view.rules.old.rateIn).toEqual([9]);
  });

  it("stops listening after destroy", () => {
    const d = fakeDoc();
    const store = new StatsStore({ doc: d.doc, schedule: manualScheduler().schedule });
    store.destroy();
    d.setHidden(true);
    expect(store.paused).toBe(false);
  });
});
