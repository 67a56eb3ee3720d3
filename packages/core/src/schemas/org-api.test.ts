import { describe, expect, it } from "vitest";
import { generateX25519KeyPair, wrapKeyForRecipient } from "../x25519.js";
import {
  isOrgSlug,
  isWrappedKeyWire,
  orgCreateRequestSchema,
  orgMemberAddRequestSchema,
  orgPushRequestSchema,
  orgShareRequestSchema,
  WRAPPED_KEY_WIRE_LENGTH,
} from "./org-api.js";
import { checkSchema } from "./parse.js";
import type { WireSchema } from "./sync-api.js";

const USER = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
const FINGERPRINT = "a".repeat(64);
const CANARY = "c2VjcmV0LWNhbmFyeQ";

function problem<T>(schema: WireSchema<T>, value: unknown): string | null {
  const checked = checkSchema(schema, value);
  return checked.ok ? null : checked.message;
}

async function wrapped(): Promise<string> {
  const { publicKey } = await generateX25519KeyPair();
  return wrapKeyForRecipient(new Uint8Array(32).fill(7), publicKey);
}

describe("org slugs", () => {
  it("takes lower-case letters, digits and inner hyphens up to 40 characters", () => {
    for (const slug of ["a", "acme", "acme-2", "0", "a".repeat(40)]) expect(isOrgSlug(slug)).toBe(true);
    for (const slug of ["", "-a", "a-", "Acme", "a_b", "a b", "a".repeat(41), "a\u0000", "é"]) {
      expect(isOrgSlug(slug)).toBe(false);
      expect(problem(orgCreateRequestSchema, { slug })).toMatch(/^"slug" must be/);
    }
  });
});

describe("org names", () => {
  it("refuses bidirectional controls and a byte order mark, which could make a name read as another", () => {
    for (const name of ["Acme", "Acme Ltd (EU)", "Société"]) {
      expect(problem(orgCreateRequestSchema, { slug: "acme", name })).toBeNull();
    }
    for (const name of [
      "Acme\u202eDLT",
      "\u2066Acme\u2069",
      "Acme\u200f",
      "\ufeffAcme",
      "Acme\u061c",
      "a\u0007",
    ]) {
      expect(problem(orgCreateRequestSchema, { slug: "acme", name })).toMatch(/^"name" must be/);
    }
  });
});

describe("orgShareRequestSchema", () => {
  const share = async () => ({
    encryptedBlob: "AAAA",
    name: "demo",
    baseVersion: 0,
    senderFingerprint: FINGERPRINT,
    wrappedKeys: [{ userId: USER, wrappedKey: await wrapped(), fingerprint: FINGERPRINT }],
  });

  it("takes a share whose keys are in the strict wire form", async () => {
    const body = await share();
    expect(body.wrappedKeys[0]!.wrappedKey).toHaveLength(WRAPPED_KEY_WIRE_LENGTH);
    expect(problem(orgShareRequestSchema, body)).toBeNull();
  });

  it("needs the fingerprint of the key the wraps are made from", async () => {
    const { senderFingerprint: _, ...unsigned } = await share();
    expect(problem(orgShareRequestSchema, unsigned)).toMatch(/^"senderFingerprint" must be 64 lowercase hex/);
    expect(
      problem(orgShareRequestSchema, { ...(await share()), senderFingerprint: FINGERPRINT.toUpperCase() }),
    ).toMatch(/^"senderFingerprint" must be/);
  });

  it("refuses a malformed wrapped key without quoting it", async () => {
    const body = await share();
    const good = body.wrappedKeys[0]!.wrappedKey;
    const [a, b, c] = good.split(":") as [string, string, string];
    for (const bad of [
      `${a}:${b}:${c}:`,
      `${a}:${b}`,
      ` ${good}`.slice(0, WRAPPED_KEY_WIRE_LENGTH),
      // URL-safe base64: always a "-" in the ciphertext, whatever bytes the random key drew (a key with no "+"
      // or "/" to replace would otherwise stay valid).
      `${a}:${b}:-${c.slice(1)}`,
      `${a}:${b}:${c.slice(0, -1)}_`,
      `${CANARY}${good}`.slice(0, WRAPPED_KEY_WIRE_LENGTH),
    ]) {
      if (bad === good) continue;
      expect(isWrappedKeyWire(bad)).toBe(false);
      const message = problem(orgShareRequestSchema, {
        ...body,
        wrappedKeys: [{ ...body.wrappedKeys[0]!, wrappedKey: bad }],
      });
      expect(message).toMatch(/^"wrappedKey" must be a wrapped key/);
      expect(message).not.toContain(CANARY);
    }
  });

  it("refuses two keys for one member, none at all, and a fingerprint that is no hex SHA-256", async () => {
    const body = await share();
    expect(problem(orgShareRequestSchema, { ...body, wrappedKeys: [] })).toMatch(/must hold 1 to/);
    expect(
      problem(orgShareRequestSchema, { ...body, wrappedKeys: [body.wrappedKeys[0], body.wrappedKeys[0]] }),
    ).toBe(`"wrappedKeys" must hold at most one key per member.`);
    expect(
      problem(orgShareRequestSchema, {
        ...body,
        wrappedKeys: [{ ...body.wrappedKeys[0]!, fingerprint: FINGERPRINT.toUpperCase() }],
      }),
    ).toBe(`"fingerprint" must be 64 lowercase hex digits.`);
  });

  it("lists its own fields when refusing an unknown one, like every body", () => {
    expect(
      problem(orgPushRequestSchema, { encryptedBlob: "AAAA", name: "x", baseVersion: 0, note: CANARY }),
    ).toBe("The body may only have the fields encryptedBlob, schema, name, baseVersion, escrow.");
    expect(
      problem(orgPushRequestSchema, { encryptedBlob: "AAAA", name: "x", baseVersion: 0, wrappedKey: "AAAA" }),
    ).toMatch(/may only have/);
  });
});

describe("orgMemberAddRequestSchema", () => {
  it("takes an email and a role, and names the roles when the role is unknown", () => {
    expect(problem(orgMemberAddRequestSchema, { email: "a@example.com", role: "admin" })).toBeNull();
    expect(problem(orgMemberAddRequestSchema, { email: "a@example.com", role: "root" })).toBe(
      `"role" must be one of owner, admin, maintainer, member.`,
    );
  });
});
