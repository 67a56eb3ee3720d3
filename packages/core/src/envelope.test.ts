import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex, utf8Encode } from "./bytes.js";
import {
  ENVELOPE_OVERHEAD,
  associatedData,
  importEnvelopeKey,
  openEnvelope,
  sealEnvelope,
} from "./envelope.js";
import type { ErrorCode } from "./errors.js";
import { errorCatalogue, isLatchkeyError } from "./errors.js";

interface ValidVector {
  name: string;
  key: string;
  nonce: string;
  plaintext: string;
  associatedData: string;
  associatedDataFields?: Record<string, string | number>;
  envelope: string;
}
interface InvalidVector {
  name: string;
  key: string;
  envelope: string;
  associatedData: string;
  expectedError: ErrorCode;
}
interface AdVector {
  name: string;
  fields: Record<string, string | number>;
  encoded: string;
}
const vectors = JSON.parse(
  readFileSync(new URL("../test-vectors/envelope.json", import.meta.url), "utf8"),
) as {
  valid: ValidVector[];
  invalid: InvalidVector[];
  associatedData: AdVector[];
};

/** True when `promise` rejects with `code`; for LK_DECRYPT_FAILED also checks the error is fully opaque. */
async function failsWith(promise: Promise<unknown>, code: ErrorCode): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    if (!isLatchkeyError(error, code)) throw error;
    if (code === "LK_DECRYPT_FAILED") {
      return (
        error.message === errorCatalogue.LK_DECRYPT_FAILED.message &&
        error.hint === errorCatalogue.LK_DECRYPT_FAILED.hint &&
        error.cause === undefined &&
        error.details === undefined
      );
    }
    return true;
  }
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

const KEY = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

describe("envelope test vectors", () => {
  it.each(vectors.valid)("seals and opens: $name", async (v) => {
    const key = fromHex(v.key);
    const ad = fromHex(v.associatedData);
    if (v.associatedDataFields) expect(toHex(associatedData(v.associatedDataFields))).toBe(v.associatedData);
    const sealed = await sealEnvelope(key, fromHex(v.plaintext), ad, { nonce: fromHex(v.nonce) });
    expect(toHex(sealed)).toBe(v.envelope);
    expect(toHex(await openEnvelope(key, fromHex(v.envelope), ad))).toBe(v.plaintext);
  });

  it.each(vectors.invalid)("refuses: $name", async (v) => {
    expect(
      await failsWith(
        openEnvelope(fromHex(v.key), fromHex(v.envelope), fromHex(v.associatedData)),
        v.expectedError,
      ),
    ).toBe(true);
  });

  it.each(vectors.associatedData)("encodes associated data: $name", (v) => {
    expect(toHex(associatedData(v.fields))).toBe(v.encoded);
  });
});

