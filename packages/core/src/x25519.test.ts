import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toBase64, toBufferSource, toHex, utf8Encode } from "./bytes.js";
import type { ErrorCode } from "./errors.js";
import { errorCatalogue, isLatchkeyError } from "./errors.js";
import {
  formatWrappedKey,
  generateX25519KeyPair,
  importX25519PrivateKey,
  parseWrappedKey,
  unwrapKeyForRecipient,
  unwrapKeyFromSender,
  wrapKeyForRecipient,
  wrapKeyFromSender,
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

/** The authenticated wrap computed with node:crypto alone (ECDH, HKDF, AES-GCM), as an independent oracle. */
function nodeAuthWrap(
  key: Uint8Array,
  recipientPublic: Uint8Array,
  senderPrivate: Uint8Array,
  ephemeralPrivate: Uint8Array,
  iv: Uint8Array,
  context: Uint8Array,
): string {
  const pkcs8 = Buffer.from("302e020100300506032b656e04220420", "hex");
  const priv = (raw: Uint8Array) =>
    crypto.createPrivateKey({ key: Buffer.concat([pkcs8, raw]), format: "der", type: "pkcs8" });
  const pub = (raw: Uint8Array) =>
    crypto.createPublicKey({
      key: { kty: "OKP", crv: "X25519", x: Buffer.from(raw).toString("base64url") },
      format: "jwk",
    });
  const rawPublic = (raw: Uint8Array) =>
    Buffer.from(crypto.createPublicKey(priv(raw)).export({ format: "jwk" }).x!, "base64url");
  const ephemeralPublic = rawPublic(ephemeralPrivate);
  const senderPublic = rawPublic(senderPrivate);
  const dh1 = crypto.diffieHellman({ privateKey: priv(ephemeralPrivate), publicKey: pub(recipientPublic) });
  const dh2 = crypto.diffieHellman({ privateKey: priv(senderPrivate), publicKey: pub(recipientPublic) });
  const info = Buffer.concat([
    Buffer.from("latchkey-wrap-auth-v1"),
    ephemeralPublic,
    recipientPublic,
    senderPublic,
    context,
  ]);
  const kek = Buffer.from(crypto.hkdfSync("sha256", Buffer.concat([dh1, dh2]), Buffer.alloc(0), info, 32));
  const cipher = crypto.createCipheriv("aes-256-gcm", kek, iv);
  const ciphertext = Buffer.concat([cipher.update(key), cipher.final(), cipher.getAuthTag()]);
  return `${ephemeralPublic.toString("base64")}:${Buffer.from(iv).toString("base64")}:${ciphertext.toString("base64")}`;
}

describe("wrapKeyFromSender / unwrapKeyFromSender (authenticated form)", () => {
  // RFC 7748 §6.1's Alice as recipient and Bob as sender; the wire below was computed with node:crypto.
  const vector = {
    key: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    recipientPrivate: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    recipientPublic: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    senderPrivate: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    senderPublic: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    ephemeralPrivate: "a8abababababababababababababababababababababababababababababab6b",
    iv: "0102030405060708090a0b0c",
    context: "latchkey-org-vault-key-v1\n0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nacme\n3",
    wire: "43EthRoOXXm4McXjSrIrQaGYFx3iCbi4+sojoRxiSFk=:AQIDBAUGBwgJCgsM:J5ie8hnMIBST9bv5VRdngc4mbv6aBQPjacFJOsZpLqZYL+IqPmBddEXlXndjFxio",
  };
  const sender = { privateKey: fromHex(vector.senderPrivate), publicKey: fromHex(vector.senderPublic) };
  const recipientPrivate = fromHex(vector.recipientPrivate);
  const recipientPublic = fromHex(vector.recipientPublic);
  const context = utf8Encode(vector.context);

  it("matches the vector, which node:crypto computes the same", async () => {
    const options = { ephemeralPrivate: fromHex(vector.ephemeralPrivate), iv: fromHex(vector.iv) };
    const wire = await wrapKeyFromSender(fromHex(vector.key), recipientPublic, sender, context, options);
    expect(wire).toBe(vector.wire);
    const oracle = nodeAuthWrap(
      fromHex(vector.key),
      recipientPublic,
      sender.privateKey,
      options.ephemeralPrivate,
      options.iv,
      context,
    );
    expect(oracle).toBe(vector.wire);
    const key = await unwrapKeyFromSender(wire, recipientPrivate, recipientPublic, sender.publicKey, context);
    expect(toHex(key)).toBe(vector.key);
  });

  it("agrees with node:crypto for random keys, senders, recipients and contexts (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.string({ maxLength: 80 }),
        async (key, iv, text) => {
          const [recipient, from, ephemeral] = await Promise.all([
            generateX25519KeyPair(),
            generateX25519KeyPair(),
            generateX25519KeyPair(),
          ]);
          const bytes = utf8Encode(text);
          const wire = await wrapKeyFromSender(key, recipient.publicKey, from, bytes, {
            ephemeralPrivate: ephemeral.privateKey,
            iv,
          });
          expect(wire).toBe(
            nodeAuthWrap(key, recipient.publicKey, from.privateKey, ephemeral.privateKey, iv, bytes),
          );
          const opened = await unwrapKeyFromSender(
            wire,
            recipient.privateKey,
            recipient.publicKey,
            from.publicKey,
            bytes,
          );
          expect(toHex(opened)).toBe(toHex(key));
        },
      ),
      { numRuns: 50 },
    );
  });

  it("opens for no other sender: a server without the sender's private key cannot make one", async () => {
    const impostor = await generateX25519KeyPair();
    // The impostor wraps the key it wants planted, then claims it came from the real sender.
    const planted = await wrapKeyFromSender(fromHex(vector.key), recipientPublic, impostor, context);
    const opening = unwrapKeyFromSender(
      planted,
      recipientPrivate,
      recipientPublic,
      sender.publicKey,
      context,
    );
    expect(await failsWith(opening, "LK_DECRYPT_FAILED")).toBe(true);
    // A base-mode wrap (anyone can make one for a public key) does not pass as authenticated either.
    const anonymous = await wrapKeyForRecipient(fromHex(vector.key), recipientPublic);
    const asAuth = unwrapKeyFromSender(
      anonymous,
      recipientPrivate,
      recipientPublic,
      sender.publicKey,
      context,
    );
    expect(await failsWith(asAuth, "LK_DECRYPT_FAILED")).toBe(true);
    // Nor does an authenticated wrap open as a base-mode one.
    const asBase = unwrapKeyForRecipient(vector.wire, recipientPrivate, recipientPublic);
    expect(await failsWith(asBase, "LK_DECRYPT_FAILED")).toBe(true);
  });

  it("opens under no other context: a genuine wrap cannot be replayed for another copy or key version", async () => {
    for (const other of [
      "latchkey-org-vault-key-v1\n0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nacme\n2",
      "latchkey-org-vault-key-v1\n0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nacme2\n3",
      "latchkey-org-vault-key-v1\n1b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nacme\n3",
      "",
    ]) {
      const opening = unwrapKeyFromSender(
        vector.wire,
        recipientPrivate,
        recipientPublic,
        sender.publicKey,
        utf8Encode(other),
      );
      expect(await failsWith(opening, "LK_DECRYPT_FAILED")).toBe(true);
    }
  });

  it("refuses a low-order or short sender key when unwrapping", async () => {
    for (const { publicKey } of vectors.lowOrderPublicKeys) {
      // The key a server names as the sender's is checked like any peer key, and refused without saying why.
      const opening = unwrapKeyFromSender(
        vector.wire,
        recipientPrivate,
        recipientPublic,
        fromHex(publicKey),
        context,
      );
      expect(await failsWith(opening, "LK_DECRYPT_FAILED")).toBe(true);
    }
    const short = unwrapKeyFromSender(
      vector.wire,
      recipientPrivate,
      recipientPublic,
      new Uint8Array(31),
      context,
    );
    expect(await failsWith(short, "LK_FORMAT_INVALID")).toBe(true);
  });
});

