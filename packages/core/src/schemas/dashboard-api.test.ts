import { describe, expect, it } from "vitest";
import {
  auditPageResponseSchema,
  auditQuerySchema,
  orgAuditQuerySchema,
  vaultListResponseSchema,
} from "./dashboard-api.js";
import { checkSchema } from "./parse.js";
import type { WireSchema } from "./sync-api.js";

const UUID = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
const CANARY = "canary-Zq81";

function problem<T>(schema: WireSchema<T>, value: unknown): string | null {
  const checked = checkSchema(schema, value);
  return checked.ok ? null : checked.message;
}

describe("auditQuerySchema", () => {
  it("takes every filter as one string, all optional", () => {
    expect(problem(auditQuerySchema, {})).toBeNull();
    expect(
      problem(auditQuerySchema, {
        action: "vault.ci.pull",
        user: UUID,
        environment: "production",
        from: "2030-01-01T00:00:00Z",
        to: "2030-01-02T00:00:00+02:00",
        cursor: "WyIyMDMwIl0",
        limit: "50",
      }),
    ).toBeNull();
  });

  it("refuses a repeated parameter, a bad value and an unknown parameter, never quoting what was sent", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ action: ["vault.push", "vault.pull"] }, /^"action" must be .*given once\.$/],
      [{ action: `Vault.Push ${CANARY}` }, /^"action" must be/],
      [{ user: CANARY }, /^"user" must be a UUID/],
      [{ environment: `prod ${CANARY}` }, /^"environment" must be an environment name/],
      [{ from: "2030-02-30T00:00:00Z" }, /^"from" must be an ISO-8601 date-time/],
      [{ to: "2030-01-01" }, /^"to" must be an ISO-8601 date-time/],
      [{ cursor: `${CANARY}!` }, /^"cursor" must be the nextCursor/],
      [{ cursor: "a".repeat(257) }, /^"cursor" must be the nextCursor/],
      [{ limit: "0" }, /^"limit" must be an integer from 1 to 50/],
      [{ limit: "51" }, /^"limit" must be an integer from 1 to 50/],
      [{ limit: "1.5" }, /^"limit" must be an integer from 1 to 50/],
      [{ from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z" }, /^"from" must be before "to"\.$/],
      [{ from: "2030-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z" }, /^"from" must be before "to"\.$/],
      [{ [CANARY]: "x" }, /^The body may only have the fields action, user, environment/],
    ];
    for (const [query, message] of cases) {
      const found = problem(auditQuerySchema, query);
      expect(found, JSON.stringify(query)).toMatch(message);
      expect(found).not.toContain(CANARY);
    }
  });

  it("takes `vault` on the organisation's log only", () => {
    expect(problem(orgAuditQuerySchema, { vault: UUID })).toBeNull();
    expect(problem(orgAuditQuerySchema, { vault: "nope" })).toMatch(/^"vault" must be a UUID/);
    expect(problem(auditQuerySchema, { vault: UUID })).toMatch(/^The body may only have the fields/);
  });
});

describe("answers", () => {
  const entry = {
    id: "e1",
    action: "vault.ci.pull",
    createdAt: "2030-01-01T00:00:00.000Z",
    version: 3,
    vaultId: UUID,
    actor: null,
    environment: "production",
    count: 1,
    metadata: { keys: 2 },
  };

  it("reads an audit page, and refuses more than 50 entries or a count below 1", () => {
    expect(problem(auditPageResponseSchema, { entries: [entry], nextCursor: null })).toBeNull();
    expect(
      problem(auditPageResponseSchema, {
        entries: [{ ...entry, actor: { userId: UUID, email: null } }],
        nextCursor: "abc",
      }),
    ).toBeNull();
    expect(
      problem(auditPageResponseSchema, {
        entries: Array.from({ length: 51 }, () => entry),
        nextCursor: null,
      }),
    ).toMatch(/at most 50/);
    expect(problem(auditPageResponseSchema, { entries: [{ ...entry, count: 0 }], nextCursor: null })).toMatch(
      /"count"/,
    );
  });

  it("reads the vault list, whose organisations are slugs", () => {
    const vault = { vaultId: UUID, name: "demo", version: 1, updatedAt: "2030-01-01T00:00:00.000Z" };
    expect(problem(vaultListResponseSchema, { vaults: [{ ...vault, orgs: ["acme"] }] })).toBeNull();
    expect(problem(vaultListResponseSchema, { vaults: [{ ...vault, orgs: ["Not A Slug"] }] })).toMatch(
      /"slug"/,
    );
    expect(problem(vaultListResponseSchema, { vaults: [vault] })).toMatch(/"orgs"/);
  });
});
