import {
  LatchkeyError,
  isLatchkeyError,
  pullResponseSchema,
  pushResponseSchema,
  syncBlobContext,
  toBase64,
  utf8Encode,
  type PushRequest,
  type PushResponse,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { sealEnvelopeSync } from "../crypto/native.js";
import { callApi } from "../server/api.js";
import { requireServerSession } from "../server/session.js";
import { checkVaultSize } from "../vault/limits.js";
import {
  loadVaultKey,
  readVaultWithPresence,
  tryUnwrapVaultKey,
  vaultKeyAccount,
  type VaultDocument,
} from "../vault/vault-store.js";
import { refuseVaultSyncedElsewhere, serverCopyNotPaired } from "./not-paired.js";
import {
  openSyncProject,
  personalVersion,
  pushName,
  pushSchema,
  recordPersonalVersion,
  type SyncProject,
} from "./project.js";
import { getSyncEntry, readSyncBase, recordSync, writeSyncBase, type SyncBase } from "./state.js";

/** Options of `env push`. */
export interface PushOptions {
  profile?: string;
  server?: string;
  verbose?: number;
  /** Push a new version even when nothing changed since the last sync. */
  force?: boolean;
}

/** What a push did. */
export interface PushOutcome {
  vaultId: string;
  server: string;
  name: string;
  baseVersion: number;
  /** The new version; when nothing was pushed, the version the vault is still at. */
  version: number;
  environments: number;
  /** False when nothing had changed since the last sync, so no request was made. */
  pushed: boolean;
}

/** JSON with object keys sorted, so two equal values have one text whatever order their keys were set in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const fields = Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
    return `{${fields.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Whether a push would only repeat `base`, the version this machine last pushed or pulled: same server and
 * account, based on that very version, the same secrets, and the same name and envSchema (an absent schema keeps
 * the server's). A base from before the name and schema were kept in it never counts as unchanged.
 */
function unchangedSince(
  base: SyncBase | null,
  push: { server: string; userId: string; baseVersion: number; document: VaultDocument; name: string },
  schema: Record<string, unknown> | undefined,
): base is SyncBase {
  if (base === null || base.server !== push.server || base.userId !== push.userId) return false;
  if (base.version !== push.baseVersion || base.name !== push.name) return false;
  if (
    schema !== undefined &&
    (base.schema === undefined || canonicalJson(schema) !== canonicalJson(base.schema))
  )
    return false;
  return canonicalJson(base.document) === canonicalJson(push.document);
}

/**
 * Whether `answer` acknowledges this push: for this vault, as version base + 1. Its schema, strict, has already
 * refused anything but exactly the fields of a PushResponse (say, a pull answer with a matching version).
 * Checked before anything is recorded, since recording a version the server never took would make the next pull
 * drop the local change.
 */
function acknowledges(answer: PushResponse, vaultId: string, version: number): boolean {
  return answer.vaultId === vaultId && answer.version === version;
}

/**
 * After a push from a machine that never synced the vault was refused for a newer server version: LK_VAULT_NOT_PAIRED
 * when this machine's wrapping key does not open the server copy's key, since the conflict's remedy (pull, merge,
 * push again) cannot work then. Anything else, the server's copy unreadable included, leaves the conflict to be
 * reported as it is.
 */
async function refuseUnopenableServerCopy(
  ctx: Context,
  sp: SyncProject,
  serverOptions: { server: string; profile?: string },
  options: PushOptions,
): Promise<void> {
  let copy;
  try {
    copy = await callApi(
      ctx,
      { method: "GET", path: vaultPath(sp.vaultId), answer: pullResponseSchema },
      { ...serverOptions, verbose: options.verbose ?? 0 },
    );
  } catch {
    return;
  }
  if (copy.data.vaultId !== sp.vaultId) return;
  if ((await tryUnwrapVaultKey(sp.keystore, sp.vaultId, copy.data.wrappedKey)) !== null) return;
  throw serverCopyNotPaired({
    vaultId: sp.vaultId,
    server: copy.server,
    version: copy.data.version,
    syncedVersion: null,
    outcome: "The push was refused; nothing was overwritten.",
  });
}

/** The path of a vault under the API prefix. */
export const vaultPath = (vaultId: string): string => `/vaults/${encodeURIComponent(vaultId)}`;

/**
 * `env push`: seals the whole vault (every environment) with the vault key under syncBlobContext(vault, base + 1)
 * and sends it with the vault key as this machine wraps it. The base is the lower of latchkey.json's
 * personalVersion and this machine's last synced version, so a checkout that has not seen a newer version, or a
 * latchkey.json carried in by git from elsewhere, is refused (409) rather than overwriting what it never merged.
 */
export async function pushVault(ctx: Context, options: PushOptions = {}): Promise<PushOutcome> {
  const sp = await openSyncProject(ctx);
  const { vaultId, project, keystore } = sp;
  const { document, exists } = await readVaultWithPresence(sp.deps, vaultId);
  const wrappedKey = await keystore.get(vaultKeyAccount(vaultId));
  const vaultKey = await loadVaultKey(sp.deps, vaultId);
  if (!exists || wrappedKey === null || vaultKey === null) {
    await refuseVaultSyncedElsewhere(keystore, project, vaultId);
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `Vault ${vaultId} has no secrets on this machine: there is nothing to push.`,
      hint: "Set secrets with `latchkey env set`, or fetch the server's copy with `latchkey env pull`.",
    });
  }
  checkVaultSize(document, "push");
  const serverOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const active = await requireServerSession(ctx, { ...serverOptions, verbose: options.verbose ?? 0 });
  const server = active.selection.server;
  const entry = await getSyncEntry(ctx.paths.home, server, active.session.subject, vaultId);
  const baseVersion = Math.min(personalVersion(project) ?? 0, entry?.syncedVersion ?? 0);
  const schema = pushSchema(ctx, project);
  const name = pushName(ctx, project);
  const userId = active.session.subject;
  const base = baseVersion > 0 ? await readSyncBase(ctx.paths.home, vaultId, vaultKey) : null;
  if (
    options.force !== true &&
    unchangedSince(base, { server, userId, baseVersion, document, name }, schema)
  ) {
    const environments = Object.keys(document).length;
    return { vaultId, server, name, baseVersion, version: baseVersion, environments, pushed: false };
  }
  const version = baseVersion + 1;
  const sealed = sealEnvelopeSync(
    vaultKey,
    utf8Encode(JSON.stringify(document)),
    syncBlobContext(vaultId, version),
    (n) => ctx.random.bytes(n),
  );
  const body: PushRequest = {
    encryptedBlob: toBase64(sealed),
    wrappedKey,
    ...(schema === undefined ? {} : { schema }),
    name,
    baseVersion,
  };
  let result;
  try {
    result = await callApi(
      ctx,
      { method: "PUT", path: vaultPath(vaultId), body, answer: pushResponseSchema },
      {
        server,
        verbose: options.verbose ?? 0,
        ...(options.profile === undefined ? {} : { profile: options.profile }),
      },
    );
  } catch (error) {
    if (!isLatchkeyError(error, "LK_VAULT_CONFLICT")) throw error;
    // A machine that never synced this vault may be one that cannot open the server's copy: pulling cannot help it.
    if (entry === null) await refuseUnopenableServerCopy(ctx, sp, { ...serverOptions, server }, options);
    const current = error.details?.currentVersion;
    throw new LatchkeyError("LK_VAULT_CONFLICT", {
      message:
        typeof current === "number"
          ? `The server has version ${current} of vault ${vaultId}; this push was based on version ${baseVersion}. Nothing was overwritten.`
          : `The server has a newer version of vault ${vaultId} than version ${baseVersion}, which this push was based on. Nothing was overwritten.`,
      hint: "Run `latchkey env pull` to reconcile the server's version with your changes, then `latchkey env push` again.",
      details: { vaultId, baseVersion, ...(typeof current === "number" ? { currentVersion: current } : {}) },
      cause: error,
    });
  }
  if (!acknowledges(result.data, vaultId, version)) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server acknowledged the push of vault ${vaultId} with an answer that is not the acknowledgement of version ${version}; nothing was recorded as synced.`,
      hint: "Run `latchkey env pull` to see what the server has, then push again.",
      details: { server },
    });
  }
  await writeSyncBase(
    ctx.paths.home,
    vaultId,
    vaultKey,
    {
      server,
      userId: result.userId,
      version,
      document,
      name,
      // Without a schema in this push the server kept the one it had, which the base knows if it is that version's.
      ...(schema !== undefined
        ? { schema }
        : base?.version === baseVersion && base.schema !== undefined
          ? { schema: base.schema }
          : {}),
    },
    ctx.random,
  );
  await recordSync(ctx.paths.home, server, result.userId, vaultId, version, ctx.clock.now());
  await recordPersonalVersion(ctx, project, version);
  return {
    vaultId,
    server,
    name,
    baseVersion,
    version,
    environments: Object.keys(document).length,
    pushed: true,
  };
}