describe("sealEnvelope / openEnvelope", () => {
  it("writes the LKE v1 header and adds exactly 32 bytes", async () => {
    const sealed = await sealEnvelope(KEY, new Uint8Array(10), new Uint8Array(0));
    expect(ENVELOPE_OVERHEAD).toBe(32);
    expect(sealed).toHaveLength(10 + ENVELOPE_OVERHEAD);
    expect([...sealed.subarray(0, 4)]).toEqual([0x4c, 0x4b, 0x45, 0x01]);
  });

  it("draws a fresh nonce per envelope", async () => {
    const a = await sealEnvelope(KEY, new Uint8Array(0), new Uint8Array(0));
    const b = await sealEnvelope(KEY, new Uint8Array(0), new Uint8Array(0));
    expect(toHex(a.subarray(4, 16))).not.toBe(toHex(b.subarray(4, 16)));
  });

  it("round-trips arbitrary plaintext and associated data (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 64 }),
        async (pt, ad) => {
          const sealed = await sealEnvelope(KEY, pt, ad);
          expect(await openEnvelope(KEY, sealed, ad)).toEqual(pt);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("refuses keys that are not 32 bytes with LK_FORMAT_INVALID, before any crypto", async () => {
    for (const length of [0, 16, 31, 33, 64]) {
      const key = new Uint8Array(length);
      expect(
        await failsWith(sealEnvelope(key, new Uint8Array(1), new Uint8Array(0)), "LK_FORMAT_INVALID"),
      ).toBe(true);
      expect(
        await failsWith(openEnvelope(key, new Uint8Array(48), new Uint8Array(0)), "LK_FORMAT_INVALID"),
      ).toBe(true);
    }
  });

  it("refuses a nonce that is not 12 bytes", async () => {
    for (const length of [0, 8, 16]) {
      const sealing = sealEnvelope(KEY, new Uint8Array(1), new Uint8Array(0), {
        nonce: new Uint8Array(length),
      });
      expect(await failsWith(sealing, "LK_FORMAT_INVALID")).toBe(true);
    }
  });

  it("fails opaquely on every single-bit flip of a small envelope (exhaustive)", async () => {
    const ad = utf8Encode("ctx");
    const sealed = await sealEnvelope(KEY, utf8Encode("secret"), ad);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      expect(await failsWith(openEnvelope(KEY, flipBit(sealed, bit), ad), "LK_DECRYPT_FAILED")).toBe(true);
    }
  });

  it("fails opaquely on every truncation and on extension", async () => {
    const ad = utf8Encode("ctx");
    const sealed = await sealEnvelope(KEY, utf8Encode("secret"), ad);
    for (let length = 0; length < sealed.length; length++) {
      expect(await failsWith(openEnvelope(KEY, sealed.subarray(0, length), ad), "LK_DECRYPT_FAILED")).toBe(
        true,
      );
    }
    const extended = new Uint8Array([...sealed, 0]);
    expect(await failsWith(openEnvelope(KEY, extended, ad), "LK_DECRYPT_FAILED")).toBe(true);
  });

  it("any single-bit flip makes openEnvelope fail with LK_DECRYPT_FAILED (property, 10,000 runs)", async () => {
    // One key, fresh plaintext/associated data per run; the flipped bit ranges over the whole envelope.
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 32 }),
        fc.nat(),
        async (pt, ad, bitSeed) => {
          const sealed = await sealEnvelope(KEY, pt, ad);
          return failsWith(
            openEnvelope(KEY, flipBit(sealed, bitSeed % (sealed.length * 8)), ad),
            "LK_DECRYPT_FAILED",
          );
        },
      ),
      { numRuns: 10_000 },
    );
  });

  it("any different associated data makes openEnvelope fail with LK_DECRYPT_FAILED (property, 10,000 runs)", async () => {
    const ad = utf8Encode("vault=0f8c6a2e;v=7");
    const sealed = await sealEnvelope(KEY, utf8Encode("the vault blob"), ad);
    const nearMiss = fc.oneof(
      // one byte changed
      fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, delta]) => {
        const out = new Uint8Array(ad);
        out[i % ad.length] = (out[i % ad.length]! + delta) & 0xff;
        return out;
      }),
      // truncated or extended
      fc.nat({ max: ad.length - 1 }).map((n) => ad.subarray(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((tail) => new Uint8Array([...ad, ...tail])),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((head) => new Uint8Array([...head, ...ad])),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(nearMiss, fc.uint8Array({ maxLength: 40 })), async (other) => {
        fc.pre(toHex(other) !== toHex(ad));
        return failsWith(openEnvelope(KEY, sealed, other), "LK_DECRYPT_FAILED");
      }),
      { numRuns: 10_000 },
    );
  });

  it("any different key makes openEnvelope fail with LK_DECRYPT_FAILED (property)", async () => {
    const sealed = await sealEnvelope(KEY, utf8Encode("the vault blob"), new Uint8Array(0));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (key) => {
        fc.pre(toHex(key) !== toHex(KEY));
        return failsWith(openEnvelope(key, sealed, new Uint8Array(0)), "LK_DECRYPT_FAILED");
      }),
      { numRuns: 1_000 },
    );
  });
});

