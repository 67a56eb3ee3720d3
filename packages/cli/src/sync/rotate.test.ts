// rotate-key on local vaults (no synced copies, so no server): a crash after any step leaves every vault
// readable, and a rerun finishes. The crash is simulated by a hook that throws; the e2e suite kills a real
// process at the same points.
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { readVault, updateVault, type VaultStoreDeps } from "../vault/vault-store.js";
import { PENDING_WRAPPING_KEY_ACCOUNT, WRAPPING_KEY_ACCOUNT } from "../vault/wrapping-key.js";
import { rotateWrappingKey, type RotateStep } from "./rotate.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const VAULTS = [
  "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
  "11111111-2222-4333-8444-555555555555",
  "third-vault",
];

async function setup(): Promise<{
  keystore: Keystore;
  deps: VaultStoreDeps;
  ctx: ReturnType<typeof createTestContext>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "lk-rotate-"));
  dirs.push(dir);
  const env = { LATCHKEY_HOME: join(dir, "home") };
  const paths = resolvePaths(env);
  const keystore = createMemoryKeystore();
  const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
  const ctx = createTestContext({
    env,
    paths,
    random,
    keystore: () => Promise.resolve({ keystore } as KeystoreResolution),
  });
  const deps = { keystore, home: paths.home, vaultsDir: paths.vaults, random };
  for (const [i, id] of VAULTS.entries()) {
    await updateVault(deps, id, (doc) => {
      doc.default = { SECRET: `value-${i}` };
      return { result: undefined, changed: true };
    });
  }
  return { keystore, deps, ctx };
}

async function expectAllReadable(deps: VaultStoreDeps): Promise<void> {
  for (const [i, id] of VAULTS.entries())
    expect(await readVault(deps, id)).toEqual({ default: { SECRET: `value-${i}` } });
}

class Crash extends Error {}

describe("env rotate-key without synced vaults", () => {
  it("replaces the wrapping key, re-wraps every vault key, and leaves no pending key", async () => {
    const { keystore, deps, ctx } = await setup();
    const before = await keystore.get(WRAPPING_KEY_ACCOUNT);
    const outcome = await rotateWrappingKey(ctx);
    expect(outcome).toMatchObject({ rotated: true, resumed: false, unreadable: [], serverUpdated: [] });
    expect(outcome.rewrapped.sort()).toEqual([...VAULTS].sort());
    expect(await keystore.get(WRAPPING_KEY_ACCOUNT)).not.toBe(before);
    expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).toBeNull();
    await expectAllReadable(deps);
    // The old key opens nothing any more: set it back and the vaults fail.
    await keystore.set(WRAPPING_KEY_ACCOUNT, before!);
    await expect(readVault(deps, VAULTS[0]!)).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
  });

  const points: [RotateStep, number][] = [
    ["pending-stored", 1],
    ["vault-key-rewrapped", 1],
    ["vault-key-rewrapped", 2],
    ["vault-key-rewrapped", 3],
    ["vault-key-rewrapped", 5],
    ["promoted", 1],
  ];
  it.each(points)(
    "a crash after %s #%i leaves every vault readable, and a rerun completes",
    async (step, nth) => {
      const { keystore, deps, ctx } = await setup();
      let seen = 0;
      await expect(
        rotateWrappingKey({
          ...ctx,
          afterRotateStep: (s) => {
            if (s === step && ++seen === nth) throw new Crash(step);
          },
        }),
      ).rejects.toBeInstanceOf(Crash);
      await expectAllReadable(deps);
      // A vault created mid-rotation is wrapped by the pending key and survives the promotion.
      await updateVault(deps, "created-mid-rotation", (doc) => {
        doc.default = { LATE: "late" };
        return { result: undefined, changed: true };
      });
      const rerun = await rotateWrappingKey(ctx);
      expect(rerun).toMatchObject({ rotated: true, resumed: true, unreadable: [] });
      expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).toBeNull();
      await expectAllReadable(deps);
      expect(await readVault(deps, "created-mid-rotation")).toEqual({ default: { LATE: "late" } });
    },
  );

  it("with no wrapping key there is nothing to rotate", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-rotate-"));
    dirs.push(dir);
    const env = { LATCHKEY_HOME: join(dir, "home") };
    const keystore = createMemoryKeystore();
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      keystore: () => Promise.resolve({ keystore } as KeystoreResolution),
    });
    expect(await rotateWrappingKey(ctx)).toMatchObject({ rotated: false });
    expect(await keystore.list()).toEqual([]);
  });
});
