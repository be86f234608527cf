// Human units for the Rules view. Bytes use binary multiples (KiB = 1024 B), as the
// counters are bytes on the wire; rates are the same per second.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 0 → "0 B", 1536 → "1.5 KiB", 10 MiB → "10 MiB" (one decimal below 10 of a unit). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return "0 B";
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)} B`;
  // 1023.96 KiB would print as "1024.0 KiB": step up instead.
  if (v >= 1023.95 && u < UNITS.length - 1) return `1.0 ${UNITS[u + 1]}`;
  const text = v < 10 ? v.toFixed(1) : Math.round(v).toString();
  return `${text} ${UNITS[u]}`;
}

/** Bytes per second. */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** 1234567 → "1,234,567" (exact byte counts for titles). */
export function formatInteger(n: number): string {
  if (!Number.isFinite(n)) return "0";
  return Math.round(n).toLocaleString("en-US");
}

/** "1 connection", "3 connections". */
export function plural(n: number, one: string, many: string): string {
  return `${formatInteger(n)} ${n === 1 ? one : many}`;
}
