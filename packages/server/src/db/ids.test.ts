import { isUuid } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { timeOrderedId } from "./ids.js";

describe("timeOrderedId", () => {
  it("is a version 7, variant 10 UUID carrying the millisecond timestamp (RFC 9562 test vector)", () => {
    // RFC 9562 appendix A.6: 2022-02-22 19:22:22.000 UTC = 0x017F22E279B0.
    const random = Uint8Array.from([0xcc, 0xc3, 0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f]);
    expect(timeOrderedId(0x017f22e279b0, random)).toBe("017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  });

  it("sorts by time, and differs within one millisecond", () => {
    const ids = [1, 2, 3].map((i) => timeOrderedId(1_700_000_000_000 + i));
    expect([...ids].sort()).toEqual(ids);
    expect(timeOrderedId(5)).not.toBe(timeOrderedId(5));
    expect(isUuid(timeOrderedId())).toBe(true);
  });

  it("never repeats within one millisecond across refills of its random pool", () => {
    const ids = Array.from({ length: 5_000 }, () => timeOrderedId(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
  });
});
