import {
  LatchkeyError,
  formatDotenv,
  fromBase64,
  pullResponseSchema,
  syncBlobContext,
  utf8Decode,
} from "@latchkey/core";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { readVaultDocument } from "../fast-readers.js";
import { openEnvelopeCli } from "../crypto/native.js";
import { writeFileAtomic } from "../fs/safe-file.js";
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
import { openSyncProject, recordPersonalVersion } from "./project.js";
import { vaultPath } from "./push.js";
import { getSyncEntry, readSyncBase, recordSync, writeSyncBase } from "./state.js";

/** Options of `env pull`. */
export interface PullOptions {
  /** The environment `output` gets (default `default`). */
  environment: string;
  /** Also write that environment as a dotenv file (mode 0600). */
  output?: string;
  profile?: string;
  server?: string;
  verbose?: number;
}

/** What a pull did; key names as `environment/KEY`, never values. */
export interface PullOutcome {
  vaultId: string;
  server: string;
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

/**
 * `env pull`: fetches the server's copy (signature verified by callApi), refuses a version below the highest this
 * machine has seen, unwraps the key with this machine's wrapping key (else LK_VAULT_NOT_PAIRED), decrypts under
 * syncBlobContext(vault, version), and merges three ways with the last synced document so no unpushed local
 * change is lost. Every check runs before anything is written.
 */
export async function pullVault(ctx: Context, options: PullOptions): Promise<PullOutcome> {
  const environment = validateEnvName(options.environment);
  const outputPath = options.output === undefined ? undefined : resolve(ctx.cwd, options.output);
  const sp = await openSyncProject(ctx);
  const { vaultId, project, keystore } = sp;
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
  const entry = await getSyncEntry(ctx.paths.home, server, userId, vaultId);
  if (entry !== null && version < entry.highestVersion) {
    throw new LatchkeyError("LK_VAULT_ROLLBACK", {
      message: `The server offered version ${version} of vault ${vaultId}, but this machine has already seen version ${entry.highestVersion}. Nothing was written.`,
      details: { vaultId, server, offered: version, highestSeen: entry.highestVersion },
    });
  }
  const remoteKey = await tryUnwrapVaultKey(keystore, vaultId, answer.wrappedKey);
  if (remoteKey === null) {
    throw serverCopyNotPaired({
      vaultId,
      server,
      version,
      syncedVersion: entry?.syncedVersion ?? null,
      outcome: "Nothing was written.",
    });
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
  const remote = parseRemoteDocument(plaintext, vaultId, server);

  // A machine that lost (or never had) its vault key takes the server's: it already proved to open with this
  // machine's wrapping key. A machine with its own key keeps it; the merge below works on plaintext.
  const account = vaultKeyAccount(vaultId);
  if ((await keystore.get(account)) === null) await keystore.set(account, answer.wrappedKey);
  const localKey = (await loadVaultKey(sp.deps, vaultId)) ?? remoteKey;
  const stored = await readSyncBase(ctx.paths.home, vaultId, localKey);
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
      name: answer.name,
      schema: answer.schema,
    },
    ctx.random,
  );
  await recordSync(ctx.paths.home, server, userId, vaultId, version, ctx.clock.now());
  await recordPersonalVersion(ctx, project, version);

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
    version,
    restored: merged.restored,
    fromServer: merged.fromServer,
    keptLocal: merged.keptLocal,
    conflicts: merged.conflicts,
    ...(output === undefined ? {} : { output }),
  };
}
