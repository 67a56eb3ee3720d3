import { afterEach, describe, expect, it, vi } from "vitest";
import { randomBytes, randomId, randomKey } from "./random.js";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("randomBytes", () => {
  it("returns the requested length, including zero and sizes above one getRandomValues call", () => {
    for (const length of [0, 1, 32, 65536, 65537, 200_000]) expect(randomBytes(length)).toHaveLength(length);
  });

  it("fills every chunk, asking for at most 65536 bytes per call", () => {
    const spy = vi.spyOn(globalThis.crypto, "getRandomValues");
    const bytes = randomBytes(3 * 65536 + 10);
    expect(spy).toHaveBeenCalledTimes(4);
    for (const [view] of spy.mock.calls) expect((view as Uint8Array).byteLength).toBeLessThanOrEqual(65536);
    // The tail chunk is filled too: 10 zero bytes by chance has probability 2^-80.
    expect(bytes.subarray(-10).some((b) => b !== 0)).toBe(true);
  });

  it("rejects negative and fractional lengths", () => {
    for (const length of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => randomBytes(length)).toThrow(RangeError);
    }
  });
});

describe("randomKey", () => {
  it("returns 32 fresh bytes", () => {
    const a = randomKey();
    expect(a).toHaveLength(32);
    expect(a).not.toEqual(randomKey());
  });
});

describe("randomId", () => {
  it("returns distinct lowercase UUID v4s", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = randomId();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(1000);
  });
});
