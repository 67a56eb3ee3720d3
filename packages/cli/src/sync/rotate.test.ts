// rotate-key, and adopting a received wrapping key, which takes the same steps: a crash after any step leaves
// every vault readable, and a rerun finishes. Synced vaults' server copies are rewrapped through a fetch that
// answers as the server does. The crash is simulated by a hook that throws; the e2e suite kills a real
// process at the same points.
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLI_CLIENT_ID,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  toBase64,
  type RewrapRequest,
} from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { Context } from "../context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { serverAccount, type ServerSession } from "../server/session.js";
import { signResponse } from "../server/signature.js";
import {
  readVault,
  tryUnwrapVaultKey,
  updateVault,
  vaultKeyAccount,
  type VaultStoreDeps,
} from "../vault/vault-store.js";
import {
  PENDING_WRAPPING_KEY_ACCOUNT,
  WRAPPING_KEY_ACCOUNT,
  readWrappingKey,
} from "../vault/wrapping-key.js";
import { adoptWrappingKey, rotateWrappingKey, type RotateStep } from "./rotate.js";
import { recordSync } from "./state.js";

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

/** The machine's keystore entries, to show that a refused or empty adoption changed nothing. */
async function snapshot(keystore: Keystore): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const account of (await keystore.list()).sort()) out[account] = await keystore.get(account);
  return out;
}

describe("adopting a received wrapping key", () => {
  const received = () => randomFillSync(new Uint8Array(32));

  it("re-wraps every local vault key under the given key, which becomes the wrapping key", async () => {
    const { keystore, deps, ctx } = await setup();
    const before = await keystore.get(WRAPPING_KEY_ACCOUNT);
    const key = received();
    const outcome = await adoptWrappingKey(ctx, key);
    expect(outcome).toMatchObject({ how: "adopted", rotated: true, resumed: false, unreadable: [] });
    expect(outcome.rewrapped.sort()).toEqual([...VAULTS].sort());
    expect(await readWrappingKey(keystore)).toEqual(key);
    expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).toBeNull();
    await expectAllReadable(deps);
    // The given key alone opens them: a machine holding only it (the approving one) reads these vault keys.
    const other = createMemoryKeystore({ [WRAPPING_KEY_ACCOUNT]: toBase64(key) });
    for (const id of VAULTS) {
      const wrapped = (await keystore.get(vaultKeyAccount(id)))!;
      expect(await tryUnwrapVaultKey(other, id, wrapped)).not.toBeNull();
    }
    await keystore.set(WRAPPING_KEY_ACCOUNT, before!);
    await expect(readVault(deps, VAULTS[0]!)).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
  });

  it("on a machine with no wrapping key, just stores it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-rotate-"));
    dirs.push(dir);
    const env = { LATCHKEY_HOME: join(dir, "home") };
    const keystore = createMemoryKeystore();
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      keystore: () => Promise.resolve({ keystore } as KeystoreResolution),
    });
    const key = received();
    expect(await adoptWrappingKey(ctx, key)).toMatchObject({ how: "stored", rotated: true, rewrapped: [] });
    expect(await keystore.list()).toEqual([WRAPPING_KEY_ACCOUNT]);
    expect(await readWrappingKey(keystore)).toEqual(key);
  });

  it("adopting the key the machine already has changes nothing", async () => {
    const { keystore, deps, ctx } = await setup();
    const before = await snapshot(keystore);
    const outcome = await adoptWrappingKey(ctx, (await readWrappingKey(keystore))!);
    expect(outcome).toMatchObject({ how: "unchanged", rotated: false, rewrapped: [] });
    expect(await snapshot(keystore)).toEqual(before);
    await expectAllReadable(deps);
  });

  const points: [RotateStep, number][] = [
    ["pending-stored", 1],
    ["vault-key-rewrapped", 1],
    ["vault-key-rewrapped", 2],
    ["vault-key-rewrapped", 3],
    ["promoted", 1],
  ];
  it.each(points)(
    "a crash after %s #%i leaves every vault readable; adopting the same key again completes",
    async (step, nth) => {
      const { keystore, deps, ctx } = await setup();
      const key = received();
      let seen = 0;
      await expect(
        adoptWrappingKey(
          {
            ...ctx,
            afterRotateStep: (s) => {
              if (s === step && ++seen === nth) throw new Crash(step);
            },
          },
          key,
        ),
      ).rejects.toBeInstanceOf(Crash);
      await expectAllReadable(deps);
      const rerun = await adoptWrappingKey(ctx, key);
      expect(rerun).toMatchObject({ how: "adopted", rotated: true, resumed: true, unreadable: [] });
      expect(await readWrappingKey(keystore)).toEqual(key);
      expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).toBeNull();
      await expectAllReadable(deps);
    },
  );

  it("after a crash, `env rotate-key` finishes adopting the received key (it resumes the pending key)", async () => {
    const { keystore, deps, ctx } = await setup();
    const key = received();
    await expect(
      adoptWrappingKey(
        {
          ...ctx,
          afterRotateStep: (s) => {
            if (s === "vault-key-rewrapped") throw new Crash(s);
          },
        },
        key,
      ),
    ).rejects.toBeInstanceOf(Crash);
    expect(await rotateWrappingKey(ctx)).toMatchObject({ rotated: true, resumed: true });
    expect(await readWrappingKey(keystore)).toEqual(key);
    await expectAllReadable(deps);
  });

  it("refuses while another key is pending (a rotation stopped halfway), and changes nothing", async () => {
    const { keystore, deps, ctx } = await setup();
    await expect(
      rotateWrappingKey({
        ...ctx,
        afterRotateStep: (s) => {
          if (s === "vault-key-rewrapped") throw new Crash(s);
        },
      }),
    ).rejects.toBeInstanceOf(Crash);
    const before = await snapshot(keystore);
    const error = await adoptWrappingKey(ctx, received()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LK_PAIRING_FAILED" });
    expect((error as Error).message).toContain(
      "in the middle of replacing its wrapping key with another key",
    );
    expect((error as { hint: string }).hint).toContain("latchkey env rotate-key");
    expect(await snapshot(keystore)).toEqual(before);
    await expectAllReadable(deps);
  });
});

