import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toBase64, toHex } from "./bytes.js";
import type { ErrorCode } from "./errors.js";
import { errorCatalogue, isLatchkeyError } from "./errors.js";
import {
  formatWrappedKey,
  generateX25519KeyPair,
  parseWrappedKey,
  unwrapKeyForRecipient,
  wrapKeyForRecipient,
  x25519PublicKey,
  x25519SharedSecret,
  type WrappedKeyParts,
} from "./x25519.js";

interface X25519Vector {
  name: string;
  privateKey: string;
  publicKey: string;
  shared: string;
}
interface WrapVector {
  name: string;
  key: string;
  recipientPrivate: string;
  recipientPublic: string;
  ephemeralPrivate: string;
  ephemeralPublic: string;
  iv: string;
  wire: string;
}
interface InvalidWrapVector {
  name: string;
  wire: string;
  recipientPrivate: string;
  recipientPublic: string;
  expectedError: ErrorCode;
}
const vectors = JSON.parse(readFileSync(new URL("../test-vectors/wrap.json", import.meta.url), "utf8")) as {
  x25519: X25519Vector[];
  lowOrderPublicKeys: Array<{ name: string; publicKey: string }>;
  valid: WrapVector[];
  invalid: InvalidWrapVector[];
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
        error.cause === undefined &&
        error.details === undefined
      );
    }
    return true;
  }
}

function tryParse(wire: string): WrappedKeyParts | undefined {
  try {
    return parseWrappedKey(wire);
  } catch (error) {
    if (!isLatchkeyError(error, "LK_FORMAT_INVALID")) throw error;
    return undefined;
  }
}

/** Independent oracle for the wire form, built on Node's Buffer rather than core's decoder. */
function isCanonicalWire(wire: string): boolean {
  const parts = wire.split(":");
  if (parts.length !== 3) return false;
  return parts.every((part, i) => {
    if (part.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(part)) return false;
    const bytes = Buffer.from(part, "base64");
    return bytes.toString("base64") === part && bytes.length === [32, 12, 48][i];
  });
}

const ALICE = vectors.valid[0]!;

describe("X25519", () => {
  it.each(vectors.x25519)("$name", async (v) => {
    expect(toHex(await x25519SharedSecret(fromHex(v.privateKey), fromHex(v.publicKey)))).toBe(v.shared);
  });

  it("derives RFC 7748 public keys from private keys", async () => {
    for (const v of vectors.valid) {
      expect(toHex(await x25519PublicKey(fromHex(v.recipientPrivate)))).toBe(v.recipientPublic);
      expect(toHex(await x25519PublicKey(fromHex(v.ephemeralPrivate)))).toBe(v.ephemeralPublic);
    }
  });

  it("generates 32-byte key pairs whose halves match and which agree with each other", async () => {
    const a = await generateX25519KeyPair();
    const b = await generateX25519KeyPair();
    expect(a.publicKey).toHaveLength(32);
    expect(a.privateKey).toHaveLength(32);
    expect(await x25519PublicKey(a.privateKey)).toEqual(a.publicKey);
    expect(toHex(a.privateKey)).not.toBe(toHex(b.privateKey));
    expect(await x25519SharedSecret(a.privateKey, b.publicKey)).toEqual(
      await x25519SharedSecret(b.privateKey, a.publicKey),
    );
  });

  it.each(vectors.lowOrderPublicKeys)("refuses the low-order public key $name", async ({ publicKey }) => {
    const { privateKey } = await generateX25519KeyPair();
    expect(await failsWith(x25519SharedSecret(privateKey, fromHex(publicKey)), "LK_FORMAT_INVALID")).toBe(
      true,
    );
    expect(
      await failsWith(wrapKeyForRecipient(new Uint8Array(32), fromHex(publicKey)), "LK_FORMAT_INVALID"),
    ).toBe(true);
  });

  it("refuses keys that are not 32 bytes", async () => {
    const ok = new Uint8Array(32).fill(9);
    for (const bad of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33)]) {
      expect(await failsWith(x25519SharedSecret(bad, ok), "LK_FORMAT_INVALID")).toBe(true);
      expect(await failsWith(x25519SharedSecret(ok, bad), "LK_FORMAT_INVALID")).toBe(true);
      expect(await failsWith(x25519PublicKey(bad), "LK_FORMAT_INVALID")).toBe(true);
    }
  });
});

