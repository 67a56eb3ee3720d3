import { describe, expect, it } from "vitest";
import { packageJsonSchema } from "./npm.js";
import { checkSchema } from "./parse.js";
import { projectRegistrySchema, projectVaultSchema, vaultSyncSchema } from "./project-file.js";
import { providerAnswerSchema } from "./provider-answer.js";
import { cachedTokenSchema, syncBaseSchema, syncStateSchema } from "./stored.js";

describe("what the CLI reads back", () => {
  it("a cached service token keeps a usable access token, dropping what is wrong beside it", () => {
    expect(
      checkSchema(cachedTokenSchema, {
        access_token: "at",
        expires_at: 10,
        refresh_token: "",
        token_type: 5,
        scope: ["x"],
        extra: 1,
      }),
    ).toEqual({ ok: true, value: { access_token: "at", expires_at: 10, token_type: "Bearer" } });
    expect(checkSchema(cachedTokenSchema, { access_token: "", expires_at: 10 }).ok).toBe(false);
    expect(checkSchema(cachedTokenSchema, { access_token: "at", expires_at: "10" }).ok).toBe(false);
  });

  it("the sync state keeps members it does not know, so a rewrite keeps them too", () => {
    const entry = { server: "s", userId: "u", vaultId: "v", highestVersion: 2, syncedVersion: 1, note: "x" };
    expect(checkSchema(syncStateSchema, { format: 1, entries: [entry], later: true })).toEqual({
      ok: true,
      value: { format: 1, entries: [entry], later: true },
    });
    expect(
      checkSchema(syncStateSchema, { format: 1, entries: [{ ...entry, highestVersion: 2 ** 53 }] }).ok,
    ).toBe(false);
  });

  it("a sync base must hold a vault document", () => {
    const base = { server: "s", userId: "u", version: 3, document: { default: { A: "1" } } };
    expect(checkSchema(syncBaseSchema, base).ok).toBe(true);
    expect(checkSchema(syncBaseSchema, { ...base, document: null }).ok).toBe(false);
    expect(checkSchema(syncBaseSchema, { ...base, document: { default: { A: 1 } } }).ok).toBe(false);
  });
});

describe("latchkey.json", () => {
  it("reads a vault id in its one spelling", () => {
    expect(checkSchema(projectVaultSchema, "3F2504E0-4F89-41D3-9A0C-0305E82C3301")).toEqual({
      ok: true,
      value: "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    });
    expect(checkSchema(projectVaultSchema, "../x")).toEqual({
      ok: false,
      path: [],
      message: '"vault" is not a valid vault id: it contains ".."',
    });
  });

  it("refuses a project's registry `kind` with the reason", () => {
    const checked = checkSchema(projectRegistrySchema, { kind: "gitlab" });
    expect(checked).toMatchObject({ ok: false, path: ["kind"] });
    expect(!checked.ok && checked.message).toContain("only accepted in your own config.toml");
  });

  it("reads vaultSync.orgVersions as non-negative integers by organisation slug", () => {
    expect(checkSchema(vaultSyncSchema, { orgVersions: { acme: 3, "team-2": 0 } }).ok).toBe(true);
    for (const orgVersions of [{ Acme: 1 }, { "-x": 1 }, { acme: -1 }, { acme: "3" }, [], "acme"])
      expect(checkSchema(vaultSyncSchema, { orgVersions }).ok).toBe(false);
  });

  it("reads vaultSync.personalVersion only as a non-negative integer", () => {
    expect(checkSchema(vaultSyncSchema, { personalVersion: 4 }).ok).toBe(true);
    for (const personalVersion of [-1, 1.5, "4"])
      expect(checkSchema(vaultSyncSchema, { personalVersion }).ok).toBe(false);
  });
});

describe("others' JSON", () => {
  it("a provider's answer in either shape reads as Latchkey's", () => {
    expect(checkSchema(providerAnswerSchema, { _authToken: "t", expiresAt: 1893456000.9 })).toEqual({
      ok: true,
      value: { token: "t", expiresAt: "2030-01-01T00:00:00.900Z" },
    });
    expect(checkSchema(providerAnswerSchema, { token: "t", expiresAt: null })).toEqual({
      ok: true,
      value: { token: "t", expiresAt: null },
    });
    expect(checkSchema(providerAnswerSchema, { username: "u", _password: "p" }).ok).toBe(false);
  });

  it("package.json: a name or workspaces not as npm reads them count as absent", () => {
    expect(checkSchema(packageJsonSchema, { name: 5, workspaces: { packages: ["a/*"] } })).toEqual({
      ok: true,
      value: { workspaces: { packages: ["a/*"] } },
    });
    expect(checkSchema(packageJsonSchema, { name: "app", workspaces: ["a", 1] })).toEqual({
      ok: true,
      value: { name: "app" },
    });
    expect(checkSchema(packageJsonSchema, []).ok).toBe(false);
  });
});