describe("importEnvelopeKey: opening with a key page script cannot read back", () => {
  const ad = associatedData({ purpose: "latchkey-vault-key", vault: "v" });

  it("opens what the key's bytes seal, and nothing the bytes would not open", async () => {
    const bytes = new Uint8Array(32).fill(7);
    const envelope = await sealEnvelope(bytes, utf8Encode("a vault key"), ad);
    const key = await importEnvelopeKey(bytes);
    expect(new TextDecoder().decode(await openEnvelope(key, envelope, ad))).toBe("a vault key");
    expect(
      await failsWith(openEnvelope(key, envelope, associatedData({ purpose: "other" })), "LK_DECRYPT_FAILED"),
    ).toBe(true);
    const other = await importEnvelopeKey(new Uint8Array(32).fill(8));
    expect(await failsWith(openEnvelope(other, envelope, ad), "LK_DECRYPT_FAILED")).toBe(true);
  });

  it("makes a key that cannot be exported and only decrypts", async () => {
    const key = await importEnvelopeKey(new Uint8Array(32).fill(1));
    expect(key.extractable).toBe(false);
    expect(key.usages).toEqual(["decrypt"]);
    await expect(globalThis.crypto.subtle.exportKey("raw", key)).rejects.toThrow();
    expect(await failsWith(importEnvelopeKey(new Uint8Array(16)), "LK_FORMAT_INVALID")).toBe(true);
  });

  it("refuses a CryptoKey of another kind with LK_FORMAT_INVALID, not as a failed decryption", async () => {
    const subtle = globalThis.crypto.subtle;
    const aes128 = await subtle.importKey("raw", new Uint8Array(16), "AES-GCM", false, ["decrypt"]);
    const encryptOnly = await subtle.importKey("raw", new Uint8Array(32), "AES-GCM", false, ["encrypt"]);
    const hmac = await subtle.importKey("raw", new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    for (const key of [aes128, encryptOnly, hmac]) {
      expect(await failsWith(openEnvelope(key, new Uint8Array(48), ad), "LK_FORMAT_INVALID")).toBe(true);
    }
  });
});

describe("associatedData", () => {
  it("ignores insertion order", () => {
    expect(associatedData({ vault: "v", version: 3 })).toEqual(associatedData({ version: 3, vault: "v" }));
  });

  it("distinguishes numbers from strings and -0 from nothing", () => {
    expect(associatedData({ version: 7 })).not.toEqual(associatedData({ version: "7" }));
    expect(associatedData({ version: -0 })).toEqual(associatedData({ version: 0 }));
  });

  it("refuses values with no single canonical encoding", () => {
    const bad: Array<Record<string, string | number>> = [
      { version: 1.5 },
      { version: Number.NaN },
      { version: Number.POSITIVE_INFINITY },
      { version: 2 ** 53 },
      { vault: "\ud800" },
      { vault: "a\udc00b" },
      { "\ud83d": "x" },
    ];
    for (const fields of bad) {
      expect(() => associatedData(fields)).toThrow(expect.objectContaining({ code: "LK_FORMAT_INVALID" }));
    }
  });

  const fieldsArb = fc.dictionary(
    fc.string({ maxLength: 6, unit: "grapheme" }),
    fc.oneof(
      fc.string({ maxLength: 6, unit: "grapheme" }),
      fc.maxSafeInteger(),
      fc.integer({ min: -9, max: 9 }),
    ),
    { maxKeys: 4 },
  );

  it("is injective: different field sets never share an encoding (property)", () => {
    fc.assert(
      fc.property(fieldsArb, fieldsArb, (a, b) => {
        const canonical = (f: Record<string, string | number>) =>
          JSON.stringify(Object.entries(f).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
        const same = canonical(a) === canonical(b);
        return (toHex(associatedData(a)) === toHex(associatedData(b))) === same;
      }),
      { numRuns: 10_000 },
    );
  });

  it("does not depend on insertion order (property)", () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        const reversed = Object.fromEntries(Object.entries(fields).reverse());
        return toHex(associatedData(fields)) === toHex(associatedData(reversed));
      }),
      { numRuns: 2_000 },
    );
  });
});