describe("key wrapping test vectors", () => {
  it.each(vectors.valid)("wraps and unwraps: $name", async (v) => {
    const wire = await wrapKeyForRecipient(fromHex(v.key), fromHex(v.recipientPublic), {
      ephemeralPrivate: fromHex(v.ephemeralPrivate),
      iv: fromHex(v.iv),
    });
    expect(wire).toBe(v.wire);
    const key = await unwrapKeyForRecipient(v.wire, fromHex(v.recipientPrivate), fromHex(v.recipientPublic));
    expect(toHex(key)).toBe(v.key);
  });

  it.each(vectors.invalid)("refuses ($expectedError): $name", async (v) => {
    const unwrapping = unwrapKeyForRecipient(v.wire, fromHex(v.recipientPrivate), fromHex(v.recipientPublic));
    expect(await failsWith(unwrapping, v.expectedError)).toBe(true);
    // The parser alone must agree with where the failure was expected.
    expect(tryParse(v.wire) === undefined).toBe(v.expectedError === "LK_FORMAT_INVALID");
  });
});

describe("wrapKeyForRecipient / unwrapKeyForRecipient", () => {
  it("round-trips with generated keys and uses a fresh ephemeral key and IV each time", async () => {
    const recipient = await generateX25519KeyPair();
    const key = new Uint8Array(32).map((_, i) => i);
    const a = await wrapKeyForRecipient(key, recipient.publicKey);
    const b = await wrapKeyForRecipient(key, recipient.publicKey);
    expect(isCanonicalWire(a)).toBe(true);
    const [ephA, ivA] = a.split(":");
    const [ephB, ivB] = b.split(":");
    expect(ephA).not.toBe(ephB);
    expect(ivA).not.toBe(ivB);
    expect(await unwrapKeyForRecipient(a, recipient.privateKey, recipient.publicKey)).toEqual(key);
    expect(await unwrapKeyForRecipient(b, recipient.privateKey, recipient.publicKey)).toEqual(key);
  });

  it("fails opaquely for another recipient", async () => {
    const recipient = await generateX25519KeyPair();
    const other = await generateX25519KeyPair();
    const wire = await wrapKeyForRecipient(new Uint8Array(32), recipient.publicKey);
    expect(
      await failsWith(unwrapKeyForRecipient(wire, other.privateKey, other.publicKey), "LK_DECRYPT_FAILED"),
    ).toBe(true);
  });

  it("refuses wrong-length inputs with LK_FORMAT_INVALID", async () => {
    const pub = fromHex(ALICE.recipientPublic);
    const priv = fromHex(ALICE.recipientPrivate);
    expect(await failsWith(wrapKeyForRecipient(new Uint8Array(16), pub), "LK_FORMAT_INVALID")).toBe(true);
    expect(
      await failsWith(wrapKeyForRecipient(new Uint8Array(32), pub.subarray(1)), "LK_FORMAT_INVALID"),
    ).toBe(true);
    const badIv = wrapKeyForRecipient(new Uint8Array(32), pub, { iv: new Uint8Array(16) });
    expect(await failsWith(badIv, "LK_FORMAT_INVALID")).toBe(true);
    const badEphemeral = wrapKeyForRecipient(new Uint8Array(32), pub, {
      ephemeralPrivate: new Uint8Array(31),
    });
    expect(await failsWith(badEphemeral, "LK_FORMAT_INVALID")).toBe(true);
    expect(
      await failsWith(unwrapKeyForRecipient(ALICE.wire, priv.subarray(1), pub), "LK_FORMAT_INVALID"),
    ).toBe(true);
    expect(
      await failsWith(unwrapKeyForRecipient(ALICE.wire, priv, pub.subarray(1)), "LK_FORMAT_INVALID"),
    ).toBe(true);
  });

  it("any single-bit flip in any part makes unwrapping fail with LK_DECRYPT_FAILED (property, 10,000 runs)", async () => {
    // One recipient and one wrapped key: the bit index ranges over all 92 bytes (ephemeral key, IV, ciphertext+tag).
    const priv = fromHex(ALICE.recipientPrivate);
    const pub = fromHex(ALICE.recipientPublic);
    const parts = parseWrappedKey(ALICE.wire);
    const whole = new Uint8Array([...parts.ephemeralPublic, ...parts.iv, ...parts.ciphertext]);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: whole.length * 8 - 1 }), async (bit) => {
        const flipped = new Uint8Array(whole);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const wire = formatWrappedKey({
          ephemeralPublic: flipped.subarray(0, 32),
          iv: flipped.subarray(32, 44),
          ciphertext: flipped.subarray(44),
        });
        return failsWith(unwrapKeyForRecipient(wire, priv, pub), "LK_DECRYPT_FAILED");
      }),
      { numRuns: 10_000 },
    );
  });

  it("every single-bit flip of the ciphertext+tag fails (exhaustive)", async () => {
    const priv = fromHex(ALICE.recipientPrivate);
    const pub = fromHex(ALICE.recipientPublic);
    const parts = parseWrappedKey(ALICE.wire);
    for (let bit = 0; bit < 48 * 8; bit++) {
      const ciphertext = new Uint8Array(parts.ciphertext);
      ciphertext[bit >> 3]! ^= 1 << (bit & 7);
      const wire = formatWrappedKey({ ...parts, ciphertext });
      expect(await failsWith(unwrapKeyForRecipient(wire, priv, pub), "LK_DECRYPT_FAILED")).toBe(true);
    }
  });
});

