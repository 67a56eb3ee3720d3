import { createCipheriv, createHash, hkdfSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "@latchkey/core";
import { aes256GcmOpen, hkdfSha256, sha256 } from "./pure.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

/** node:crypto's AES-GCM: the ciphertext with its 16-byte tag appended, as aes256GcmOpen takes it. */
function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  algorithm: "aes-256-gcm" | "aes-128-gcm" = "aes-256-gcm",
): Uint8Array {
  const cipher = createCipheriv(algorithm, key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  return new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

describe("SHA-256 and HKDF in JavaScript", () => {
  it("match the FIPS 180-4 and RFC 5869 vectors", () => {
    expect(toHex(sha256(new Uint8Array(0)))).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(toHex(sha256(utf8("abc")))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(toHex(sha256(utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
    // RFC 5869 test cases 1 and 3 (no salt, no info).
    expect(
      toHex(
        hkdfSha256(
          new Uint8Array(22).fill(0x0b),
          fromHex("000102030405060708090a0b0c"),
          fromHex("f0f1f2f3f4f5f6f7f8f9"),
          42,
        ),
      ),
    ).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    expect(toHex(hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42))).toBe(
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    );
  });

  it("agree with node:crypto on generated inputs", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 1, max: 255 * 32 }),
        (data, salt, info, length) => {
          expect(toHex(sha256(data))).toBe(createHash("sha256").update(data).digest("hex"));
          expect(toHex(hkdfSha256(data, salt, info, length))).toBe(
            Buffer.from(hkdfSync("sha256", data, salt, info, length)).toString("hex"),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses an output length HKDF cannot give", () => {
    expect(() =>
      hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1),
    ).toThrow();
  });
});

describe("AES-256-GCM decryption in JavaScript", () => {
  // The AES-256 cases of the GCM specification (McGrew and Viega, test cases 13 to 16).
  const K15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
  const P15 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
  const C15 =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
  const vectors = [
    {
      key: "00".repeat(32),
      iv: "00".repeat(12),
      aad: "",
      pt: "",
      ct: "",
      tag: "530f8afbc74536b9a963b4f1c4cb738b",
    },
    {
      key: "00".repeat(32),
      iv: "00".repeat(12),
      aad: "",
      pt: "00".repeat(16),
      ct: "cea7403d4d606b6e074ec5d3baf39d18",
      tag: "d0d1c8a799996bf0265b98b5d48ab919",
    },
    {
      key: K15,
      iv: "cafebabefacedbaddecaf888",
      aad: "",
      pt: P15,
      ct: C15,
      tag: "b094dac5d93471bdec1a502270e3cc6c",
    },
    {
      key: K15,
      iv: "cafebabefacedbaddecaf888",
      aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
      pt: P15.slice(0, 120),
      ct: C15.slice(0, 120),
      tag: "76fc6ece0f4e1768cddf8853bb2d551b",
    },
  ];

  it("opens the specification's vectors, and node:crypto seals the same bytes", async () => {
    for (const v of vectors) {
      const sealed = fromHex(v.ct + v.tag);
      expect(toHex(seal(fromHex(v.key), fromHex(v.iv), fromHex(v.pt), fromHex(v.aad)))).toBe(v.ct + v.tag);
      const opened = await aes256GcmOpen(fromHex(v.key), fromHex(v.iv), sealed, fromHex(v.aad));
      expect(opened === null ? null : toHex(opened)).toBe(v.pt);
    }
  });

  it("opens whatever node:crypto seals, and nothing that was changed", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 400 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (key, nonce, plaintext, aad, where, bit) => {
          const sealed = seal(key, nonce, plaintext, aad);
          expect(toHex((await aes256GcmOpen(key, nonce, sealed, aad))!)).toBe(toHex(plaintext));
          // One flipped bit anywhere (ciphertext, tag, additional data, nonce or key) must fail the tag check.
          const parts = [sealed, aad, nonce, key].filter((part) => part.length > 0);
          const target = parts[where % parts.length]!;
          const flipped = Uint8Array.from(target);
          flipped[where % flipped.length]! ^= 1 << bit;
          const swap = (part: Uint8Array) => (part === target ? flipped : part);
          expect(await aes256GcmOpen(swap(key), swap(nonce), swap(sealed), swap(aad))).toBeNull();
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses what is not the envelope's AES-256 with a 12-byte nonce, even when its tag verifies", async () => {
    // Each is sealed correctly for its own sizes, which the library alone would open.
    const x = utf8("x");
    const none = new Uint8Array(0);
    const aes128 = seal(new Uint8Array(16), new Uint8Array(12), x, none, "aes-128-gcm");
    expect(await aes256GcmOpen(new Uint8Array(16), new Uint8Array(12), aes128, none)).toBeNull();
    const longNonce = seal(new Uint8Array(32), new Uint8Array(16), x, none);
    expect(await aes256GcmOpen(new Uint8Array(32), new Uint8Array(16), longNonce, none)).toBeNull();
    const sealed = seal(new Uint8Array(32), new Uint8Array(12), x, none);
    expect(toHex((await aes256GcmOpen(new Uint8Array(32), new Uint8Array(12), sealed, none))!)).toBe(
      toHex(x),
    );
    expect(
      await aes256GcmOpen(new Uint8Array(32), new Uint8Array(12), sealed.subarray(0, 15), none),
    ).toBeNull();
  });
});
