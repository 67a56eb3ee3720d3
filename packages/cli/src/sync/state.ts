/**
 * What this machine remembers of its syncs, under $LATCHKEY_HOME/sync/ (latchkey.json is committed and can be
 * reset by git, so anti-rollback cannot rest on it):
 * - `state.json` (0600): per (server, user, vault) the highest version seen, the version last synced and when —
 *   one entry for the personal copy and one per organisation copy (`org`), each its own anti-rollback record;
 * - `<vault-id>.base.enc` (personal) and `<vault-id>.org.<slug>.base.enc`: the document as of the version last
 *   synced, sealed with the local vault key, the base of `env pull`'s three-way merge.
 *
 * `org` is an organisation's slug where a function takes one; absent (undefined) means the personal copy.
 */
import {
  LatchkeyError,
  associatedData,
  canonicalVaultId,
  syncBaseSchema,
  utf8Decode,
  utf8Encode,
  type SyncBase,
  type SyncEntry,
  type SyncState,
} from "@latchkey/core";
import { join } from "node:path";
import type { Random } from "../context.js";
import { readSyncState } from "../fast-readers.js";
import { openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";

/** One synced vault as this machine knows it, and the merge base (core's syncEntrySchema and syncBaseSchema). */
export type { SyncBase, SyncEntry };

/** The directory of the sync state. */
export function syncDir(home: string): string {
  return join(home, "sync");
}

const stateFile = (home: string) => join(syncDir(home), "state.json");

// An entry recorded under another spelling of the id is the same vault: its anti-rollback record still counts.
const same = (e: SyncEntry, server: string, userId: string, vaultId: string, org: string | undefined) =>
  e.server === server &&
  e.userId === userId &&
  canonicalVaultId(e.vaultId) === canonicalVaultId(vaultId) &&
  e.org === org;

/** Whether `entry` is of a personal copy (not an organisation's). */
export function isPersonalEntry(entry: SyncEntry): boolean {
  return entry.org === undefined;
}

function corrupt(path: string): LatchkeyError {
  return new LatchkeyError("LK_STORE_CORRUPT", {
    message: `The sync state ${path} is not readable.`,
    hint: "Move it away and pull again; the anti-rollback record starts afresh.",
  });
}

// Read with the zod-free reader: `run --offline` reads this file on its hot path (offline.ts).
async function readState(home: string): Promise<SyncState> {
  const path = stateFile(home);
  const bytes = await readFileSafe(path);
  if (bytes === null) return { format: 1, entries: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(bytes));
  } catch {
    throw corrupt(path);
  }
  const state = readSyncState(parsed);
  if (!state.ok) throw corrupt(path);
  return state.value;
}

/** Every synced vault this machine remembers. */
export async function listSyncEntries(home: string): Promise<SyncEntry[]> {
  return (await readState(home)).entries;
}

/** The entry of (server, user, vault, organisation), or null when this machine never synced that copy. */
export async function getSyncEntry(
  home: string,
  server: string,
  userId: string,
  vaultId: string,
  org?: string,
): Promise<SyncEntry | null> {
  return (await readState(home)).entries.find((e) => same(e, server, userId, vaultId, org)) ?? null;
}

/** The highest of an entry's key version and `keyVersion` (undefined: none known). */
const higherKeyVersion = (entry: SyncEntry | undefined, keyVersion: number | undefined) =>
  keyVersion === undefined
    ? entry?.highestKeyVersion
    : Math.max(entry?.highestKeyVersion ?? keyVersion, keyVersion);

/**
 * Records a verified sync of `version` at `now` (ms since the epoch): the highest version seen never goes down,
 * the synced version becomes `version` and `syncedAt` the time. `keyVersion`, for an organisation copy whose
 * vault key this sync opened or made, raises the highest key version likewise. Locked and atomic, so concurrent
 * pushes and pulls of several checkouts cannot drop an entry.
 */
