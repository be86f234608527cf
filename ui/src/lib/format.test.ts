import { describe, expect, it } from "vitest";
import { formatBytes, formatInteger, formatRate, plural } from "./format";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [-5, "0 B"],
    [Number.NaN, "0 B"],
    [1, "1 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024, "10 KiB"],
    [1024 * 1024 - 1, "1.0 MiB"],
    [5.25 * 1024 * 1024, "5.3 MiB"],
    [3 * 1024 ** 3, "3.0 GiB"],
    [2048 * 1024 ** 4, "2.0 PiB"],
  ])("%d bytes → %s", (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });
});

describe("formatRate", () => {
  it("appends /s", () => {
    expect(formatRate(0)).toBe("0 B/s");
    expect(formatRate(2560)).toBe("2.5 KiB/s");
    expect(formatRate(125 * 1024 * 1024)).toBe("125 MiB/s");
  });
});

describe("formatInteger and plural", () => {
  it("groups digits and pluralises", () => {
    expect(formatInteger(1234567)).toBe("1,234,567");
    expect(plural(1, "connection", "connections")).toBe("1 connection");
    expect(plural(0, "connection", "connections")).toBe("0 connections");
    expect(plural(2500, "error", "errors")).toBe("2,500 errors");
  });
});
