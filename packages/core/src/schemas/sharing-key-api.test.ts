// The sharing-key bodies' own rules: a public key has one spelling (canonical standard base64 of exactly 32 bytes),
// a fingerprint is 64 lowercase hex digits, and messages never quote what was sent.
import { describe, expect, it } from "vitest";
import { toBase64 } from "../bytes.js";
import { checkSchema } from "./parse.js";
import {
  sharingKeyFingerprintSchema,
  sharingKeyRotateResponseSchema,
  sharingKeySetRequestSchema,
  sharingKeyStateResponseSchema,
} from "./sharing-key-api.js";

const KEY = toBase64(new Uint8Array(32).map((_, i) => 250 - i));

describe("sharing public keys", () => {
  it("take canonical standard base64 of 32 bytes", () => {
    expect(checkSchema(sharingKeySetRequestSchema, { publicKey: KEY }).ok).toBe(true);
  });

  it("refuse other lengths, URL-safe letters, whitespace, non-canonical padding bits, other types", () => {
    const urlSafe = KEY.replaceAll("+", "-").replaceAll("/", "_");
    expect(urlSafe).not.toBe(KEY);
    // The last character before "=" carries 2 unused bits; setting them spells the same bytes another way.
    const lastIndex = KEY.length - 2;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const sloppy =
      KEY.slice(0, lastIndex) + alphabet[alphabet.indexOf(KEY[lastIndex]!) | 1] + KEY.slice(lastIndex + 1);
    for (const publicKey of [
      toBase64(new Uint8Array(31)),
      toBase64(new Uint8Array(33)),
      urlSafe,
      ` ${KEY.slice(1)}`,
      `${KEY.slice(0, 10)}\n${KEY.slice(11)}`,
      KEY.replace("=", ""),
      sloppy,
      "",
      42,
      null,
    ]) {
      const checked = checkSchema(sharingKeySetRequestSchema, { publicKey });
      expect(checked.ok, String(publicKey)).toBe(false);
      if (!checked.ok) {
        expect(checked.message).toBe(`"publicKey" must be standard base64 of 32 bytes.`);
      }
    }
  });

  it("refuse fields a body may not have", () => {
    const checked = checkSchema(sharingKeySetRequestSchema, { publicKey: KEY, fingerprint: "0".repeat(64) });
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.message).toBe("The body may only have the fields publicKey.");
  });
});

describe("sharing key fingerprints", () => {
  it("are 64 lowercase hex digits", () => {
    expect(checkSchema(sharingKeyFingerprintSchema(), "0123456789abcdef".repeat(4)).ok).toBe(true);
    for (const bad of ["0123456789ABCDEF".repeat(4), "0".repeat(63), "0".repeat(65), `${"0".repeat(63)}g`]) {
      expect(checkSchema(sharingKeyFingerprintSchema(), bad).ok).toBe(false);
    }
  });
});

describe("answers", () => {
  it("state: one of the three states", () => {
    expect(
      checkSchema(sharingKeyStateResponseSchema, {
        state: "needs-initial-set",
        publicKey: null,
        fingerprint: null,
      }).ok,
    ).toBe(true);
    expect(
      checkSchema(sharingKeyStateResponseSchema, { state: "overwrite", publicKey: null, fingerprint: null })
        .ok,
    ).toBe(false);
  });

  it("rotate: counts are non-negative integers", () => {
    const answer = {
      publicKey: KEY,
      fingerprint: "a".repeat(64),
      previousFingerprint: null,
      rotated: true,
      orgs: [{ orgId: "o", slug: "acme", vaults: [{ vaultId: "v", name: "app" }] }],
      wrappedKeysDeleted: 1,
    };
    expect(checkSchema(sharingKeyRotateResponseSchema, answer).ok).toBe(true);
    expect(checkSchema(sharingKeyRotateResponseSchema, { ...answer, wrappedKeysDeleted: -1 }).ok).toBe(false);
  });
});
