import { describe, expect, it } from "vitest";
import { isUuid, uuidV4 } from "./uuid.js";

describe("uuidV4", () => {
  it("sets the version and variant bits of the random bytes and nothing else", () => {
    expect(uuidV4(new Uint8Array(16).fill(0xff))).toBe("ffffffff-ffff-4fff-bfff-ffffffffffff");
    expect(uuidV4(new Uint8Array(16))).toBe("00000000-0000-4000-8000-000000000000");
    const random = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
    const id = uuidV4(random);
    expect(isUuid(id)).toBe(true);
    expect(id).toBe("00112233-4455-4677-8899-aabbccddeeff");
    expect(random[6]).toBe(0x66);
  });

  it("takes exactly 16 bytes", () => {
    expect(() => uuidV4(new Uint8Array(15))).toThrow(RangeError);
  });
});
