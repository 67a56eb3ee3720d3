import { describe, expect, it } from "vitest";
import {
  MAX_BLOB_BASE64,
  MAX_LOG_LIMIT,
  MAX_NAME_LENGTH,
  MAX_SCHEMA_JSON,
  MAX_WRAPPED_KEY_BASE64,
  apiErrorBodySchema,
  auditLogResponseSchema,
  meResponseSchema,
  pullResponseSchema,
  pushRequestSchema,
  pushResponseSchema,
  rewrapRequestSchema,
  rewrapResponseSchema,
  type WireSchema,
} from "./sync-api.js";
import { PROTO_KEY_PROBLEM } from "../env-schema.js";
import { checkSchema } from "./parse.js";

const VAULT = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
// A value a refusal must never quote.
const CANARY = "c2VjcmV0LWNhbmFyeQ";

/** The message a schema refuses `value` with, or null when it takes it. */
function problem<T>(schema: WireSchema<T>, value: unknown): string | null {
  const checked = checkSchema(schema, value);
  return checked.ok ? null : checked.message;
}

const push = {
  encryptedBlob: "AAAA",
  wrappedKey: "AAAA",
  name: "demo-project",
  baseVersion: 0,
};

describe("pushRequestSchema", () => {
  it("takes a push with and without a schema, as it is", () => {
    expect(pushRequestSchema.parse(push)).toEqual(push);
    const withSchema = { ...push, schema: { API_KEY: { required: true } } };
    expect(pushRequestSchema.parse(withSchema)).toEqual(withSchema);
  });

  const blob = `"encryptedBlob" must be standard base64 of at most ${MAX_BLOB_BASE64} characters.`;
  const key = `"wrappedKey" must be standard base64 of at most ${MAX_WRAPPED_KEY_BASE64} characters.`;
  const name = `"name" must be 1 to ${MAX_NAME_LENGTH} characters without control or bidirectional control characters.`;
  const base = `"baseVersion" must be an integer of at least 0.`;
  const cases: [string, unknown, string][] = [
    ["an array", [push], "The body must be a JSON object."],
    ["null", null, "The body must be a JSON object."],
    [
      "an unknown field",
      { ...push, note: CANARY },
      "The body may only have the fields encryptedBlob, wrappedKey, schema, name, baseVersion, escrow.",
    ],
    ["a missing blob", { ...push, encryptedBlob: undefined }, blob],
    ["a blob that is a number", { ...push, encryptedBlob: 1234 }, blob],
    ["a blob that is not base64", { ...push, encryptedBlob: `${CANARY}$` }, blob],
    ["unpadded base64", { ...push, encryptedBlob: "AAA" }, blob],
    ["non-zero pad bits", { ...push, encryptedBlob: "AB==" }, blob],
    ["url-safe base64", { ...push, encryptedBlob: "AA-_" }, blob],
    ["whitespace", { ...push, encryptedBlob: "AAAA AAA" }, blob],
    ["a blob one group too long", { ...push, encryptedBlob: "A".repeat(MAX_BLOB_BASE64 + 4) }, blob],
    ["an empty wrapped key", { ...push, wrappedKey: "" }, key],
    ["a wrapped key too long", { ...push, wrappedKey: "A".repeat(MAX_WRAPPED_KEY_BASE64 + 4) }, key],
    ["an empty name", { ...push, name: "" }, name],
    ["a name with a newline", { ...push, name: `a\n${CANARY}` }, name],
    ["a name with a C1 control", { ...push, name: "a\u0085b" }, name],
    ["a name with a right-to-left override", { ...push, name: "invoice\u202egnp.exe" }, name],
    ["a name with a byte order mark", { ...push, name: "\ufeffacme" }, name],
    ["a name with an isolate", { ...push, name: "acme\u2067x" }, name],
    ["a long name", { ...push, name: "n".repeat(MAX_NAME_LENGTH + 1) }, name],
    ["a negative base", { ...push, baseVersion: -1 }, base],
    ["a fractional base", { ...push, baseVersion: 1.5 }, base],
    ["a string base", { ...push, baseVersion: "1" }, base],
    ["a base whose next version is unsafe", { ...push, baseVersion: Number.MAX_SAFE_INTEGER }, base],
    ["a schema array", { ...push, schema: [] }, '"schema" must be a JSON object when present.'],
    ["a null schema", { ...push, schema: null }, '"schema" must be a JSON object when present.'],
    [
      "a schema over the limit",
      { ...push, schema: { K: "x".repeat(MAX_SCHEMA_JSON) } },
      `"schema" must be at most ${MAX_SCHEMA_JSON} characters of JSON.`,
    ],
    [
      "a schema rule with a property rules do not have",
      { ...push, schema: { A: { [CANARY]: true } } },
      "an envSchema rule may only have the properties required, format, pattern, default, secret, description",
    ],
    [
      "a schema rule whose required is not true or false",
      { ...push, schema: { A: { required: CANARY } } },
      `an envSchema rule's "required" must be true or false`,
    ],
    [
      "a schema with a bad variable name",
      { ...push, schema: { [`${CANARY}-`]: {} } },
      "envSchema keys must be variable names (letters, digits and _, not starting with a digit)",
    ],
    [
      "a schema with a variable named __proto__",
      { ...push, schema: JSON.parse('{"__proto__": {}}') as unknown },
      PROTO_KEY_PROBLEM,
    ],
  ];
  it.each(cases)("refuses %s, naming the rule and never the value", (_name, body, message) => {
    expect(problem(pushRequestSchema, body)).toBe(message);
    expect(message).not.toContain(CANARY);
  });

  it("takes every field at its bound", () => {
    const schema = { K: { description: "x".repeat(MAX_SCHEMA_JSON - '{"K":{"description":""}}'.length) } };
    expect(JSON.stringify(schema)).toHaveLength(MAX_SCHEMA_JSON);
    const largest = {
      encryptedBlob: "A".repeat(MAX_BLOB_BASE64),
      wrappedKey: "A".repeat(MAX_WRAPPED_KEY_BASE64),
      schema,
      name: "n".repeat(MAX_NAME_LENGTH),
      baseVersion: Number.MAX_SAFE_INTEGER - 1,
    };
    expect(problem(pushRequestSchema, largest)).toBeNull();
  });

  it("takes a schema's structure without running its patterns or testing its defaults", () => {
    // Both defaults break their rules, so a schema that ran the pattern or the format test would refuse this. The
    // pattern backtracks exponentially in the length of the default: 20 characters take a fraction of a second, so a
    // regression fails rather than hangs; a hostile push would send a few more and hold the server for minutes.
    const schema = {
      A: { pattern: "(a+)+$", default: `${"a".repeat(20)}!` },
      B: { format: "port", default: "x" },
    };
    expect(pushRequestSchema.parse({ ...push, schema })).toEqual({ ...push, schema });
  });

  it("names a field the body may not have first, whatever else is wrong with it", () => {
    expect(problem(pushRequestSchema, { ...push, encryptedBlob: "!", baseVersion: -1, extra: 1 })).toBe(
      "The body may only have the fields encryptedBlob, wrappedKey, schema, name, baseVersion, escrow.",
    );
  });
});

