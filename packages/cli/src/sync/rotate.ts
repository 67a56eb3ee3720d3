import {
  LatchkeyError,
  isLatchkeyError,
  rewrapResponseSchema,
  toBase64,
  type RewrapRequest,
} from "@latchkey/core";
import { join } from "node:path";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import { callApi } from "../server/api.js";
import { tryUnwrapVaultKey, vaultKeyAccount, wrapVaultKey } from "../vault/vault-store.js";
import {
  PENDING_WRAPPING_KEY_ACCOUNT,
  WRAPPING_KEY_ACCOUNT,
  readPendingWrappingKey,
  readWrappingKey,
} from "../vault/wrapping-key.js";
import { vaultPath } from "./push.js";
import { listSyncEntries } from "./state.js";

/** The points between the steps of a rotation, where a crash test stops the process (Context.afterRotateStep). */
export type RotateStep = "pending-stored" | "vault-key-rewrapped" | "server-key-updated" | "promoted";

/** Options of `env rotate-key`. */
export interface RotateOptions {
  verbose?: number;
}

/** What a rotation did. */
export interface RotateOutcome {
  /** False when the machine had no wrapping key: nothing to rotate. */
  rotated: boolean;
  /** True when this run finished a rotation a previous run had started. */
  resumed: boolean;
  rewrapped: string[];
  /** Vault keys no key of this machine opens (left as they are). */
  unreadable: string[];
  /** Synced vaults whose server copy got the new wrapped key, as `server vault`. */
  serverUpdated: string[];
}

const VAULT_KEY_PREFIX = vaultKeyAccount("");

/**
 * `env rotate-key`: replaces the machine wrapping key in an order that survives a crash at any point.
 * 1. The new key is stored as the pending key (a rerun reuses a pending key it finds).
 * 2. Every local vault key is re-wrapped by the pending key; readers open either (vault-store.ts).
 * 3. Every synced vault's server copy gets the new wrapped key for the version this machine last synced (a 409
 *    stops the rotation: pull that vault first, then rerun).
 * 4. The pending key becomes the wrapping key; the old one is gone only then, and the pending entry last.
 */
export async function rotateWrappingKey(ctx: Context, options: RotateOptions = {}): Promise<RotateOutcome> {
  const { keystore } = await ctx.keystore(WRAPPING_KEY_ACCOUNT);
  const home = ctx.paths.home;
  await ensurePrivateDir(home);
  // The lock getOrCreateWrappingKey takes: no first use creates a key while this runs, and no two rotations race.
  return withFileLock(join(home, WRAPPING_KEY_ACCOUNT), async () => {
    const current = await readWrappingKey(keystore);
    let pending = await readPendingWrappingKey(keystore);
    const resumed = pending !== null;
    if (current === null && pending === null) {
      return { rotated: false, resumed: false, rewrapped: [], unreadable: [], serverUpdated: [] };
    }
    if (pending === null) {
      pending = ctx.random.bytes(32);
      await keystore.set(PENDING_WRAPPING_KEY_ACCOUNT, toBase64(pending));
      await ctx.afterRotateStep?.("pending-stored");
    }
    const next = pending;

    const rewrapped: string[] = [];
    const unreadable: string[] = [];
    const rewrapAll = async (): Promise<void> => {
      for (const account of await keystore.list()) {
        if (!account.startsWith(VAULT_KEY_PREFIX)) continue;
        const vaultId = account.slice(VAULT_KEY_PREFIX.length);
        const wrapped = await keystore.get(account);
        if (wrapped === null) continue;
        const key = await tryUnwrapVaultKey(keystore, vaultId, wrapped);
        if (key === null) {
          if (!unreadable.includes(vaultId)) unreadable.push(vaultId);
          continue;
        }
        await keystore.set(account, wrapVaultKey(next, vaultId, key, ctx.random));
        if (!rewrapped.includes(vaultId)) rewrapped.push(vaultId);
        await ctx.afterRotateStep?.("vault-key-rewrapped");
      }
    };
    await rewrapAll();

    const serverUpdated: string[] = [];
    for (const entry of await listSyncEntries(home)) {
      const wrappedKey = await keystore.get(vaultKeyAccount(entry.vaultId));
      if (wrappedKey === null || !rewrapped.includes(entry.vaultId)) continue;
      const body: RewrapRequest = { wrappedKey, version: entry.syncedVersion };
      try {
        const result = await callApi(
          ctx,
          { method: "PUT", path: `${vaultPath(entry.vaultId)}/key`, body, answer: rewrapResponseSchema },
          { server: entry.server, verbose: options.verbose ?? 0 },
        );
        // Another account's copy of the vault on the same server is that account's business.
        if (result.userId !== entry.userId) continue;
      } catch (error) {
        if (isLatchkeyError(error, "LK_VAULT_NOT_SYNCED")) continue;
        if (isLatchkeyError(error, "LK_VAULT_CONFLICT")) {
          throw new LatchkeyError("LK_VAULT_CONFLICT", {
            message: `The server ${entry.server} has a newer version of vault ${entry.vaultId} than version ${entry.syncedVersion}, which this machine last synced, so its wrapped key was not replaced. The rotation is paused: every vault still opens.`,
            hint: "Run `latchkey env pull` in that project first, then `latchkey env rotate-key` again to finish.",
            details: { vaultId: entry.vaultId, server: entry.server, syncedVersion: entry.syncedVersion },
            cause: error,
          });
        }
        if (error instanceof LatchkeyError) {
          throw new LatchkeyError(error.code, {
            message: `${error.message} The rotation is paused before the old key is dropped: every vault still opens; run \`latchkey env rotate-key\` again to finish.`,
            hint: error.hint,
            cause: error,
            ...(error.details === undefined ? {} : { details: error.details }),
          });
        }
        throw error;
      }
      serverUpdated.push(`${entry.server} ${entry.vaultId}`);
      await ctx.afterRotateStep?.("server-key-updated");
    }

    // A vault key created since the first pass was wrapped by the pending key already (vault-store.ts prefers it);
    // this pass makes sure of it before the old key goes.
    await rewrapAll();
    await keystore.set(WRAPPING_KEY_ACCOUNT, toBase64(next));
    await ctx.afterRotateStep?.("promoted");
    await keystore.delete(PENDING_WRAPPING_KEY_ACCOUNT);
    return { rotated: true, resumed, rewrapped, unreadable, serverUpdated };
  });
}