describe("importX25519PrivateKey: a sharing key page script cannot read back", () => {
  const context = utf8Encode("latchkey-org-vault-key-v1\nvault\nacme\n1");

  it("unwraps what the scalar unwraps, as a key that cannot be exported", async () => {
    const recipient = await generateX25519KeyPair();
    const sender = await generateX25519KeyPair();
    const key = crypto.randomBytes(32);
    const wire = await wrapKeyFromSender(key, recipient.publicKey, sender, context);
    const imported = await importX25519PrivateKey(recipient.privateKey);
    expect(imported.extractable).toBe(false);
    await expect(globalThis.crypto.subtle.exportKey("pkcs8", imported)).rejects.toThrow();
    expect(toHex(await x25519PublicKey(imported))).toBe(toHex(recipient.publicKey));
    expect(
      toHex(await unwrapKeyFromSender(wire, imported, recipient.publicKey, sender.publicKey, context)),
    ).toBe(toHex(key));
    // The same checks as with the bytes: another sender's key does not open it.
    const other = await generateX25519KeyPair();
    expect(
      await failsWith(
        unwrapKeyFromSender(wire, imported, recipient.publicKey, other.publicKey, context),
        "LK_DECRYPT_FAILED",
      ),
    ).toBe(true);
    const plain = await wrapKeyForRecipient(key, recipient.publicKey);
    expect(toHex(await unwrapKeyForRecipient(plain, imported, recipient.publicKey))).toBe(toHex(key));
  });

  it("refuses a CryptoKey that is not a private X25519 key with LK_FORMAT_INVALID", async () => {
    const subtle = globalThis.crypto.subtle;
    const recipient = await generateX25519KeyPair();
    const publicOnly = await subtle.importKey(
      "raw",
      toBufferSource(recipient.publicKey),
      { name: "X25519" },
      false,
      [],
    );
    const aes = await subtle.importKey("raw", new Uint8Array(32), "AES-GCM", false, ["decrypt"]);
    const wire = await wrapKeyForRecipient(new Uint8Array(32), recipient.publicKey);
    for (const key of [publicOnly, aes]) {
      expect(
        await failsWith(unwrapKeyForRecipient(wire, key, recipient.publicKey), "LK_FORMAT_INVALID"),
      ).toBe(true);
    }
    expect(await failsWith(importX25519PrivateKey(new Uint8Array(31)), "LK_FORMAT_INVALID")).toBe(true);
  });
});
