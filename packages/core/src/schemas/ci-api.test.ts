import { describe, expect, it } from "vitest";
import { generateX25519KeyPair, wrapKeyForRecipient } from "../x25519.js";
import {
  ciEnableRequestSchema,
  ciExchangeRequestSchema,
  ciPolicySchema,
  MAX_CI_ID_TOKEN_LENGTH,
  type CiPolicy,
} from "./ci-api.js";
import { orgShareRequestSchema } from "./org-api.js";
import { checkSchema } from "./parse.js";
import { pushRequestSchema, type WireSchema } from "./sync-api.js";

const VAULT = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
const FINGERPRINT = "b".repeat(64);

function problem<T>(schema: WireSchema<T>, value: unknown): string | null {
  const checked = checkSchema(schema, value);
  return checked.ok ? null : checked.message;
}

const policy: CiPolicy = {
  provider: "github",
  issuer: "https://token.actions.githubusercontent.com",
  repository: "octo-org/octo-repo",
  repositoryId: "123456",
  ownerId: "654321",
  branches: ["main", "release/*"],
  environments: ["production"],
  allowForks: false,
  protectedRefsOnly: false,
  audience: "https://latchkey.example.com",
};

async function escrow() {
  const { publicKey } = await generateX25519KeyPair();
  return {
    escrowedKey: await wrapKeyForRecipient(new Uint8Array(32).fill(3), publicKey),
    escrowKeyFingerprint: FINGERPRINT,
  };
}

describe("ciPolicySchema", () => {
  it("takes a GitHub policy and a GitLab project path", () => {
    expect(problem(ciPolicySchema, policy)).toBeNull();
    expect(
      problem(ciPolicySchema, {
        ...policy,
        provider: "gitlab",
        repository: "group/sub.group/project_1",
        environments: [],
      }),
    ).toBeNull();
  });

  it("refuses ids that are not decimal strings, so an id is compared in one spelling", () => {
    for (const repositoryId of [123456, "0123", "12a", "", "1".repeat(21), "-1"]) {
      expect(problem(ciPolicySchema, { ...policy, repositoryId })).toMatch(/^"repositoryId" must be/);
    }
  });

  it("refuses a repository without a path, with spaces or with control characters", () => {
    for (const repository of ["octo", "octo/", "/repo", "octo/re po", "octo/repo\n", "octo//repo"]) {
      expect(problem(ciPolicySchema, { ...policy, repository })).toMatch(/^"repository" must be/);
    }
  });

  it("needs at least one branch, refuses repeats, spaces and more than 20", () => {
    expect(problem(ciPolicySchema, { ...policy, branches: [] })).toMatch(/"branches" must hold 1 to 20/);
    expect(problem(ciPolicySchema, { ...policy, branches: ["main", "main"] })).toMatch(/must not repeat/);
    expect(problem(ciPolicySchema, { ...policy, branches: ["ma in"] })).toMatch(/branches/);
    const many = Array.from({ length: 21 }, (_, i) => `b${i}`);
    expect(problem(ciPolicySchema, { ...policy, branches: many })).toMatch(/"branches" must hold 1 to 20/);
  });

  it("refuses environment names that are not vault environment names, and unknown fields", () => {
    expect(problem(ciPolicySchema, { ...policy, environments: ["prod uction"] })).toMatch(/environments/);
    expect(
      problem(ciPolicySchema, { ...policy, sub: "repo:octo-org/octo-repo:ref:refs/heads/main" }),
    ).toMatch(/must be an object with the fields/);
  });
});

describe("ciEnableRequestSchema", () => {
  it("takes a policy with an escrowed key in the strict wire form, and refuses another spelling", async () => {
    const good = await escrow();
    expect(problem(ciEnableRequestSchema, { policy, escrow: good })).toBeNull();
    const urlSafe = good.escrowedKey.replaceAll("+", "-").replaceAll("/", "_") + "-";
    expect(problem(ciEnableRequestSchema, { policy, escrow: { ...good, escrowedKey: urlSafe } })).toMatch(
      /^"escrowedKey" must be a wrapped key/,
    );
    expect(
      problem(ciEnableRequestSchema, { policy, escrow: { ...good, escrowKeyFingerprint: "B".repeat(64) } }),
    ).toMatch(/^"escrowKeyFingerprint" must be/);
  });
});

describe("pushes may carry an escrow", () => {
  it("personal pushes and organisation shares take an optional escrow, checked like the enable's", async () => {
    const good = await escrow();
    const push = { encryptedBlob: "AAAA", wrappedKey: "AAAA", name: "demo", baseVersion: 0 };
    expect(problem(pushRequestSchema, push)).toBeNull();
    expect(problem(pushRequestSchema, { ...push, escrow: good })).toBeNull();
    expect(problem(pushRequestSchema, { ...push, escrow: { ...good, escrowedKey: "AAAA" } })).toMatch(
      /escrowedKey/,
    );
    const share = {
      encryptedBlob: "AAAA",
      name: "demo",
      baseVersion: 0,
      senderFingerprint: FINGERPRINT,
      wrappedKeys: [{ userId: VAULT, wrappedKey: good.escrowedKey, fingerprint: FINGERPRINT }],
    };
    expect(problem(orgShareRequestSchema, { ...share, escrow: good })).toBeNull();
  });
});

describe("ciExchangeRequestSchema", () => {
  it("takes a compact JWS and refuses anything longer than the limit before looking at it", () => {
    const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    expect(problem(ciExchangeRequestSchema, { vaultId: VAULT, token })).toBeNull();
    expect(problem(ciExchangeRequestSchema, { vaultId: VAULT, org: "acme", token })).toBeNull();
    const long = `${"a".repeat(MAX_CI_ID_TOKEN_LENGTH)}.b.c`;
    expect(problem(ciExchangeRequestSchema, { vaultId: VAULT, token: long })).toMatch(
      /^"token" must be a JWT/,
    );
    expect(problem(ciExchangeRequestSchema, { vaultId: VAULT, token: "a.b" })).toMatch(
      /^"token" must be a JWT/,
    );
    expect(problem(ciExchangeRequestSchema, { vaultId: "x", token })).toMatch(/^"vaultId" must be a UUID/);
  });
});
