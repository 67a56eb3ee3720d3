import { describe, expect, it } from "vitest";
import { parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it("reads a whole number and a unit", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("9999999s")).toBe(9_999_999_000);
  });

  it("refuses anything else: no unit, zero, a leading zero, fractions, signs, spaces, other units", () => {
    for (const text of [
      "",
      "5",
      "0s",
      "05m",
      "1.5m",
      "-1m",
      "+1m",
      " 1m",
      "1m ",
      "1 m",
      "1M",
      "1w",
      "m",
      "10000000s",
    ])
      expect(parseDuration(text), text).toBeNull();
  });
});