export async function recordSync(
  home: string,
  server: string,
  userId: string,
  vaultId: string,
  version: number,
  now: number,
  org?: string,
  keyVersion?: number,
): Promise<SyncEntry> {
  const syncedAt = new Date(now).toISOString();
  const dir = syncDir(home);
  await ensurePrivateDir(home);
  await ensurePrivateDir(dir);
  const path = stateFile(home);
  return withFileLock(path, async (lost) => {
    const state = await readState(home);
    let entry = state.entries.find((e) => same(e, server, userId, vaultId, org));
    const highestKeyVersion = higherKeyVersion(entry, keyVersion);
    if (entry === undefined) {
      entry = {
        server,
        userId,
        vaultId: canonicalVaultId(vaultId),
        ...(org === undefined ? {} : { org }),
        highestVersion: version,
        syncedVersion: version,
        ...(highestKeyVersion === undefined ? {} : { highestKeyVersion }),
        syncedAt,
      };
      state.entries.push(entry);
    } else {
      entry.vaultId = canonicalVaultId(vaultId);
      entry.highestVersion = Math.max(entry.highestVersion, version);
      entry.syncedVersion = version;
      if (highestKeyVersion !== undefined) entry.highestKeyVersion = highestKeyVersion;
      entry.syncedAt = syncedAt;
    }
    lost.throwIfAborted();
    await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
    return entry;
  });
}

/**
 * Raises the highest key version of `org`'s copy to `keyVersion` when this machine already has an entry of it (a
 * rotation made a new key without syncing the checkout); without one there is no sync to attach it to, and the
 * next pull records it.
 */
export async function recordKeyVersion(
  home: string,
  server: string,
  userId: string,
  vaultId: string,
  org: string,
  keyVersion: number,
): Promise<void> {
  const path = stateFile(home);
  if ((await readFileSafe(path)) === null) return;
  await withFileLock(path, async (lost) => {
    const state = await readState(home);
    const entry = state.entries.find((e) => same(e, server, userId, vaultId, org));
    if (entry === undefined || (entry.highestKeyVersion ?? 0) >= keyVersion) return;
    entry.highestKeyVersion = keyVersion;
    lost.throwIfAborted();
    await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
  });
}

// An organisation slug is lower-case letters, digits and hyphens: safe in a file name as it is.
const baseFile = (home: string, vaultId: string, org: string | undefined) =>
  join(syncDir(home), org === undefined ? `${vaultId}.base.enc` : `${vaultId}.org.${org}.base.enc`);
const baseContext = (vaultId: string, org: string | undefined) =>
  associatedData({
    purpose: "latchkey-sync-base",
    vault: canonicalVaultId(vaultId),
    ...(org === undefined ? {} : { org }),
  });

/** Keeps the last synced document of the copy (personal, or `org`'s), sealed with the local vault key. */
export async function writeSyncBase(
  home: string,
  vaultId: string,
  vaultKey: Uint8Array,
  base: SyncBase,
  random: Random,
  org?: string,
): Promise<void> {
  await ensurePrivateDir(home);
  await ensurePrivateDir(syncDir(home));
  const sealed = sealEnvelopeSync(
    vaultKey,
    utf8Encode(JSON.stringify(base)),
    baseContext(vaultId, org),
    (n) => random.bytes(n),
  );
  await writeFileAtomic(baseFile(home, vaultId, org), sealed);
}

/**
 * The last synced document, or null when there is none, it cannot be opened with `vaultKey` (the vault's key
 * changed) or it is unreadable: a merge then has no common base and treats every difference as a conflict.
 */
export async function readSyncBase(
  home: string,
  vaultId: string,
  vaultKey: Uint8Array,
  org?: string,
): Promise<SyncBase | null> {
  const bytes = await readFileSafe(baseFile(home, vaultId, org));
  if (bytes === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(await openEnvelopeCli(vaultKey, bytes, baseContext(vaultId, org))));
  } catch {
    return null;
  }
  const base = syncBaseSchema.safeParse(parsed);
  return base.success ? base.data : null;
}
