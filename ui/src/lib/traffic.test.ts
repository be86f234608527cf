import { describe, expect, it } from "vitest";
import { clockLabel, MIN_Y_TOP, niceTop, peakOf, rateTicks, Ring, TRAFFIC_SAMPLES, TrafficHistory, yTop } from "./traffic";
import { frame, stats } from "../test/fixtures";

describe("Ring", () => {
  it("keeps the last `capacity` samples, oldest first", () => {
    const r = new Ring(3);
    expect(r.toArray()).toEqual([]);
    r.push(1);
    r.push(2);
    expect(r.toArray()).toEqual([1, 2]);
    r.push(3);
    r.push(4);
    r.push(5);
    expect(r.toArray()).toEqual([3, 4, 5]);
    expect(r.length).toBe(3);
    r.push(NaN);
    expect(r.toArray()).toEqual([4, 5, 0]);
  });
});

describe("TrafficHistory", () => {
  it("keeps 300 samples of the total and of each rule", () => {
    const h = new TrafficHistory();
    for (let i = 0; i < 310; i++) h.push(frame([stats("web", { rateIn: i, rateOut: 1 }), stats("db", { rateIn: 2, rateOut: 3 })], (1000 + i) * 1000));
    const total = h.data()!;
    expect(total.times.length).toBe(TRAFFIC_SAMPLES);
    expect(total.times[0]).toBe(1010);
    expect(total.times[TRAFFIC_SAMPLES - 1]).toBe(1309);
    expect(total.rateIn[TRAFFIC_SAMPLES - 1]).toBe(309 + 2);
    expect(total.rateOut[0]).toBe(4);
    const web = h.data("web")!;
    expect(web.rateIn.length).toBe(TRAFFIC_SAMPLES);
    expect(web.rateIn[0]).toBe(10);
    expect(h.ruleNames()).toEqual(["db", "web"]);
  });

  it("pads a rule that appears later and forgets one that is gone", () => {
    const h = new TrafficHistory(5);
    h.push(frame([stats("web", { rateIn: 1 })], 1000));
    h.push(frame([stats("web", { rateIn: 2 })], 2000));
    h.push(frame([stats("web", { rateIn: 3 }), stats("new", { rateIn: 9 })], 3000));
    expect(h.data("new")).toEqual({ times: [1, 2, 3], rateIn: [0, 0, 9], rateOut: [0, 0, 0] });
    h.push(frame([stats("new", { rateIn: 9 })], 4000));
    expect(h.data("web")).toBeNull();
    expect(h.ruleNames()).toEqual(["new"]);
  });
});

describe("rateTicks", () => {
  it("labels every tick in the unit of the largest one", () => {
    expect(rateTicks([0, 256, 512, 768])).toEqual(["0", "256 B/s", "512 B/s", "768 B/s"]);
    expect(rateTicks([0, 512 * 1024, 1024 * 1024, 1.5 * 1024 * 1024])).toEqual(["0", "0.5 MiB/s", "1.0 MiB/s", "1.5 MiB/s"]);
    expect(rateTicks([0, 20 * 1024, 40 * 1024])).toEqual(["0", "20 KiB/s", "40 KiB/s"]);
    expect(rateTicks([0, 2 * 1024 ** 3])).toEqual(["0", "2 GiB/s"]);
  });
});

describe("peakOf and yTop", () => {
  it("take the highest rate in or out, and the shared top over a graph's own", () => {
    expect(peakOf(null)).toBe(0);
    expect(peakOf({ times: [1, 2, 3], rateIn: [5, 900, 7], rateOut: [4000, 0, 1] })).toBe(4000);
    expect(yTop(4000, null)).toBe(4000);
    expect(yTop(4000, 9000)).toBe(9000);
    // Idle graphs still get an axis: a flat line at the bottom, not a line at mid-height.
    expect(yTop(0, null)).toBe(MIN_Y_TOP);
    expect(yTop(10, 0)).toBe(MIN_Y_TOP);
  });
});

describe("niceTop and clockLabel", () => {
  it("round a small graph's top up in its own unit, and label times as hh:mm", () => {
    const KiB = 1024;
    expect(niceTop(501 * KiB)).toBe(600 * KiB);
    expect(niceTop(40 * KiB)).toBe(40 * KiB);
    expect(niceTop(3 * KiB)).toBe(3 * KiB);
    expect(niceTop(1.3 * KiB * KiB)).toBe(1.5 * KiB * KiB);
    expect(niceTop(700)).toBe(800);
    expect(niceTop(0)).toBe(MIN_Y_TOP);
    const t = new Date(2026, 10, 26, 8, 5, 30).getTime() / 1000;
    expect(clockLabel(t)).toBe("08:05");
  });
});
