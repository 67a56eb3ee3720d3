import { mkdtemp, readFile, rm, writeFile, copyFile } from "node:fs/promises";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryKeystore } from "../keystore/memory.js";
import { WRAPPING_KEY_ACCOUNT } from "./wrapping-key.js";
import {
  readVault,
  tryUnwrapVaultKey,
  updateVault,
  vaultFile,
  vaultKeyAccount,
  type VaultStoreDeps,
} from "./vault-store.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const OTHER = "11111111-2222-4333-8444-555555555555";

async function deps(): Promise<VaultStoreDeps> {
  const dir = await mkdtemp(join(tmpdir(), "lk-vault-"));
  dirs.push(dir);
  return {
    keystore: createMemoryKeystore(),
    home: join(dir, "home"),
    vaultsDir: join(dir, "home", "vaults"),
    random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
  };
}

function set(d: VaultStoreDeps, id: string, environment: string, key: string, value: string) {
  return updateVault(d, id, (doc) => {
    (doc[environment] ??= {})[key] = value;
    return { result: undefined, changed: true };
  });
}

describe("vault store", () => {
  it("reads an absent vault as empty and writes nothing for an unchanged update", async () => {
    const d = await deps();
    expect(await readVault(d, VAULT)).toEqual({});
    await updateVault(d, VAULT, () => ({ result: undefined, changed: false }));
    expect(await d.keystore.list()).toEqual([]);
  });

  it("keeps environments apart and stores only ciphertext, with the vault key wrapped in the keystore", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "API_KEY", "canary-value-default");
    await set(d, VAULT, "staging", "API_KEY", "canary-value-staging");
    expect(await readVault(d, VAULT)).toEqual({
      default: { API_KEY: "canary-value-default" },
      staging: { API_KEY: "canary-value-staging" },
    });
    const blob = await readFile(vaultFile(d.vaultsDir, VAULT));
    expect(blob.includes(Buffer.from("canary-value"))).toBe(false);
    expect(blob.includes(Buffer.from("API_KEY"))).toBe(false);
    expect((await d.keystore.list()).sort()).toEqual([vaultKeyAccount(VAULT), WRAPPING_KEY_ACCOUNT].sort());
    // The stored vault key is an envelope, not the raw 32 bytes.
    expect(Buffer.from((await d.keystore.get(vaultKeyAccount(VAULT)))!, "base64").length).toBeGreaterThan(32);
  });

  it("binds the blob to its vault id: a copy under another id does not decrypt", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "A", "1");
    await copyFile(vaultFile(d.vaultsDir, VAULT), vaultFile(d.vaultsDir, OTHER));
    await d.keystore.set(vaultKeyAccount(OTHER), (await d.keystore.get(vaultKeyAccount(VAULT)))!);
    await expect(readVault(d, OTHER)).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
  });

  it("binds the key and the blob to the id's one spelling: a wrapped key made under one opens under the other", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "A", "1");
    const wrapped = (await d.keystore.get(vaultKeyAccount(VAULT)))!;
    const upper = VAULT.toUpperCase();
    expect(await tryUnwrapVaultKey(d.keystore, upper, wrapped)).not.toBeNull();
    // The same bytes under the upper-case name (a case-insensitive file system, a keystore entry copied over).
    await copyFile(vaultFile(d.vaultsDir, VAULT), vaultFile(d.vaultsDir, upper));
    await d.keystore.set(vaultKeyAccount(upper), wrapped);
    expect(await readVault(d, upper)).toEqual({ default: { A: "1" } });
  });

  it("refuses a tampered vault and never overwrites it on a later write", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "A", "1");
    const path = vaultFile(d.vaultsDir, VAULT);
    const bytes = await readFile(path);
    bytes[bytes.length - 5]! ^= 0x40;
    await writeFile(path, bytes);
    await expect(readVault(d, VAULT)).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
    await expect(set(d, VAULT, "default", "B", "2")).rejects.toMatchObject({
      code: "LK_VAULT_DECRYPT_FAILED",
    });
    expect(await readFile(path)).toEqual(bytes);
  });

  it("says the machine has no key (not a decryption failure) when the keystore lacks the vault key", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "A", "1");
    await d.keystore.delete(vaultKeyAccount(VAULT));
    await expect(readVault(d, VAULT)).rejects.toMatchObject({ code: "LK_VAULT_KEY_MISSING" });
    await expect(set(d, VAULT, "default", "B", "2")).rejects.toMatchObject({ code: "LK_VAULT_KEY_MISSING" });
  });

  it("reports a vault key that another wrapping key sealed as a decryption failure", async () => {
    const d = await deps();
    await set(d, VAULT, "default", "A", "1");
    await d.keystore.set(WRAPPING_KEY_ACCOUNT, Buffer.alloc(32, 7).toString("base64"));
    await expect(readVault(d, VAULT)).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
  });

  it("serialises concurrent writers: 32 parallel updates all land", async () => {
    const d = await deps();
    await Promise.all(Array.from({ length: 32 }, (_, i) => set(d, VAULT, "default", `K${i}`, `V${i}`)));
    const doc = await readVault(d, VAULT);
    expect(Object.keys(doc.default ?? {})).toHaveLength(32);
  });
});