describe("parseWrappedKey / formatWrappedKey", () => {
  const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const NOISE = [..."=:-_ \n\r\t.;", "\u00a0", "\uff21", "\u0000"];
  const triple = fc.record({
    ephemeralPublic: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    iv: fc.uint8Array({ minLength: 12, maxLength: 12 }),
    ciphertext: fc.uint8Array({ minLength: 48, maxLength: 48 }),
  });

  it("formats and parses the vector's parts", () => {
    const parts = parseWrappedKey(ALICE.wire);
    expect(toHex(parts.ephemeralPublic)).toBe(ALICE.ephemeralPublic);
    expect(toHex(parts.iv)).toBe(ALICE.iv);
    expect(parts.ciphertext).toHaveLength(48);
    expect(formatWrappedKey(parts)).toBe(ALICE.wire);
  });

  it("refuses parts of the wrong length when formatting", () => {
    const parts = parseWrappedKey(ALICE.wire);
    for (const bad of [
      { ...parts, ephemeralPublic: new Uint8Array(31) },
      { ...parts, iv: new Uint8Array(16) },
      { ...parts, ciphertext: new Uint8Array(32) },
    ]) {
      expect(() => formatWrappedKey(bad)).toThrow(expect.objectContaining({ code: "LK_FORMAT_INVALID" }));
    }
  });

  it("format then parse round-trips any byte triple (property)", () => {
    fc.assert(
      fc.property(triple, (parts) => {
        const wire = formatWrappedKey(parts);
        const expected = [parts.ephemeralPublic, parts.iv, parts.ciphertext]
          .map((p) => Buffer.from(p).toString("base64"))
          .join(":");
        const parsed = parseWrappedKey(wire);
        return (
          wire === expected &&
          toHex(parsed.ephemeralPublic) === toHex(parts.ephemeralPublic) &&
          toHex(parsed.iv) === toHex(parts.iv) &&
          toHex(parsed.ciphertext) === toHex(parts.ciphertext)
        );
      }),
      { numRuns: 10_000 },
    );
  });

  /** A valid wire string plus up to three edits of the kinds a copy-paste, a shell or a lenient encoder make. */
  const mutatedWire = fc
    .tuple(
      triple,
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant("insert"),
            at: fc.nat(),
            ch: fc.constantFrom(...NOISE, ...STANDARD),
          }),
          fc.record({
            kind: fc.constant("replace"),
            at: fc.nat(),
            ch: fc.constantFrom(...NOISE, ...STANDARD),
          }),
          fc.record({ kind: fc.constant("delete"), at: fc.nat() }),
          fc.record({
            kind: fc.constantFrom(
              "addPad",
              "dropPad",
              "urlSafe",
              "bumpTrailing",
              "swapParts",
              "dropPart",
              "dupPart",
            ),
            part: fc.nat({ max: 2 }),
          }),
          fc.record({
            kind: fc.constant("resize"),
            part: fc.nat({ max: 2 }),
            delta: fc.integer({ min: -3, max: 3 }),
          }),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([parts, edits]) => {
      let s = formatWrappedKey(parts);
      for (const edit of edits) {
        const fields = s.split(":");
        const p = "part" in edit ? edit.part % fields.length : 0;
        const at = "at" in edit ? edit.at % (s.length + 1) : 0;
        switch (edit.kind) {
          case "insert":
            s = s.slice(0, at) + edit.ch + s.slice(at);
            break;
          case "replace":
            s = s.slice(0, at) + edit.ch + s.slice(at + 1);
            break;
          case "delete":
            s = s.slice(0, at) + s.slice(at + 1);
            break;
          case "addPad":
            fields[p] += "=";
            s = fields.join(":");
            break;
          case "dropPad":
            fields[p] = fields[p]!.replace(/=$/, "");
            s = fields.join(":");
            break;
          case "urlSafe":
            s = s.replaceAll("+", "-").replaceAll("/", "_");
            break;
          case "bumpTrailing": {
            const f = fields[p]!;
            const i = f.replace(/=+$/, "").length - 1;
            if (i >= 0)
              fields[p] = f.slice(0, i) + STANDARD[(STANDARD.indexOf(f[i]!) + 1) % 64]! + f.slice(i + 1);
            s = fields.join(":");
            break;
          }
          case "swapParts":
            s = [fields[2], fields[1], fields[0], ...fields.slice(3)].join(":");
            break;
          case "dropPart":
            fields.splice(p, 1);
            s = fields.join(":");
            break;
          case "dupPart":
            fields.splice(p, 0, fields[p]!);
            s = fields.join(":");
            break;
          case "resize": {
            // Re-encode the part canonically with a few bytes more or fewer: valid base64, wrong length.
            const bytes = Buffer.from(fields[p]!, "base64");
            const resized =
              edit.delta < 0
                ? bytes.subarray(0, Math.max(0, bytes.length + edit.delta))
                : Buffer.concat([bytes, Buffer.alloc(edit.delta)]);
            fields[p] = resized.toString("base64");
            s = fields.join(":");
            break;
          }
        }
      }
      return s;
    });

  it("parse succeeds iff formatWrappedKey(parse(s)) === s, and exactly for canonical strings (property)", () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          { arbitrary: mutatedWire, weight: 8 },
          {
            arbitrary: fc.string({ unit: fc.constantFrom(...STANDARD, "=", ":", ...NOISE), maxLength: 100 }),
            weight: 1,
          },
          { arbitrary: fc.string({ unit: "binary", maxLength: 100 }), weight: 1 },
        ),
        (wire) => {
          const parsed = tryParse(wire);
          if (parsed) accepted++;
          else rejected++;
          return (
            (parsed !== undefined) === isCanonicalWire(wire) && (!parsed || formatWrappedKey(parsed) === wire)
          );
        },
      ),
      { numRuns: 10_000 },
    );
    // Guards the generator: both sides of the "iff" must actually be exercised.
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  });

  it("refuses non-strings", () => {
    expect(() => parseWrappedKey(undefined as unknown as string)).toThrow(
      expect.objectContaining({ code: "LK_FORMAT_INVALID" }),
    );
  });

  it("is strict about each part's exact length in characters", () => {
    const [eph, iv, ct] = ALICE.wire.split(":") as [string, string, string];
    expect(eph).toHaveLength(44);
    expect(iv).toHaveLength(16);
    expect(ct).toHaveLength(64);
    expect(tryParse(`${eph}:${toBase64(new Uint8Array(15))}:${ct}`)).toBeUndefined();
  });
});
