import {
  LatchkeyError,
  formatDotenv,
  fromBase64,
  pullResponseSchema,
  syncBlobContext,
  toBase64,
  utf8Decode,
} from "@latchkey/core";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { readVaultDocument } from "../fast-readers.js";
import { openEnvelopeCli } from "../crypto/native.js";
import { writeFileAtomic } from "../fs/safe-file.js";
import { fetchOrgCopy, openOrgBlob, unwrapOrgKey } from "../org/copy.js";
import { openOrgSessionWith } from "../org/session.js";
import { authorizeVaultUse } from "../project/approvals.js";
import { callApi } from "../server/api.js";
import { validateEnvName } from "../vault/names.js";
import {
  loadVaultKey,
  tryUnwrapVaultKey,
  updateVault,
  vaultKeyAccount,
  type VaultDocument,
} from "../vault/vault-store.js";
import { mergeDocuments } from "./merge.js";
import { serverCopyNotPaired } from "./not-paired.js";
import { chosenOrg, openSyncProject, recordVersion, type CopyChoice } from "./project.js";
import { vaultPath } from "./push.js";
import { getSyncEntry, readSyncBase, recordSync, writeSyncBase } from "./state.js";

/** Options of `env pull`: which copy (`org`, `personal`: see chosenOrg), where, and what to write. */
export interface PullOptions extends CopyChoice {
  /** The environment `output` gets (default `default`). */
  environment: string;
  /** Also write that environment as a dotenv file (mode 0600). */
  output?: string;
  profile?: string;
  server?: string;
  verbose?: number;
  /** `--trust-new-members`: take the key of a sharer never seen here without asking (never a changed key). */
  trustNewMembers?: boolean;
}

/** What a pull did; key names as `environment/KEY`, never values. */
export interface PullOutcome {
  vaultId: string;
  server: string;
  /** The organisation whose copy was pulled; absent for the personal copy. */
  org?: string;
  version: number;
  /** The local vault was absent (or empty and never synced): the server's copy was taken whole. */
  restored: boolean;
  fromServer: string[];
  keptLocal: string[];
  conflicts: string[];
  output?: string;
}

function serverAnswerInvalid(vaultId: string, server: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_SERVER_ERROR", {
    message: `The server's copy of vault ${vaultId} is not usable: ${why}.`,
    details: { server },
  });
}

function parseRemoteDocument(plaintext: Uint8Array, vaultId: string, server: string): VaultDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(plaintext));
  } catch {
    throw serverAnswerInvalid(vaultId, server, "it decrypted to something that is not JSON");
  }
  // The same reader as the local vault file's: one definition of a vault document (core's vaultDocumentSchema).
  const document = readVaultDocument(parsed);
  if (!document.ok) throw serverAnswerInvalid(vaultId, server, "it decrypted to an unexpected shape");
  return document.value;
}

/** A fetched copy, opened: what the merge takes, and the vault key that opens the copy. */
interface OpenedCopy {
  readonly server: string;
  readonly userId: string;
  readonly version: number;
  readonly name: string;
  readonly schema: Record<string, unknown> | null;
  readonly remote: VaultDocument;
  /** The key the copy is sealed with: this machine's vault key (personal), or the organisation's. */
  readonly copyKey: Uint8Array;
  /** The personal copy's wrapped key, which a machine without its own vault key takes. */
  readonly wrappedKey?: string;
  /** An organisation copy's key version: the share that wrapped the key this pull opened. */
  readonly keyVersion?: number;
}

/** Refuses a version below the highest this machine has seen of that copy. */
async function refuseRollback(
  ctx: Context,
  at: { server: string; userId: string; vaultId: string; version: number; org: string | undefined },
): Promise<number | null> {
  const { server, userId, vaultId, version, org } = at;
  const entry = await getSyncEntry(ctx.paths.home, server, userId, vaultId, org);
  if (entry !== null && version < entry.highestVersion) {
    throw new LatchkeyError("LK_VAULT_ROLLBACK", {
      message: `The server offered version ${version} of ${org === undefined ? "" : `organisation ${org}'s copy of `}vault ${vaultId}, but this machine has already seen version ${entry.highestVersion}. Nothing was written.`,
      details: {
        vaultId,
        server,
        ...(org === undefined ? {} : { org }),
        offered: version,
        highestSeen: entry.highestVersion,
      },
    });
  }
  return entry?.syncedVersion ?? null;
}

/** The personal copy: its key unwrapped with this machine's wrapping key (else LK_VAULT_NOT_PAIRED). */
async function openPersonalCopy(
  ctx: Context,
  sp: Awaited<ReturnType<typeof openSyncProject>>,
  options: PullOptions,
): Promise<OpenedCopy> {
  const { vaultId, keystore } = sp;
  const result = await callApi(
    ctx,
    { method: "GET", path: vaultPath(vaultId), answer: pullResponseSchema },
    {
      verbose: options.verbose ?? 0,
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      ...(options.server === undefined ? {} : { server: options.server }),
    },
  );
  const { server, userId, data: answer } = result;
  if (answer.vaultId !== vaultId) throw serverAnswerInvalid(vaultId, server, "the answer is another vault's");
  const version = answer.version;
  const syncedVersion = await refuseRollback(ctx, { server, userId, vaultId, version, org: undefined });
  const remoteKey = await tryUnwrapVaultKey(keystore, vaultId, answer.wrappedKey);
  if (remoteKey === null) {
    throw serverCopyNotPaired({ vaultId, server, version, syncedVersion, outcome: "Nothing was written." });
  }
  // Its schema took canonical base64 only.
  const blob = fromBase64(answer.encryptedBlob);
  let plaintext: Uint8Array;
  try {
    plaintext = await openEnvelopeCli(remoteKey, blob, syncBlobContext(vaultId, version));
  } catch {
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The server's copy of vault ${vaultId} does not decrypt as version ${version}: it was altered or replayed under another version. Nothing was written.`,
      details: { vaultId, server, version },
    });
  }
  return {
    server,
    userId,
    version,
    name: answer.name,
    schema: answer.schema,
    remote: parseRemoteDocument(plaintext, vaultId, server),
    copyKey: remoteKey,
    wrappedKey: answer.wrappedKey,
  };
}

