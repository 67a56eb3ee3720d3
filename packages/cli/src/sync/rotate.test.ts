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
  fromBase64,
  syncBlobContext,
  toBase64,
  utf8Decode,
  utf8Encode,
  type RewrapRequest,
  type VaultDocument,
} from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { Context } from "../context.js";
import { openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { serverAccount, type ServerSession } from "../server/session.js";
import { signResponse } from "../server/signature.js";
import {
  loadVaultKey,
  readVault,
  tryUnwrapVaultKey,
  updateVault,
  vaultKeyAccount,
  wrapVaultKey,
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

const SERVER = "https://lk.rotate.example";
const USER = "user-1";

/** A server copy as the fake keeps it: a real sealed blob and a real wrapped key. */
interface Copy {
  version: number;
  encryptedBlob: string;
  wrappedKey: string;
}

const randomBytes = (n: number) => randomFillSync(new Uint8Array(n));

/** A copy as a push makes it: `document` sealed by `vaultKey` for `version`, the key wrapped by `wrappingKey`. */
function sealCopy(
  vaultId: string,
  version: number,
  document: VaultDocument,
  vaultKey: Uint8Array,
  wrappingKey: Uint8Array,
): Copy {
  const random = { bytes: randomBytes };
  const sealed = sealEnvelopeSync(
    vaultKey,
    utf8Encode(JSON.stringify(document)),
    syncBlobContext(vaultId, version),
    randomBytes,
  );
  return {
    version,
    encryptedBlob: toBase64(sealed),
    wrappedKey: wrapVaultKey(wrappingKey, vaultId, vaultKey, random),
  };
}

/** What a machine holding only `wrappingKey` reads from `copy`, as a pull does; throws when it cannot. */
async function openCopy(wrappingKey: Uint8Array, vaultId: string, copy: Copy): Promise<unknown> {
  const holder = createMemoryKeystore({ [WRAPPING_KEY_ACCOUNT]: toBase64(wrappingKey) });
  const key = await tryUnwrapVaultKey(holder, vaultId, copy.wrappedKey);
  if (key === null) throw new Error(`the wrapped key of ${vaultId} does not open`);
  const plaintext = await openEnvelopeCli(
    key,
    fromBase64(copy.encryptedBlob),
    syncBlobContext(vaultId, copy.version),
  );
  return JSON.parse(utf8Decode(plaintext));
}

/**
 * A fake of the two vault routes step 3 uses, over `copies`: GET /vaults/:id answers the copy (404
 * LK_VAULT_NOT_SYNCED without one), PUT /vaults/:id/key replaces its wrapped key at its current version (else 409
 * with currentVersion), each 2xx signed for its request as the server signs. `beforeRewrap` runs as a PUT
 * arrives, before it is checked: another machine's push landing between the fetch and the put.
 */
function vaultRoutes(
  copies: Map<string, Copy>,
  rewraps: { vaultId: string; body: RewrapRequest }[],
  hooks: { beforeRewrap?: (vaultId: string) => void } = {},
): typeof globalThis.fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const [, id, key] = /^\/api\/v1\/vaults\/([^/]+)(\/key)?$/.exec(url.pathname)!;
    const vaultId = decodeURIComponent(id!);
    const failure = (status: number, code: string, extra: object = {}) =>
      new Response(JSON.stringify({ error: "Error", code, message: code, ...extra }), { status });
    const signed = (value: unknown) => {
      const bytes = Buffer.from(JSON.stringify(value));
      const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
      const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
      const signature = signResponse(
        token,
        { method: request.method, path: url.pathname, requestId, status: 200 },
        bytes,
      );
      return new Response(bytes, { status: 200, headers: { [SIGNATURE_HEADER]: signature } });
    };
    if (request.method === "GET" && key === undefined) {
      const copy = copies.get(vaultId);
      if (copy === undefined) return failure(404, "LK_VAULT_NOT_SYNCED");
      return signed({ vaultId, ...copy, schema: null, name: "app", updatedAt: new Date(0).toISOString() });
    }
    if (request.method !== "PUT" || key === undefined) return failure(405, "LK_SERVER_ERROR");
    const body = JSON.parse(await request.text()) as RewrapRequest;
    rewraps.push({ vaultId, body });
    hooks.beforeRewrap?.(vaultId);
    const copy = copies.get(vaultId);
    if (copy === undefined) return failure(404, "LK_VAULT_NOT_SYNCED");
    if (body.version !== copy.version)
      return failure(409, "LK_VAULT_CONFLICT", { currentVersion: copy.version });
    copy.wrappedKey = body.wrappedKey;
    return signed({ vaultId, version: copy.version });
  };
}

