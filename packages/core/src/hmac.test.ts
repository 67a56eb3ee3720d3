import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "./bytes.js";
import { hmacSha256, verifyHmacSha256 } from "./hmac.js";

interface HmacVector {
  name: string;
  key: string;
  data: string;
  mac: string;
  truncatedTo?: number;
}
const vectors = JSON.parse(readFileSync(new URL("../test-vectors/hmac.json", import.meta.url), "utf8")) as {
  cases: HmacVector[];
};

describe("hmacSha256", () => {
  it.each(vectors.cases)("$name", async (v) => {
    const key = fromHex(v.key);
    const data = fromHex(v.data);
    const mac = await hmacSha256(key, data);
    expect(mac).toHaveLength(32);
    if (v.truncatedTo === undefined) {
      expect(toHex(mac)).toBe(v.mac);
      expect(await verifyHmacSha256(key, data, fromHex(v.mac))).toBe(true);
    } else {
      expect(toHex(mac.subarray(0, v.truncatedTo))).toBe(v.mac);
      // Truncated tags are never accepted: a short guess must not verify.
      expect(await verifyHmacSha256(key, data, fromHex(v.mac))).toBe(false);
    }
  });

  it("covers RFC 4231 test cases 1-7", () => {
    expect(vectors.cases).toHaveLength(7);
  });

  it("refuses an empty key with LK_FORMAT_INVALID", async () => {
    await expect(hmacSha256(new Uint8Array(0), new Uint8Array(1))).rejects.toMatchObject({
      code: "LK_FORMAT_INVALID",
    });
  });

  it("agrees with OpenSSL's HMAC (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 150 }),
        fc.uint8Array({ maxLength: 200 }),
        async (key, data) => {
          const expected = createHmac("sha256", key).update(data).digest();
          expect(await hmacSha256(key, data)).toEqual(new Uint8Array(expected));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("verifyHmacSha256", () => {
  const key = fromHex("0b".repeat(32));
  const data = new TextEncoder().encode("sync response body");

  it("accepts the right tag and rejects wrong-length tags", async () => {
    const mac = await hmacSha256(key, data);
    expect(await verifyHmacSha256(key, data, mac)).toBe(true);
    expect(await verifyHmacSha256(key, data, mac.subarray(0, 31))).toBe(false);
    expect(await verifyHmacSha256(key, data, new Uint8Array([...mac, 0]))).toBe(false);
    expect(await verifyHmacSha256(key, data, new Uint8Array(0))).toBe(false);
  });

  it("rejects the tag under another key or for other data", async () => {
    const mac = await hmacSha256(key, data);
    expect(await verifyHmacSha256(fromHex("0c".repeat(32)), data, mac)).toBe(false);
    expect(await verifyHmacSha256(key, new Uint8Array([...data, 0]), mac)).toBe(false);
  });

  it("rejects any single-bit flip of the tag (exhaustive)", async () => {
    const mac = await hmacSha256(key, data);
    for (let bit = 0; bit < 256; bit++) {
      const flipped = new Uint8Array(mac);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(await verifyHmacSha256(key, data, flipped)).toBe(false);
    }
  });
});
