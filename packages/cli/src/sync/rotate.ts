import {
  LatchkeyError,
  canonicalVaultId,
  constantTimeEqual,
  isLatchkeyError,
  pullResponseSchema,
  rewrapResponseSchema,
  toBase64,
  type RewrapRequest,
} from "@latchkey/core";
import { join } from "node:path";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import type { Keystore } from "../keystore/types.js";
import { callApi } from "../server/api.js";
import { tryUnwrapVaultKey, vaultKeyAccount, wrapVaultKey } from "../vault/vault-store.js";
import {
  PENDING_WRAPPING_KEY_ACCOUNT,
  WRAPPING_KEY_ACCOUNT,
  readPendingWrappingKey,
  readWrappingKey,
} from "../vault/wrapping-key.js";
import { vaultPath } from "./push.js";
import { isPersonalEntry, listSyncEntries, type SyncEntry } from "./state.js";

/**
 * The points between the steps of a rotation or an adoption, where a crash test stops the process
 * (Context.afterRotateStep).
 */
export type RotateStep = "pending-stored" | "vault-key-rewrapped" | "server-key-updated" | "promoted";

/** Options of `env rotate-key` and of adopting a key. */
export interface RotateOptions {
  verbose?: number;
}

/** What a rotation did. */
export interface RotateOutcome {
  /** False when the wrapping key did not change (a rotation with no key; adopting the key this machine has). */
  rotated: boolean;
  /** True when this run finished a rotation or adoption a previous run had started. */
  resumed: boolean;
  rewrapped: string[];
  /** Vault keys no key of this machine opens (left as they are). */
  unreadable: string[];
  /** Synced vaults whose server copy got the new wrapped key, as `server vault`. */
  serverUpdated: string[];
  /**
   * Synced vaults whose server copy has a key no key of this machine opens, as `server vault`: left as they are,
   * since they are held by another machine's wrapping key (this machine is not paired for them).
   */
  serverUnopened: string[];
}

/** What adopting a key did: {@link RotateOutcome}, and which of the three cases it was. */
export interface AdoptOutcome extends RotateOutcome {
  /**
   * `stored`: this machine had no wrapping key, so the key simply became it; `unchanged`: it already had this
   * one; `adopted`: its vault keys (local and server copies) were re-wrapped under it, as a rotation does.
   */
  how: "stored" | "unchanged" | "adopted";
}

const VAULT_KEY_PREFIX = vaultKeyAccount("");

/** How the messages of a paused run name it and say what finishes it. */
interface Wording {
  readonly paused: string;
  /** Follows "run" or "then". */
  readonly finish: string;
}

const ROTATION: Wording = {
  paused: "The rotation is paused",
  finish: "`latchkey env rotate-key` again to finish",
};
// A rerun of rotate-key finishes an adoption: it resumes whatever pending key it finds, and the received key is
// that pending key (pairing hands it out only once).
const ADOPTION: Wording = {
  paused: "Adopting the paired wrapping key is paused",
  finish: "`latchkey env rotate-key` to finish adopting it",
};

/** Runs `body` under the lock getOrCreateWrappingKey takes: no first use creates a key meanwhile, no two runs race. */
async function underWrappingKeyLock<T>(ctx: Context, body: (keystore: Keystore) => Promise<T>): Promise<T> {
  const { keystore } = await ctx.keystore(WRAPPING_KEY_ACCOUNT);
  const home = ctx.paths.home;
  await ensurePrivateDir(home);
  return withFileLock(join(home, WRAPPING_KEY_ACCOUNT), () => body(keystore));
}

/** How many times a rewrap refused because the server copy got a new version meanwhile is tried afresh. */
const REWRAP_ATTEMPTS = 3;

/** `error`, saying that the run stopped before the old key was dropped and how to finish it. */
function paused(error: unknown, wording: Wording): unknown {
  if (!(error instanceof LatchkeyError)) return error;
  return new LatchkeyError(error.code, {
    message: `${error.message} ${wording.paused} before the old key is dropped: every vault still opens; run ${wording.finish}.`,
    hint: error.hint,
    cause: error,
    ...(error.details === undefined ? {} : { details: error.details }),
  });
}