/**
 * A machine signed in to SERVER whose synced vaults are VAULTS[0] and VAULTS[1], synced at version 3; the server
 * holds their copies as this machine pushed them (its own vault keys, its wrapping key), which a test may replace.
 */
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
  const wrappingKey = (await readWrappingKey(machine.keystore))!;
  const copies = new Map<string, Copy>();
  for (const [i, id] of VAULTS.slice(0, 2).entries()) {
    await recordSync(machine.ctx.paths.home, SERVER, USER, id, 3, 0);
    const own = (await loadVaultKey(machine.deps, id))!;
    copies.set(id, sealCopy(id, 3, { default: { SECRET: `value-${i}` } }, own, wrappingKey));
  }
  const rewraps: { vaultId: string; body: RewrapRequest }[] = [];
  const hooks: { beforeRewrap?: (vaultId: string) => void } = {};
  const ctx: Context = {
    ...machine.ctx,
    fetch: vaultRoutes(copies, rewraps, hooks),
    clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
  };
  return { ...machine, ctx, wrappingKey, copies, rewraps, hooks };
}

describe("adopting a key with synced vaults", () => {
  it.each([1, 2])(
    "a crash after server-key-updated #%i: a rerun completes; every server copy ends wrapped by the key",
    async (nth) => {
      const { deps, ctx, copies, rewraps } = await synced();
      const key = randomBytes(32);
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
      // Each server copy opens with the adopted key alone, at the synced version, and decrypts.
      for (const [i, id] of VAULTS.slice(0, 2).entries()) {
        expect(rewraps.filter((r) => r.vaultId === id).at(-1)!.body.version).toBe(3);
        expect(await openCopy(key, id, copies.get(id)!)).toEqual({ default: { SECRET: `value-${i}` } });
      }
      expect(rewraps.some((r) => r.vaultId === VAULTS[2])).toBe(false);
      await expectAllReadable(deps);
    },
  );
});

