import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  errorCatalogue,
  fromHex,
  hkdfSha256,
  isLatchkeyError,
  openEnvelope,
  sealEnvelope,
  toHex,
} from "@latchkey/core";
import { hkdfSha256Sync, nativeRandomBytes, openEnvelopeCli, sealEnvelopeSync } from "./native.js";

const vectorsDir = new URL("../../../core/test-vectors/", import.meta.url);
const envelopeVectors = JSON.parse(readFileSync(new URL("envelope.json", vectorsDir), "utf8")) as {
  valid: Array<{ key: string; nonce: string; plaintext: string; associatedData: string; envelope: string }>;
  invalid: Array<{ key: string; envelope: string; associatedData: string; expectedError: string }>;
};
const hkdfVectors = JSON.parse(readFileSync(new URL("hkdf.json", vectorsDir), "utf8")) as {
  cases: Array<{ ikm: string; salt: string; info: string; length: number; okm: string }>;
};

async function errorCodeOf(run: () => unknown): Promise<string | null> {
  try {
    await run();
    return null;
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    if (error.code === "LK_DECRYPT_FAILED") {
      // Opaque: the same message and hint every time, no cause.
      expect(error.message).toBe(errorCatalogue.LK_DECRYPT_FAILED.message);
      expect(error.cause).toBeUndefined();
    }
    return error.code;
  }
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const key = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe.each(["javascript", "node"] as const)("envelope, opened in %s", (implementation) => {
  it("reproduces core's committed vectors", async () => {
    for (const v of envelopeVectors.valid) {
      const sealed = sealEnvelopeSync(
        fromHex(v.key),
        fromHex(v.plaintext),
        fromHex(v.associatedData),
        undefined,
        fromHex(v.nonce),
      );
      expect(toHex(sealed)).toBe(v.envelope);
      expect(
        toHex(await openEnvelopeCli(fromHex(v.key), sealed, fromHex(v.associatedData), implementation)),
      ).toBe(v.plaintext);
    }
    for (const v of envelopeVectors.invalid) {
      expect(
        await errorCodeOf(() =>
          openEnvelopeCli(fromHex(v.key), fromHex(v.envelope), fromHex(v.associatedData), implementation),
        ),
      ).toBe(v.expectedError);
    }
  });

  it("opens what core seals and core opens what it seals (property)", async () => {
    await fc.assert(
      fc.asyncProperty(key, bytes(300), bytes(64), async (k, plaintext, ad) => {
        const fromCore = await sealEnvelope(k, plaintext, ad);
        expect(await openEnvelopeCli(k, fromCore, ad, implementation)).toEqual(plaintext);
        const fromNative = sealEnvelopeSync(k, plaintext, ad);
        expect(await openEnvelope(k, fromNative, ad)).toEqual(plaintext);
      }),
      { numRuns: 2000 },
    );
  });

  it("fails opaquely on any flipped bit or changed associated data (property)", async () => {
    await fc.assert(
      fc.asyncProperty(key, bytes(64), bytes(16), fc.nat(), async (k, plaintext, ad, where) => {
        const sealed = sealEnvelopeSync(k, plaintext, ad);
        const flipped = new Uint8Array(sealed);
        const bit = where % (sealed.length * 8);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        expect(await errorCodeOf(() => openEnvelopeCli(k, flipped, ad, implementation))).toBe(
          "LK_DECRYPT_FAILED",
        );
        const otherAd = new Uint8Array([...ad, 0]);
        expect(await errorCodeOf(() => openEnvelopeCli(k, sealed, otherAd, implementation))).toBe(
          "LK_DECRYPT_FAILED",
        );
        expect(
          await errorCodeOf(() =>
            openEnvelopeCli(k, sealed.subarray(0, sealed.length - 1), ad, implementation),
          ),
        ).toBe("LK_DECRYPT_FAILED");
      }),
      { numRuns: 10_000 },
    );
  });

  it("refuses a key that is not 32 bytes as a caller error, not a decrypt failure", async () => {
    expect(
      await errorCodeOf(() => sealEnvelopeSync(new Uint8Array(16), new Uint8Array(1), new Uint8Array(0))),
    ).toBe("LK_FORMAT_INVALID");
    expect(
      await errorCodeOf(() =>
        openEnvelopeCli(new Uint8Array(31), new Uint8Array(40), new Uint8Array(0), implementation),
      ),
    ).toBe("LK_FORMAT_INVALID");
  });

  it("draws the nonce from the injected random source", () => {
    const sealed = sealEnvelopeSync(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), (n) =>
      new Uint8Array(n).fill(7),
    );
    expect(toHex(sealed.subarray(4, 16))).toBe("07".repeat(12));
  });
});

describe.each(["javascript", "node"] as const)("HKDF in %s", (implementation) => {
  it("matches RFC 5869", () => {
    for (const c of hkdfVectors.cases) {
      expect(
        toHex(hkdfSha256Sync(fromHex(c.ikm), fromHex(c.salt), fromHex(c.info), c.length, implementation)),
      ).toBe(c.okm);
    }
  });

  it("agrees with core's WebCrypto HKDF (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        bytes(80),
        bytes(40),
        bytes(40),
        fc.integer({ min: 1, max: 200 }),
        async (i, s, n, l) => {
          expect(hkdfSha256Sync(i, s, n, l, implementation)).toEqual(await hkdfSha256(i, s, n, l));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("node:crypto random", () => {
  it("returns fresh bytes of the asked length", () => {
    expect(nativeRandomBytes(0)).toHaveLength(0);
    expect(toHex(nativeRandomBytes(32))).not.toBe(toHex(nativeRandomBytes(32)));
  });
});
