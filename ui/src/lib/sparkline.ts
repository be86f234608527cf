// Sparkline data: a fixed window of the last N samples per rule and the SVG path
// that draws it. Pure functions, so the Rules view only builds strings.

/** Samples a sparkline keeps: one a second, one minute. */
export const SPARK_SAMPLES = 60;

/** Appends `value`, dropping the oldest so at most `max` remain. Mutates and returns `buf`. */
export function pushSample(buf: number[], value: number, max = SPARK_SAMPLES): number[] {
  buf.push(Number.isFinite(value) && value > 0 ? value : 0);
  if (buf.length > max) buf.splice(0, buf.length - max);
  return buf;
}

/** The largest value of any series (at least 1, so an idle rule draws a flat line). */
export function seriesMax(...series: number[][]): number {
  let m = 1;
  for (const s of series) for (const v of s) if (v > m) m = v;
  return m;
}

/**
 * An SVG path for `values`, right-aligned in a `width`×`height` box so the newest
 * sample is always at the right edge and the line grows in from the left; `scale`
 * is the value drawn at the top edge. Empty for no samples.
 */
export function sparkPath(values: number[], width: number, height: number, scale: number, slots = SPARK_SAMPLES): string {
  const n = values.length;
  if (n === 0) return "";
  const step = slots > 1 ? width / (slots - 1) : width;
  const top = scale > 0 ? scale : 1;
  const pad = 1; // keep the stroke inside the box
  const usable = height - 2 * pad;
  const parts: string[] = [];
  const first = slots - Math.min(n, slots);
  const start = Math.max(0, n - slots);
  for (let i = start; i < n; i++) {
    const x = (first + (i - start)) * step;
    const v = Math.min(Math.max(values[i], 0), top);
    const y = pad + usable - (v / top) * usable;
    parts.push(`${parts.length === 0 ? "M" : "L"}${round(x)} ${round(y)}`);
  }
  if (parts.length === 1) {
    // One sample: a dot-sized segment so it is visible.
    const [, xy] = /^M(.*)$/.exec(parts[0])!;
    const [x, y] = xy.split(" ").map(Number);
    parts.push(`L${round(Math.min(x + 1, width))} ${round(y)}`);
  }
  return parts.join(" ");
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
