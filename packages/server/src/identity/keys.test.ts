import { createPublicKey, hkdfSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deriveIdentityKeys } from "./keys.js";

const SECRET = "unit-test-secret-0123456789abcdefghijklmn";

describe("deriveIdentityKeys", () => {
  it("derives the same keys from the same secret (every process agrees) and others from another", () => {
    const a = deriveIdentityKeys(SECRET);
    const b = deriveIdentityKeys(SECRET);
    const c = deriveIdentityKeys(`${SECRET}x`);
    expect(b.signingJwk).toEqual(a.signingJwk);
    expect(b.cookieKeys).toEqual(a.cookieKeys);
    expect(c.signingJwk.x).not.toBe(a.signingJwk.x);
    expect(c.cookieKeys).not.toEqual(a.cookieKeys);
    expect(a.signingJwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(a.cookieKeys[0]).not.toContain(SECRET);
  });

  it("signs with a working Ed25519 key pair", () => {
    const { signingJwk } = deriveIdentityKeys(SECRET);
    const data = Buffer.from("payload");
    const signature = sign(null, data, { key: signingJwk, format: "jwk" });
    const publicKey = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: signingJwk.x! },
      format: "jwk",
    });
    expect(verify(null, data, publicKey, signature)).toBe(true);
  });

  it("seals a TOTP secret for one user: opened by the same user and secret only", () => {
    const keys = deriveIdentityKeys(SECRET);
    const sealed = keys.sealTotp("user-1", "JBSWY3DPEHPK3PXP");
    expect(sealed).not.toContain("JBSWY3DPEHPK3PXP");
    expect(keys.openTotp("user-1", sealed)).toBe("JBSWY3DPEHPK3PXP");
    expect(() => keys.openTotp("user-2", sealed)).toThrow();
    expect(() => deriveIdentityKeys(`${SECRET}x`).openTotp("user-1", sealed)).toThrow();
    // A fresh IV every time.
    expect(keys.sealTotp("user-1", "JBSWY3DPEHPK3PXP")).not.toBe(sealed);
  });

  it("derives the step-up proof key with HKDF-SHA256 under its own label, apart from every other key", () => {
    const keys = deriveIdentityKeys(SECRET);
    const expected = hkdfSync("sha256", SECRET, "latchkey-server identity v1", "step-up proof hs256", 32);
    expect(Buffer.from(keys.stepUpKey).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(deriveIdentityKeys(SECRET).stepUpKey).equals(Buffer.from(keys.stepUpKey))).toBe(true);
    expect(Buffer.from(deriveIdentityKeys(`${SECRET}x`).stepUpKey).equals(Buffer.from(keys.stepUpKey))).toBe(
      false,
    );
    expect(Buffer.from(keys.stepUpKey).toString("base64url")).not.toBe(keys.cookieKeys[0]);
  });

  it("derives the CI access token key under its own label, so neither token kind verifies as the other", () => {
    const keys = deriveIdentityKeys(SECRET);
    const expected = hkdfSync("sha256", SECRET, "latchkey-server identity v1", "ci access token hs256", 32);
    expect(Buffer.from(keys.ciAccessKey).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(keys.ciAccessKey).equals(Buffer.from(keys.stepUpKey))).toBe(false);
    expect(
      Buffer.from(deriveIdentityKeys(`${SECRET}x`).ciAccessKey).equals(Buffer.from(keys.ciAccessKey)),
    ).toBe(false);
  });
});
