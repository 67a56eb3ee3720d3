import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { findProject } from "../project/project.js";
import { chosenOrg, pushName, pushSchema, recordedVersion, recordVersion, syncVaultId } from "./project.js";

const ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
async function projectDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lk-sync-project-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe("what a push takes from the project", () => {
  it("names the vault from package.json, then latchkey.json, then the directory", async () => {
    const withPackage = await projectDir({
      "package.json": '{"name":"@acme/web"}',
      "latchkey.json": `{"vault":"${ID}","name":"from-latchkey"}`,
    });
    const ctx = createTestContext({ cwd: withPackage });
    expect(pushName(ctx, await findProject(withPackage))).toBe("@acme/web");
    const withName = await projectDir({ "latchkey.json": `{"vault":"${ID}","name":"from-latchkey"}` });
    expect(pushName(createTestContext({ cwd: withName }), await findProject(withName))).toBe("from-latchkey");
    const bare = await projectDir({ "package.json": "not json", "latchkey.json": `{"vault":"${ID}"}` });
    expect(pushName(createTestContext({ cwd: bare }), await findProject(bare))).toBe(basename(bare));
  });

  it("drops the characters the server refuses in a name, and falls back past a name that has nothing else", async () => {
    const spoofed = await projectDir({
      "package.json": JSON.stringify({ name: "invoice\u202egnp.exe" }),
      "latchkey.json": `{"vault":"${ID}"}`,
    });
    expect(pushName(createTestContext({ cwd: spoofed }), await findProject(spoofed))).toBe("invoicegnp.exe");
    const onlyControls = await projectDir({
      "latchkey.json": JSON.stringify({ vault: ID, name: "\u2067\u2069\u0007" }),
    });
    expect(pushName(createTestContext({ cwd: onlyControls }), await findProject(onlyControls))).toBe(
      basename(onlyControls),
    );
    const long = await projectDir({ "latchkey.json": JSON.stringify({ vault: ID, name: "n".repeat(300) }) });
    expect(pushName(createTestContext({ cwd: long }), await findProject(long))).toHaveLength(256);
  });

  it("sends envSchema when valid, nothing when absent, and warns (pushing without it) when malformed", async () => {
    const valid = await projectDir({
      "latchkey.json": `{"vault":"${ID}","envSchema":{"PORT":{"required":true,"format":"port"}}}`,
    });
    const ctx = createTestContext({ cwd: valid });
    expect(pushSchema(ctx, await findProject(valid))).toEqual({ PORT: { required: true, format: "port" } });
    const absent = await projectDir({ "latchkey.json": `{"vault":"${ID}"}` });
    expect(pushSchema(ctx, await findProject(absent))).toBeUndefined();
    const broken = await projectDir({
      "latchkey.json": `{"vault":"${ID}","envSchema":{"PORT":{"required":"yes"}}}`,
    });
    const warned = createTestContext({ cwd: broken });
    expect(pushSchema(warned, await findProject(broken))).toBeUndefined();
    expect(warned.stderr.text()).toContain("Warning: envSchema");
  });

  it("reads and records vaultSync.personalVersion keeping the file's formatting", async () => {
    const text = `{\n    "vault": "${ID}",\n    "other": [1, 2]\n}\n`;
    const dir = await projectDir({ "latchkey.json": text });
    const ctx = createTestContext({ cwd: dir });
    expect(recordedVersion(await findProject(dir))).toBeUndefined();
    await recordVersion(ctx, await findProject(dir), 7);
    expect(await readFile(join(dir, "latchkey.json"), "utf8")).toBe(
      `{\n    "vault": "${ID}",\n    "other": [1, 2],\n    "vaultSync": {\n        "personalVersion": 7\n    }\n}\n`,
    );
    expect(recordedVersion(await findProject(dir))).toBe(7);
    // A vaultSync that is not an object cannot take it: a warning, not a failed sync.
    const odd = await projectDir({ "latchkey.json": `{"vault":"${ID}","vaultSync":"x"}` });
    const warned = createTestContext({ cwd: odd });
    await recordVersion(warned, await findProject(odd), 3);
    expect(warned.stderr.text()).toContain("could not record vaultSync.personalVersion");
    expect(recordedVersion(await findProject(odd))).toBeUndefined();
  });

  it("records each organisation's version beside the personal one, and reads each back alone", async () => {
    const dir = await projectDir({ "latchkey.json": `{"vault":"${ID}","vaultSync":{"personalVersion":2}}` });
    const ctx = createTestContext({ cwd: dir });
    expect(recordedVersion(await findProject(dir), "acme")).toBeUndefined();
    await recordVersion(ctx, await findProject(dir), 5, "acme");
    await recordVersion(ctx, await findProject(dir), 1, "team-2");
    const project = await findProject(dir);
    expect(recordedVersion(project)).toBe(2);
    expect(recordedVersion(project, "acme")).toBe(5);
    expect(recordedVersion(project, "team-2")).toBe(1);
    expect(recordedVersion(project, "other")).toBeUndefined();
    expect(JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8"))).toEqual({
      vault: ID,
      vaultSync: { personalVersion: 2, orgVersions: { acme: 5, "team-2": 1 } },
    });
  });

  it("chooses the copy: --org, else --personal, else latchkey.json's org, else the personal copy", async () => {
    const withOrg = await findProject(
      await projectDir({ "latchkey.json": `{"vault":"${ID}","org":"acme"}` }),
    );
    const without = await findProject(await projectDir({ "latchkey.json": `{"vault":"${ID}"}` }));
    expect(chosenOrg(withOrg, {})).toBe("acme");
    expect(chosenOrg(withOrg, { org: "beta" })).toBe("beta");
    expect(chosenOrg(withOrg, { personal: true })).toBeUndefined();
    expect(chosenOrg(without, {})).toBeUndefined();
    expect(chosenOrg(null, { org: "beta" })).toBe("beta");
    expect(() => chosenOrg(without, { org: "Acme" })).toThrow(expect.objectContaining({ code: "LK_USAGE" }));
    expect(() => chosenOrg(without, { org: "acme", personal: true })).toThrow(
      expect.objectContaining({ code: "LK_USAGE" }),
    );
    const broken = await findProject(
      await projectDir({ "latchkey.json": `{"vault":"${ID}","org":"Not A Slug"}` }),
    );
    expect(() => chosenOrg(broken, {})).toThrow(expect.objectContaining({ code: "LK_PROJECT_INVALID" }));
    // --personal does not need the broken default.
    expect(chosenOrg(broken, { personal: true })).toBeUndefined();
  });

  it("syncs only UUID vault ids", () => {
    const ctx = createTestContext({ env: { LATCHKEY_VAULT_ID: "my-local-vault" } });
    expect(() => syncVaultId(ctx, null)).toThrow(expect.objectContaining({ code: "LK_VAULT_ID_INVALID" }));
    expect(syncVaultId(createTestContext({ env: { LATCHKEY_VAULT_ID: ID } }), null)).toBe(ID);
  });
});
