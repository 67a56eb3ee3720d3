// `env status`: per vault, what this machine has (its file, the version it last pushed or pulled, and when) and
// what the server has (its version, and whether this machine's wrapping key opens the key it holds). It writes
// nothing and never fails for want of a server: not signed in, unreachable or any other failure is reported in
// its place. The sync API has no route that answers a version without the blob, so the server is asked with the
// pull route, whose answer is read (signature and schema checked by callApi) and dropped.
import {
  canonicalVaultId,
  isLatchkeyError,
  isUuid,
  parseIsoDateTime,
  pullResponseSchema,
  vaultIdProblem,
  type SyncEntry,
} from "@latchkey/core";
import { readdir } from "node:fs/promises";
import type { Context } from "../context.js";
import { findProject, resolveVaultId } from "../project/project.js";
import { callApi } from "../server/api.js";
import { tryUnwrapVaultKey } from "../vault/vault-store.js";
import { vaultPath } from "./push.js";
import { isPersonalEntry, listSyncEntries } from "./state.js";

/** What the server said of a vault, or why it was not heard. */
export type ServerView =
  /** The server has version `version` of the vault for this account. */
  | { state: "synced"; server: string; version: number }
  /** The server has no copy of the vault for this account. */
  | { state: "not-synced"; server: string }
  /** No session (or an expired one) at the server; `server` is null when no server is configured at all. */
  | { state: "not-signed-in"; server: string | null }
  | { state: "unreachable"; server: string }
  /** Not asked: `--offline`, or a vault id a server cannot name (not a UUID). */
  | { state: "not-asked"; reason: "offline" | "not-a-uuid" }
  /** Any other failure, as its catalogue code and message. */
  | { state: "error"; server: string | null; code: string; message: string };

/** One vault as `env status` reports it. */
export interface VaultStatus {
  vaultId: string;
  local: {
    /** Whether this machine has the vault's file. */
    present: boolean;
    /** The version this machine last pushed or pulled; null when it never synced the vault. */
    version: number | null;
    /** When (ISO-8601); null when never, or not recorded. What `--offline` measures a copy's age from. */
    syncedAt: string | null;
    /** The server of that sync. */
    server: string | null;
  };
  server: ServerView;
  /**
   * Whether this machine's wrapping key opens the vault key of the server's copy: true or false when the server
   * answered with a copy, null when it has none or was not heard.
   */
  paired: boolean | null;
}

/** Options of `env status`. */
export interface StatusOptions {
  /** Every vault this machine has, or has synced, instead of the project's. */
  all: boolean;
  /** Do not ask the server. */
  offline: boolean;
  profile?: string;
  server?: string;
  verbose?: number;
}

/** The ids of the vaults with a file on this machine, in their one spelling. */
async function localVaultIds(ctx: Context): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(ctx.paths.vaults);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return names.flatMap((name) => {
    const id = name.endsWith(".enc") ? name.slice(0, -".enc".length) : "";
    return id !== "" && vaultIdProblem(id) === undefined ? [canonicalVaultId(id)] : [];
  });
}

const syncedAtMs = (entry: SyncEntry): number =>
  entry.syncedAt === undefined ? -Infinity : (parseIsoDateTime(entry.syncedAt) ?? -Infinity);

/**
 * The entry that describes this machine's copy: the one of the server and account that answered, else the most
 * recent one at the server asked, else the most recent one anywhere.
 */
function localEntry(
  entries: readonly SyncEntry[],
  vaultId: string,
  server: string | null,
  userId: string | null,
): SyncEntry | null {
  // The status is of the personal copy; an organisation's copy has its own version numbers.
  const mine = entries.filter((e) => isPersonalEntry(e) && canonicalVaultId(e.vaultId) === vaultId);
  const latest = (list: SyncEntry[]) =>
    list.reduce<SyncEntry | null>((a, b) => (a === null || syncedAtMs(b) > syncedAtMs(a) ? b : a), null);
  const exact = mine.find((e) => e.server === server && e.userId === userId);
  return exact ?? latest(mine.filter((e) => e.server === server)) ?? latest(mine);
}

