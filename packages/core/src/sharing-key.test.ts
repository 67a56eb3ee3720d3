// Sharing key fingerprints against node:crypto's SHA-256, and which public keys can be registered: every low-order
// point of the wrap vectors is refused (a wrap for it would fail), fresh keys and the vectors' recipients are not.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromHex } from "./bytes.js";
import { isUsableSharingPublicKey, sharingKeyFingerprint } from "./sharing-key.js";
import { generateX25519KeyPair } from "./x25519.js";

const vectors = JSON.parse(readFileSync(new URL("../test-vectors/wrap.json", import.meta.url), "utf8")) as {
  lowOrderPublicKeys: Array<{ name: string; publicKey: string }>;
  valid: Array<{ recipientPublic: string }>;
};

describe("sharingKeyFingerprint", () => {
  it("is the lowercase hex SHA-256 of the raw public key", async () => {
    for (let i = 0; i < 5; i++) {
      const { publicKey } = await generateX25519KeyPair();
      const expected = createHash("sha256").update(publicKey).digest("hex");
      expect(await sharingKeyFingerprint(publicKey)).toBe(expected);
    }
  });
});

describe("isUsableSharingPublicKey", () => {
  it.each(vectors.lowOrderPublicKeys)("refuses the low-order point $name", async ({ publicKey }) => {
    expect(await isUsableSharingPublicKey(fromHex(publicKey))).toBe(false);
  });

  it("refuses a key that is not 32 bytes", async () => {
    for (const length of [0, 31, 33, 64]) {
      expect(await isUsableSharingPublicKey(new Uint8Array(length).fill(9))).toBe(false);
    }
  });

  it("takes fresh keys and the recipients of the wrap vectors", async () => {
    expect(await isUsableSharingPublicKey((await generateX25519KeyPair()).publicKey)).toBe(true);
    for (const v of vectors.valid)
      expect(await isUsableSharingPublicKey(fromHex(v.recipientPublic))).toBe(true);
  });
});