describe("rewrapRequestSchema", () => {
  it("takes a wrapped key and a version from 1, and nothing else", () => {
    expect(rewrapRequestSchema.parse({ wrappedKey: "AAAA", version: 1 })).toEqual({
      wrappedKey: "AAAA",
      version: 1,
    });
    expect(problem(rewrapRequestSchema, { wrappedKey: "AAAA", version: 1, extra: true })).toBe(
      "The body may only have the fields wrappedKey, version.",
    );
    expect(problem(rewrapRequestSchema, { wrappedKey: "AAAA", version: 0 })).toBe(
      '"version" must be an integer of at least 1.',
    );
  });
});

describe("the answers", () => {
  const pulled = {
    vaultId: VAULT,
    version: 2,
    encryptedBlob: "AAAA",
    wrappedKey: "AAAA",
    schema: null,
    name: "demo",
    updatedAt: "2030-01-01T00:00:00.000Z",
  };
  const entry = {
    action: "vault.push",
    version: 1,
    createdAt: "2030-01-01T00:00:00.000Z",
    actor: { userId: "u1", email: "a@example.test" },
    metadata: { bytes: 4 },
  };
  const answers: [string, WireSchema<unknown>, Record<string, unknown>][] = [
    [
      "me",
      meResponseSchema,
      { userId: "u1", email: "a@example.test", clientId: "latchkey-cli", expiresAt: "2030-01-01T00:00:00Z" },
    ],
    ["push", pushResponseSchema, { vaultId: VAULT, version: 1, createdAt: "2030-01-01T00:00:00.000Z" }],
    ["pull", pullResponseSchema, pulled],
    ["rewrap", rewrapResponseSchema, { vaultId: VAULT, version: 3 }],
    ["log", auditLogResponseSchema, { vaultId: VAULT, entries: [entry, { ...entry, version: null }] }],
    ["error", apiErrorBodySchema, { error: "VaultConflictError", code: "LK_VAULT_CONFLICT", message: "m" }],
  ];
  it.each(answers)("take the %s answer as the server sends it", (_name, schema, answer) => {
    expect(schema.parse(answer)).toEqual(answer);
  });

  it.each(answers)("refuse a %s answer with a field more, or one missing", (_name, schema, answer) => {
    expect(schema.safeParse({ ...answer, unexpected: 1 }).success).toBe(false);
    for (const field of Object.keys(answer)) {
      const { [field]: _dropped, ...rest } = answer;
      expect(schema.safeParse(rest).success, field).toBe(false);
    }
  });

  it("refuse a pull answer taken as a push acknowledgement, and the other way round", () => {
    expect(pushResponseSchema.safeParse(pulled).success).toBe(false);
    expect(
      pullResponseSchema.safeParse({ vaultId: VAULT, version: 1, createdAt: "2030-01-01T00:00:00Z" }).success,
    ).toBe(false);
  });

  it("hold the pull answer's blob and key to the request's rules", () => {
    for (const bad of [
      { encryptedBlob: "AA-_" },
      { wrappedKey: "AAA" },
      { version: 0 },
      { schema: [] },
      { name: "" },
    ]) {
      expect(pullResponseSchema.safeParse({ ...pulled, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
    expect(pullResponseSchema.parse({ ...pulled, schema: { K: {} } }).schema).toEqual({ K: {} });
  });

  it("bound the log to its limit, and each entry to its fields", () => {
    const full = { vaultId: VAULT, entries: Array.from({ length: MAX_LOG_LIMIT }, () => entry) };
    expect(auditLogResponseSchema.safeParse(full).success).toBe(true);
    expect(auditLogResponseSchema.safeParse({ ...full, entries: [...full.entries, entry] }).success).toBe(
      false,
    );
    for (const bad of [
      { ...entry, extra: 1 },
      { ...entry, actor: { ...entry.actor, extra: 1 } },
      { ...entry, version: "1" },
      { ...entry, metadata: [] },
    ]) {
      expect(auditLogResponseSchema.safeParse({ vaultId: VAULT, entries: [bad] }).success).toBe(false);
    }
  });

  it("take an error body with the current version of a conflict, never a version that is not an integer", () => {
    const conflict = {
      error: "VaultConflictError",
      code: "LK_VAULT_CONFLICT",
      message: "m",
      currentVersion: 0,
    };
    expect(apiErrorBodySchema.parse(conflict)).toEqual(conflict);
    expect(apiErrorBodySchema.safeParse({ ...conflict, currentVersion: 1.5 }).success).toBe(false);
  });
});
