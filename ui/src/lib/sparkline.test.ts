import { describe, expect, it } from "vitest";
import { pushSample, seriesMax, sparkPath, SPARK_SAMPLES } from "./sparkline";

describe("pushSample keeps the last 60 samples", () => {
  it("drops the oldest beyond the window", () => {
    const buf: number[] = [];
    for (let i = 1; i <= 75; i++) pushSample(buf, i);
    expect(buf).toHaveLength(SPARK_SAMPLES);
    expect(buf[0]).toBe(16);
    expect(buf[59]).toBe(75);
  });

  it("records nonsense as zero", () => {
    const buf: number[] = [];
    pushSample(buf, Number.NaN);
    pushSample(buf, -3);
    pushSample(buf, Number.POSITIVE_INFINITY);
    expect(buf).toEqual([0, 0, 0]);
  });

  it("honours a smaller window", () => {
    const buf = [1, 2, 3];
    expect(pushSample(buf, 4, 3)).toEqual([2, 3, 4]);
  });
});

describe("seriesMax", () => {
  it("is the peak of all series, at least 1", () => {
    expect(seriesMax([], [])).toBe(1);
    expect(seriesMax([0, 0], [0])).toBe(1);
    expect(seriesMax([3, 9], [7, 12])).toBe(12);
  });
});

describe("sparkPath", () => {
  it("is empty without samples", () => {
    expect(sparkPath([], 120, 28, 1)).toBe("");
  });

  it("puts the newest sample at the right edge and the peak at the top", () => {
    const d = sparkPath([0, 50, 100], 118, 28, 100, 60);
    const points = d.split(" L").map((p) => p.replace("M", "").split(" ").map(Number));
    expect(points).toHaveLength(3);
    expect(points[2][0]).toBe(118); // newest at x = width
    expect(points[1][0]).toBe(116); // one slot (118/59 = 2) to the left
    expect(points[2][1]).toBe(1); // peak at the top, inside the 1px pad
    expect(points[0][1]).toBe(27); // zero at the bottom
    expect(points[1][1]).toBe(14); // half way
  });

  it("draws a full window from left to right edge", () => {
    const values = Array.from({ length: 60 }, (_, i) => i);
    const d = sparkPath(values, 59, 10, 59, 60);
    expect(d.startsWith("M0 ")).toBe(true);
    expect(d.endsWith("L59 1")).toBe(true);
  });

  it("clamps values above the scale", () => {
    const d = sparkPath([500], 60, 10, 100, 60);
    expect(d).toBe("M60 1 L60 1");
  });

  it("only draws the last `slots` samples", () => {
    const d = sparkPath([1, 2, 3, 4], 10, 10, 4, 2);
    expect(d.split(" L")).toHaveLength(2);
  });
});