describe("adopting a key with synced vaults", () => {
  const SERVER = "https://lk.rotate.example";
  const USER = "user-1";

  /** A machine signed in to SERVER whose synced vaults are VAULTS[0] and VAULTS[1]; the server takes rewraps. */
  async function synced() {
    const machine = await setup();
    const session: ServerSession = {
      access_token: "at-1",
      refresh_token: "rt-1",
      expires_at: Math.floor(Date.now() / 1000) + 900,
      subject: USER,
      issuer: `${SERVER}/oidc`,
      client_id: CLI_CLIENT_ID,
    };
    await machine.keystore.set(serverAccount(SERVER), JSON.stringify(session));
    for (const id of VAULTS.slice(0, 2)) await recordSync(machine.ctx.paths.home, SERVER, USER, id, 3, 0);
    const rewraps: { vaultId: string; body: RewrapRequest }[] = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      const vaultId = decodeURIComponent(/^\/api\/v1\/vaults\/([^/]+)\/key$/.exec(url.pathname)![1]!);
      const body = JSON.parse(await request.text()) as RewrapRequest;
      rewraps.push({ vaultId, body });
      const bytes = Buffer.from(JSON.stringify({ vaultId, version: body.version }));
      const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
      const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
      const signature = signResponse(
        token,
        { method: request.method, path: url.pathname, requestId, status: 200 },
        bytes,
      );
      return new Response(bytes, { status: 200, headers: { [SIGNATURE_HEADER]: signature } });
    };
    const ctx: Context = {
      ...machine.ctx,
      fetch,
      clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    };
    return { ...machine, ctx, rewraps };
  }

  it.each([1, 2])(
    "a crash after server-key-updated #%i: a rerun completes; every server copy ends wrapped by the key",
    async (nth) => {
      const { deps, ctx, rewraps } = await synced();
      const key = randomFillSync(new Uint8Array(32));
      let seen = 0;
      await expect(
        adoptWrappingKey(
          {
            ...ctx,
            afterRotateStep: (s) => {
              if (s === "server-key-updated" && ++seen === nth) throw new Crash(s);
            },
          },
          key,
        ),
      ).rejects.toBeInstanceOf(Crash);
      await expectAllReadable(deps);
      const rerun = await adoptWrappingKey(ctx, key);
      expect(rerun).toMatchObject({ how: "adopted", resumed: true });
      expect(rerun.serverUpdated.sort()).toEqual(
        VAULTS.slice(0, 2)
          .map((id) => `${SERVER} ${id}`)
          .sort(),
      );
      // The last wrapped key each server copy received opens with the adopted key alone, at the synced version.
      const holder = createMemoryKeystore({ [WRAPPING_KEY_ACCOUNT]: toBase64(key) });
      for (const id of VAULTS.slice(0, 2)) {
        const last = rewraps.filter((r) => r.vaultId === id).at(-1)!;
        expect(last.body.version).toBe(3);
        expect(await tryUnwrapVaultKey(holder, id, last.body.wrappedKey)).not.toBeNull();
      }
      expect(rewraps.some((r) => r.vaultId === VAULTS[2])).toBe(false);
      await expectAllReadable(deps);
    },
  );
});
