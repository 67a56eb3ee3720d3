// The pairing bodies' own rules: exact byte lengths for keys and sealed keys, and labels that display as what
// they are on the approving machine.
import { describe, expect, it } from "vitest";
import { toBase64 } from "../bytes.js";
import { checkSchema } from "./parse.js";
import {
  PAIRING_SEALED_KEY_SIZES,
  pairingApproveRequestSchema,
  pairingConsumeResponseSchema,
  pairingCreateRequestSchema,
  pairingLabelSchema,
  pairingRevealRequestSchema,
} from "./pairing-api.js";

describe("pairing labels", () => {
  it("take 1 to 64 printable characters, any script", () => {
    for (const label of [
      "laptop",
      "Ana’s MacBook Pro",
      "büro-pc",
      "ノートパソコン",
      "👩‍💻 desk",
      "x".repeat(64),
    ]) {
      expect(checkSchema(pairingLabelSchema, label).ok).toBe(true);
    }
  });

  it("refuse controls, separators, bidirectional overrides and isolates, a byte order mark, edge space", () => {
    const refused = [
      "",
      "x".repeat(65),
      "a\u0000b",
      "a\u001bb",
      "a\u0085b",
      "a\u2028b",
      "evil\u202epot-pal",
      "a\u200fb",
      "a\u2066b\u2069",
      "a\u061cb",
      "\ufeffa",
      " a",
      "a ",
    ];
    for (const label of refused) expect(checkSchema(pairingLabelSchema, label).ok).toBe(false);
  });
});

describe("pairing keys and sealed keys", () => {
  const bytes = (n: number) => toBase64(new Uint8Array(n).fill(7));

  it("are canonical base64 of exactly their size", () => {
    expect(checkSchema(pairingCreateRequestSchema, { label: "a", commitment: bytes(32) }).ok).toBe(true);
    expect(checkSchema(pairingCreateRequestSchema, { label: "a", commitment: bytes(31) }).ok).toBe(false);
    expect(checkSchema(pairingRevealRequestSchema, { publicKey: bytes(65), nonce: bytes(32) }).ok).toBe(true);
    // 64 and 65 bytes are both 88 characters: the decoded length tells them apart.
    expect(checkSchema(pairingRevealRequestSchema, { publicKey: bytes(64), nonce: bytes(32) }).ok).toBe(
      false,
    );
    expect(checkSchema(pairingApproveRequestSchema, { sealedKey: bytes(64) }).ok).toBe(true);
    expect(checkSchema(pairingApproveRequestSchema, { sealedKey: bytes(65) }).ok).toBe(false);
    const unpadded = bytes(32).replace(/=+$/, "");
    expect(checkSchema(pairingCreateRequestSchema, { label: "a", commitment: unpadded }).ok).toBe(false);
  });

  it("a sealed key is the wrapping key alone (64 bytes) or with the sharing key (96 bytes), nothing between", () => {
    expect(PAIRING_SEALED_KEY_SIZES).toEqual([64, 96]);
    const pairingId = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    for (const size of [64, 96]) {
      expect(checkSchema(pairingApproveRequestSchema, { sealedKey: bytes(size) }).ok).toBe(true);
      expect(checkSchema(pairingConsumeResponseSchema, { pairingId, sealedKey: bytes(size) }).ok).toBe(true);
    }
    // 80 bytes: a sealed key of 48, neither shape; 95 and 97 share 96's base64 length or come close to it.
    for (const size of [0, 32, 63, 65, 80, 95, 97, 128]) {
      const approve = checkSchema(pairingApproveRequestSchema, { sealedKey: bytes(size) });
      expect(approve, `${size} bytes`).toMatchObject({
        ok: false,
        message: '"sealedKey" must be standard base64 of 64 or 96 bytes.',
      });
      expect(checkSchema(pairingConsumeResponseSchema, { pairingId, sealedKey: bytes(size) }).ok).toBe(false);
    }
    const unpadded = bytes(64).replace(/=+$/, "");
    expect(checkSchema(pairingApproveRequestSchema, { sealedKey: unpadded }).ok).toBe(false);
  });

  it("refuse fields the body does not have", () => {
    expect(checkSchema(pairingApproveRequestSchema, { sealedKey: bytes(64), extra: 1 }).ok).toBe(false);
  });
});