/**
 * An organisation's copy: its key unwrapped with the account's sharing key (ensureSharingKey first), once the
 * sharer who wrapped it and its key version pass (copy.ts unwrapOrgKey).
 */
async function openOrgCopy(
  ctx: Context,
  vaultId: string,
  org: string,
  options: PullOptions,
): Promise<OpenedCopy> {
  // The copy is asked for while the sharing key is checked; it is used only once the check passed.
  const [session, { server, userId, data: answer }] = await openOrgSessionWith(
    ctx,
    {
      verbose: options.verbose ?? 0,
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      ...(options.server === undefined ? {} : { server: options.server }),
    },
    (api) => fetchOrgCopy(ctx, org, vaultId, api),
  );
  const version = answer.version;
  await refuseRollback(ctx, { server, userId, vaultId, version, org });
  const orgKey = await unwrapOrgKey(
    ctx,
    answer,
    { userId, key: session.key, trustNewMembers: options.trustNewMembers === true },
    org,
    server,
  );
  const remote = await openOrgBlob(orgKey, answer, org, server);
  return {
    server,
    userId,
    version,
    name: answer.name,
    schema: answer.schema,
    remote,
    copyKey: orgKey,
    keyVersion: answer.keyVersion,
  };
}

/**
 * `env pull`: fetches the chosen copy — the personal one, or organisation `org`'s — (signature verified by
 * callApi), refuses a version below the highest this machine has seen of that copy, opens its key (personal: with
 * this machine's wrapping key, else LK_VAULT_NOT_PAIRED; an organisation's: with the account's sharing key),
 * decrypts under syncBlobContext(vault, version[, org]), and merges three ways with the last synced document of
 * that copy so no unpushed local change is lost. Every check runs before anything is written.
 */
export async function pullVault(ctx: Context, options: PullOptions): Promise<PullOutcome> {
  const environment = validateEnvName(options.environment);
  const outputPath = options.output === undefined ? undefined : resolve(ctx.cwd, options.output);
  const sp = await openSyncProject(ctx);
  const { vaultId, project, keystore } = sp;
  const org = chosenOrg(project, options);
  const copy =
    org === undefined
      ? await openPersonalCopy(ctx, sp, options)
      : await openOrgCopy(ctx, vaultId, org, options);
  const { server, userId, version, remote } = copy;

  // A machine that lost (or never had) its vault key takes the personal copy's: it already proved to open with
  // this machine's wrapping key. A machine with its own key keeps it; the merge below works on plaintext. An
  // organisation's key is never the local vault key: the vault store makes one when the vault is first written.
  const account = vaultKeyAccount(vaultId);
  if (copy.wrappedKey !== undefined && (await keystore.get(account)) === null)
    await keystore.set(account, copy.wrappedKey);
  const knownKey = await loadVaultKey(sp.deps, vaultId);
  const stored = knownKey === null ? null : await readSyncBase(ctx.paths.home, vaultId, knownKey, org);
  const base =
    stored !== null && stored.server === server && stored.userId === userId ? stored.document : null;

  const merged = await updateVault(sp.deps, vaultId, (document, exists) => {
    // A vault with no local file (deleted, or never created here) has nothing to keep: take the server's.
    const outcome = exists
      ? mergeDocuments(base ?? {}, document, remote)
      : { document: remote, fromServer: [], keptLocal: [], conflicts: [] };
    for (const key of Object.keys(document)) delete document[key];
    Object.assign(document, outcome.document);
    return { result: { ...outcome, restored: !exists }, changed: true };
  });
  const localKey = knownKey ?? (await loadVaultKey(sp.deps, vaultId)) ?? copy.copyKey;
  // Bound only now that the vault is here: a pull refused above leaves nothing behind, a binding included.
  if (project !== null) await authorizeVaultUse(ctx, { vaultId, project, creates: true });
  await writeSyncBase(
    ctx.paths.home,
    vaultId,
    localKey,
    {
      server,
      userId,
      version,
      document: remote,
      // What a push compares to tell "nothing changed".
      name: copy.name,
      schema: copy.schema,
      // What the next push of the organisation's copy is sealed with.
      ...(org === undefined ? {} : { orgKey: toBase64(copy.copyKey) }),
    },
    ctx.random,
    org,
  );
  await recordSync(ctx.paths.home, server, userId, vaultId, version, ctx.clock.now(), org, copy.keyVersion);
  await recordVersion(ctx, project, version, org);
  let output: string | undefined;
  if (outputPath !== undefined) {
    const values = merged.document[environment];
    if (values === undefined) {
      throw new LatchkeyError("LK_ENV_NOT_FOUND", {
        message: `The vault has no environment named ${environment}; ${outputPath} was not written (the pull itself succeeded).`,
        details: { environment, environments: Object.keys(merged.document).sort() },
      });
    }
    const entries = Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await writeFileAtomic(outputPath, formatDotenv(entries));
    output = outputPath;
  }
  return {
    vaultId,
    server,
    ...(org === undefined ? {} : { org }),
    version,
    restored: merged.restored,
    fromServer: merged.fromServer,
    keptLocal: merged.keptLocal,
    conflicts: merged.conflicts,
    ...(output === undefined ? {} : { output }),
  };
}