/**
 * Step 3 for one synced vault: fetches the server's copy (signature checked by callApi), opens its wrapped key
 * with either key of this machine, and puts that same vault key, wrapped by `next`, back for that very version.
 * The key sent is the one the copy's blob is sealed with by construction: this machine's own vault key may be
 * another (a pull keeps the local key), and sending it would leave a copy nobody can decrypt. A push between
 * the fetch and the put (409) starts over, a few times. `skipped`: no copy there, or it is another account's;
 * `unopened`: no key of this machine opens it, so it is another machine's to re-wrap and is left as it is.
 */
async function rewrapServerCopy(
  ctx: Context,
  keystore: Keystore,
  entry: SyncEntry,
  next: Uint8Array,
  options: RotateOptions,
  wording: Wording,
): Promise<"updated" | "unopened" | "skipped"> {
  const vaultId = canonicalVaultId(entry.vaultId);
  const where = { server: entry.server, verbose: options.verbose ?? 0 };
  for (let attempt = 1; ; attempt++) {
    let copy;
    try {
      copy = await callApi(
        ctx,
        { method: "GET", path: vaultPath(vaultId), answer: pullResponseSchema },
        where,
      );
    } catch (error) {
      if (isLatchkeyError(error, "LK_VAULT_NOT_SYNCED")) return "skipped";
      throw paused(error, wording);
    }
    // Another account's copy of the vault on the same server is that account's business.
    if (copy.userId !== entry.userId) return "skipped";
    if (copy.data.vaultId !== vaultId) {
      throw new LatchkeyError("LK_SERVER_ERROR", {
        message: `The server ${entry.server} answered with vault ${copy.data.vaultId} when asked for vault ${vaultId}, so its wrapped key was not replaced. ${wording.paused} before the old key is dropped: every vault still opens.`,
        hint: `Check the server, then run ${wording.finish}.`,
        details: { vaultId, server: entry.server },
      });
    }
    const key = await tryUnwrapVaultKey(keystore, vaultId, copy.data.wrappedKey);
    if (key === null) return "unopened";
    const body: RewrapRequest = {
      wrappedKey: wrapVaultKey(next, vaultId, key, ctx.random),
      version: copy.data.version,
    };
    try {
      await callApi(
        ctx,
        { method: "PUT", path: `${vaultPath(vaultId)}/key`, body, answer: rewrapResponseSchema },
        where,
      );
      return "updated";
    } catch (error) {
      if (isLatchkeyError(error, "LK_VAULT_NOT_SYNCED")) return "skipped";
      if (!isLatchkeyError(error, "LK_VAULT_CONFLICT")) throw paused(error, wording);
      if (attempt < REWRAP_ATTEMPTS) continue;
      throw new LatchkeyError("LK_VAULT_CONFLICT", {
        message: `The server ${entry.server} got a new version of vault ${vaultId} each time this machine re-wrapped its key (${REWRAP_ATTEMPTS} attempts), so its wrapped key was not replaced. ${wording.paused}: every vault still opens.`,
        hint: `Wait until your other machines have finished pushing it, then run ${wording.finish}.`,
        details: { vaultId, server: entry.server, version: copy.data.version },
        cause: error,
      });
    }
  }
}

/**
 * The crash-safe steps that move this machine to wrapping key `next`, shared by rotation and adoption:
 * 1. `next` is stored as the pending key (skipped when `alreadyPending`: a rerun found it there);
 * 2. every local vault key is re-wrapped by it; readers open either key meanwhile (vault-store.ts);
 * 3. every synced vault's server copy gets its own vault key re-wrapped by `next` (rewrapServerCopy);
 * 4. the pending key becomes the wrapping key; the old one is gone only then, and the pending entry last.
 * Called under the wrapping key's lock.
 */