const serverOf = (error: { details?: Record<string, unknown> | undefined }): string | null =>
  typeof error.details?.server === "string" ? error.details.server : null;

/** What the server said of a vault, the account that asked, and whether this machine opens its copy's key. */
interface Asked {
  view: ServerView;
  userId: string | null;
  paired: boolean | null;
}

/** Asks the server for its copy of `vaultId`. */
async function askServer(ctx: Context, vaultId: string, options: StatusOptions): Promise<Asked> {
  if (options.offline) return { view: { state: "not-asked", reason: "offline" }, userId: null, paired: null };
  if (!isUuid(vaultId))
    return { view: { state: "not-asked", reason: "not-a-uuid" }, userId: null, paired: null };
  try {
    const result = await callApi(
      ctx,
      { method: "GET", path: vaultPath(vaultId), answer: pullResponseSchema },
      {
        verbose: options.verbose ?? 0,
        ...(options.profile === undefined ? {} : { profile: options.profile }),
        ...(options.server === undefined ? {} : { server: options.server }),
      },
    );
    const { server, userId, data } = result;
    if (data.vaultId !== vaultId) {
      const message = `The server answered for vault ${data.vaultId} when asked for vault ${vaultId}.`;
      return {
        view: { state: "error", server, code: "LK_SERVER_ERROR", message },
        userId: null,
        paired: null,
      };
    }
    const { keystore } = await ctx.keystore();
    const paired = (await tryUnwrapVaultKey(keystore, vaultId, data.wrappedKey)) !== null;
    return { view: { state: "synced", server, version: data.version }, userId, paired };
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    const server = serverOf(error);
    const none = { userId: null, paired: null };
    if (error.code === "LK_NOT_LOGGED_IN" || error.code === "LK_SESSION_EXPIRED")
      return { view: { state: "not-signed-in", server }, ...none };
    if (error.code === "LK_SERVER_UNREACHABLE" && server !== null)
      return { view: { state: "unreachable", server }, ...none };
    if (error.code === "LK_VAULT_NOT_SYNCED" && server !== null)
      return { view: { state: "not-synced", server }, ...none };
    return { view: { state: "error", server, code: error.code, message: error.message }, ...none };
  }
}

/**
 * `env status`: the project's vault (LATCHKEY_VAULT_ID, else latchkey.json's; LK_PROJECT_NOT_FOUND without
 * either), or with `all` every vault with a file or a sync record on this machine. Reads no secret and changes
 * nothing, so it needs no approval of the project's vault (project/approvals.ts).
 */
export async function vaultStatus(ctx: Context, options: StatusOptions): Promise<VaultStatus[]> {
  const present = await localVaultIds(ctx);
  const entries = await listSyncEntries(ctx.paths.home);
  const ids = options.all
    ? [...new Set([...present, ...entries.map((e) => canonicalVaultId(e.vaultId))])].sort()
    : [canonicalVaultId(resolveVaultId(ctx.env, await findProject(ctx.cwd)))];
  const statuses: VaultStatus[] = [];
  // A server that is not there, or not signed in to, is so for every vault: asked once, not once per vault.
  let absent: Asked | null = null;
  for (const vaultId of ids) {
    const asked: Asked = (isUuid(vaultId) ? absent : null) ?? (await askServer(ctx, vaultId, options));
    if (asked.view.state === "unreachable" || asked.view.state === "not-signed-in") absent = asked;
    const server = "server" in asked.view ? asked.view.server : null;
    const entry = localEntry(entries, vaultId, server, asked.userId);
    statuses.push({
      vaultId,
      local: {
        present: present.includes(vaultId),
        version: entry?.syncedVersion ?? null,
        syncedAt: entry?.syncedAt ?? null,
        server: entry?.server ?? null,
      },
      server: asked.view,
      paired: asked.paired,
    });
  }
  return statuses;
}
