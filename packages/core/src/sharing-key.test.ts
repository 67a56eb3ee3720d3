// Sharing key fingerprints against node:crypto's SHA-256, and which public keys can be registered: every low-order
// point of the wrap vectors is refused (a wrap for it would fail), fresh keys and the vectors' recipients are not.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromHex, utf8Decode } from "./bytes.js";
import { isUsableSharingPublicKey, orgVaultKeyContext, sharingKeyFingerprint } from "./sharing-key.js";
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

describe("orgVaultKeyContext", () => {
  it("names the vault, the organisation and the key version, one per line after the label", () => {
    const context = orgVaultKeyContext("0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e", "acme", 3);
    expect(utf8Decode(context)).toBe(
      "latchkey-org-vault-key-v1\n0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nacme\n3",
    );
  });

  it("refuses line breaks and key versions below 1 or not whole, so no two inputs share a context", () => {
    const id = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
    for (const [vaultId, slug, version] of [
      [`${id}\nacme`, "x", 1],
      [id, "acme\n1", 1],
      [id, "acme\r", 1],
      [id, "acme", 0],
      [id, "acme", 1.5],
      [id, "acme", Number.MAX_SAFE_INTEGER + 1],
    ] as const) {
      expect(() => orgVaultKeyContext(vaultId, slug, version)).toThrow(
        expect.objectContaining({ code: "LK_FORMAT_INVALID" }),
      );
    }
  });
});