async function switchWrappingKey(
  ctx: Context,
  keystore: Keystore,
  next: Uint8Array,
  alreadyPending: boolean,
  options: RotateOptions,
  wording: Wording,
): Promise<RotateOutcome> {
  const home = ctx.paths.home;
  if (!alreadyPending) {
    await keystore.set(PENDING_WRAPPING_KEY_ACCOUNT, toBase64(next));
    await ctx.afterRotateStep?.("pending-stored");
  }

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
  const serverUnopened: string[] = [];
  // An organisation's copy has no key wrapped by this machine's wrapping key: only personal copies are re-wrapped.
  for (const entry of (await listSyncEntries(home)).filter(isPersonalEntry)) {
    const done = await rewrapServerCopy(ctx, keystore, entry, next, options, wording);
    if (done === "skipped") continue;
    if (done === "unopened") {
      serverUnopened.push(`${entry.server} ${entry.vaultId}`);
      continue;
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
  return { rotated: true, resumed: alreadyPending, rewrapped, unreadable, serverUpdated, serverUnopened };
}

/**
 * `env rotate-key`: replaces the machine wrapping key with a random one, by the crash-safe steps of
 * switchWrappingKey. A rerun finishes a run that stopped halfway, with the pending key it finds (also one an
 * interrupted {@link adoptWrappingKey} left). A machine with no wrapping key has nothing to rotate.
 */
export async function rotateWrappingKey(ctx: Context, options: RotateOptions = {}): Promise<RotateOutcome> {
  return underWrappingKeyLock(ctx, async (keystore) => {
    const current = await readWrappingKey(keystore);
    const pending = await readPendingWrappingKey(keystore);
    if (current === null && pending === null) {
      return {
        rotated: false,
        resumed: false,
        rewrapped: [],
        unreadable: [],
        serverUpdated: [],
        serverUnopened: [],
      };
    }
    return switchWrappingKey(
      ctx,
      keystore,
      pending ?? ctx.random.bytes(32),
      pending !== null,
      options,
      ROTATION,
    );
  });
}

/**
 * Makes `key` (a wrapping key received by pairing, docs/pairing.md "Adoption") this machine's wrapping key:
 * - no wrapping key here yet: it is stored as the wrapping key, and that is all (`stored`);
 * - this very key already: nothing changes (`unchanged`);
 * - another key: the crash-safe steps of `env rotate-key`, towards `key` instead of a random one, so every local
 *   vault and every synced vault's server copy opens with it afterwards (`adopted`). A crash anywhere leaves
 *   every vault readable; a rerun with the same key, or `env rotate-key`, finishes.
 * A pending key that is not `key` is another rotation in progress: refused (LK_PAIRING_FAILED), nothing changed.
 */
export async function adoptWrappingKey(
  ctx: Context,
  key: Uint8Array,
  options: RotateOptions = {},
): Promise<AdoptOutcome> {
  if (key.length !== 32) throw new Error(`A wrapping key is 32 bytes, not ${key.length}.`);
  return underWrappingKeyLock(ctx, async (keystore) => {
    const current = await readWrappingKey(keystore);
    const pending = await readPendingWrappingKey(keystore);
    const nothing = { resumed: false, rewrapped: [], unreadable: [], serverUpdated: [], serverUnopened: [] };
    if (pending !== null && !constantTimeEqual(pending, key)) {
      throw new LatchkeyError("LK_PAIRING_FAILED", {
        message:
          "This machine is in the middle of replacing its wrapping key with another key (an `env rotate-key` or an earlier pairing that stopped halfway), so the key received by pairing was not adopted. Nothing was changed.",
        hint: "Run `latchkey env rotate-key` to finish that first, then pair again: `latchkey pair` here and `latchkey env pair CODE` on the other machine.",
      });
    }
    if (pending === null && current !== null && constantTimeEqual(current, key)) {
      return { ...nothing, rotated: false, how: "unchanged" };
    }
    if (pending === null && current === null) {
      await keystore.set(WRAPPING_KEY_ACCOUNT, toBase64(key));
      return { ...nothing, rotated: true, how: "stored" };
    }
    const outcome = await switchWrappingKey(ctx, keystore, key, pending !== null, options, ADOPTION);
    return { ...outcome, how: "adopted" };
  });
}
