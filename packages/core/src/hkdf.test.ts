import { hkdfSync } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "./bytes.js";
import { hkdfSha256 } from "./hkdf.js";

interface HkdfVector {
  name: string;
  ikm: string;
  salt: string;
  info: string;
  length: number;
  okm: string;
}
const vectors = JSON.parse(readFileSync(new URL("../test-vectors/hkdf.json", import.meta.url), "utf8")) as {
  cases: HkdfVector[];
};

describe("hkdfSha256", () => {
  it.each(vectors.cases)("$name", async (v) => {
    const okm = await hkdfSha256(fromHex(v.ikm), fromHex(v.salt), fromHex(v.info), v.length);
    expect(toHex(okm)).toBe(v.okm);
  });

  it("covers RFC 5869 test cases 1-3", () => {
    expect(vectors.cases).toHaveLength(3);
  });

  it("accepts lengths 1..8160 and rejects anything else", async () => {
    const ikm = new Uint8Array(32);
    expect(await hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 1)).toHaveLength(1);
    expect(await hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 8160)).toHaveLength(8160);
    for (const length of [0, -1, 8161, 1.5]) {
      await expect(hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), length)).rejects.toThrow(RangeError);
    }
  });

  it("agrees with OpenSSL's HKDF (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: 1, max: 200 }),
        async (ikm, salt, info, length) => {
          const expected = new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
          expect(await hkdfSha256(ikm, salt, info, length)).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