describe("re-wrapping the server copies", () => {
  const switches = {
    rotate: async (ctx: Context, keystore: Keystore) => {
      const outcome = await rotateWrappingKey(ctx);
      return { outcome, key: (await readWrappingKey(keystore))! };
    },
    adopt: async (ctx: Context) => {
      const key = randomBytes(32);
      return { outcome: await adoptWrappingKey(ctx, key), key };
    },
  };

  it.each(Object.entries(switches))(
    "%s: re-wraps the vault key the server copy is sealed with, not this machine's own (a pull kept the local key)",
    async (_, switchKey) => {
      // Another machine holding the same wrapping key pushed VAULTS[0] under a vault key of its own; this machine
      // pulled and merged it, keeping its own vault key (pull.ts), so the two keys differ.
      const { keystore, deps, ctx, wrappingKey, copies } = await synced();
      const theirs = randomBytes(32);
      copies.set(VAULTS[0]!, sealCopy(VAULTS[0]!, 3, { default: { FROM_A: "a" } }, theirs, wrappingKey));
      const { outcome, key } = await switchKey(ctx, keystore);
      expect(outcome.serverUpdated).toContain(`${SERVER} ${VAULTS[0]}`);
      // The next pull, by this machine or any holding the new key, opens the copy and decrypts its blob.
      expect(await openCopy(key, VAULTS[0]!, copies.get(VAULTS[0]!)!)).toEqual({ default: { FROM_A: "a" } });
      expect(await openCopy(key, VAULTS[1]!, copies.get(VAULTS[1]!)!)).toEqual({
        default: { SECRET: "value-1" },
      });
      await expectAllReadable(deps);
    },
  );

  it("a server copy no key of this machine opens is left as it is and reported", async () => {
    const { keystore, deps, ctx, copies, rewraps } = await synced();
    const foreign = randomBytes(32);
    const theirs = copies.get(VAULTS[1]!)!;
    const own = (await loadVaultKey(deps, VAULTS[1]!))!;
    Object.assign(theirs, sealCopy(VAULTS[1]!, 3, { default: { OTHER: "o" } }, own, foreign));
    const before = { ...theirs };
    const outcome = await rotateWrappingKey(ctx);
    expect(rewraps.map((r) => r.vaultId)).toEqual([VAULTS[0]]);
    expect(copies.get(VAULTS[1]!)).toEqual(before);
    expect(outcome).toMatchObject({
      rotated: true,
      serverUpdated: [`${SERVER} ${VAULTS[0]}`],
      serverUnopened: [`${SERVER} ${VAULTS[1]}`],
    });
    expect(await openCopy(foreign, VAULTS[1]!, theirs)).toEqual({ default: { OTHER: "o" } });
    expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).toBeNull();
    await expectAllReadable(deps);
  });

  it("a server copy newer than the version this machine synced is re-wrapped at its own version", async () => {
    const { keystore, deps, ctx, wrappingKey, copies, rewraps } = await synced();
    const own = (await loadVaultKey(deps, VAULTS[0]!))!;
    copies.set(VAULTS[0]!, sealCopy(VAULTS[0]!, 7, { default: { NEWER: "n" } }, own, wrappingKey));
    const { outcome, key } = await switches.rotate(ctx, keystore);
    expect(outcome.serverUpdated).toContain(`${SERVER} ${VAULTS[0]}`);
    expect(rewraps.find((r) => r.vaultId === VAULTS[0])!.body.version).toBe(7);
    expect(await openCopy(key, VAULTS[0]!, copies.get(VAULTS[0]!)!)).toEqual({ default: { NEWER: "n" } });
    await expectAllReadable(deps);
  });

  /** Another machine (same wrapping key) pushes VAULTS[0] again: a new version under a vault key of its own. */
  function pushFromElsewhere(copies: Map<string, Copy>, wrappingKey: Uint8Array, n: number): void {
    const copy = copies.get(VAULTS[0]!)!;
    copies.set(
      VAULTS[0]!,
      sealCopy(VAULTS[0]!, copy.version + 1, { default: { PUSH: `${n}` } }, randomBytes(32), wrappingKey),
    );
  }

  it("a push landing between the fetch and the put: the copy is fetched again and its new version re-wrapped", async () => {
    const { keystore, deps, ctx, wrappingKey, copies, rewraps, hooks } = await synced();
    let pushes = 0;
    hooks.beforeRewrap = (id) => {
      if (id === VAULTS[0] && pushes < 2) pushFromElsewhere(copies, wrappingKey, ++pushes);
    };
    const { outcome, key } = await switches.rotate(ctx, keystore);
    expect(outcome.serverUpdated).toContain(`${SERVER} ${VAULTS[0]}`);
    expect(rewraps.filter((r) => r.vaultId === VAULTS[0]).map((r) => r.body.version)).toEqual([3, 4, 5]);
    expect(await openCopy(key, VAULTS[0]!, copies.get(VAULTS[0]!)!)).toEqual({ default: { PUSH: "2" } });
    await expectAllReadable(deps);
  });

  it("a copy that changes at every attempt stops the run with LK_VAULT_CONFLICT before the old key goes; a rerun finishes", async () => {
    const { keystore, deps, ctx, wrappingKey, copies, rewraps, hooks } = await synced();
    let pushes = 0;
    hooks.beforeRewrap = (id) => {
      if (id === VAULTS[0]) pushFromElsewhere(copies, wrappingKey, ++pushes);
    };
    const error = await rotateWrappingKey(ctx).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LK_VAULT_CONFLICT" });
    expect((error as Error).message).toContain("(3 attempts)");
    expect((error as Error).message).toContain("The rotation is paused");
    expect((error as { hint: string }).hint).toContain("latchkey env rotate-key");
    expect(rewraps.filter((r) => r.vaultId === VAULTS[0])).toHaveLength(3);
    expect(await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT)).not.toBeNull();
    expect(await readWrappingKey(keystore)).toEqual(wrappingKey);
    await expectAllReadable(deps);
    expect(await openCopy(wrappingKey, VAULTS[0]!, copies.get(VAULTS[0]!)!)).toEqual({
      default: { PUSH: "3" },
    });

    delete hooks.beforeRewrap;
    const rerun = await switches.rotate(ctx, keystore);
    expect(rerun.outcome).toMatchObject({ rotated: true, resumed: true });
    expect(await openCopy(rerun.key, VAULTS[0]!, copies.get(VAULTS[0]!)!)).toEqual({
      default: { PUSH: "3" },
    });
    await expectAllReadable(deps);
  });

  it("a vault synced only as an organisation's copy is not re-wrapped: that copy's key is not this machine's", async () => {
    const { deps, ctx, wrappingKey, copies, rewraps } = await synced();
    await recordSync(ctx.paths.home, SERVER, USER, VAULTS[2]!, 4, 0, "acme");
    const own = (await loadVaultKey(deps, VAULTS[2]!))!;
    copies.set(VAULTS[2]!, sealCopy(VAULTS[2]!, 4, { default: { SECRET: "personal" } }, own, wrappingKey));
    const outcome = await rotateWrappingKey(ctx);
    expect(outcome.serverUpdated).not.toContain(`${SERVER} ${VAULTS[2]}`);
    expect(rewraps.some((r) => r.vaultId === VAULTS[2])).toBe(false);
    await expectAllReadable(deps);
  });

  it("a vault this machine synced as another account is not re-wrapped in the signed-in account's copy", async () => {
    const { deps, ctx, wrappingKey, copies, rewraps } = await synced();
    await recordSync(ctx.paths.home, SERVER, "user-2", VAULTS[2]!, 1, 0);
    const own = (await loadVaultKey(deps, VAULTS[2]!))!;
    copies.set(VAULTS[2]!, sealCopy(VAULTS[2]!, 1, { default: { SECRET: "value-2" } }, own, wrappingKey));
    const outcome = await rotateWrappingKey(ctx);
    expect(outcome.serverUpdated).not.toContain(`${SERVER} ${VAULTS[2]}`);
    expect(rewraps.some((r) => r.vaultId === VAULTS[2])).toBe(false);
    await expectAllReadable(deps);
  });
});
