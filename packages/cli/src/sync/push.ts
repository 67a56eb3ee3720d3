import {
  LatchkeyError,
  fromBase64,
  isLatchkeyError,
  orgVaultsResponseSchema,
  pullResponseSchema,
  syncBlobContext,
  toBase64,
  utf8Encode,
  type OrgPushRequest,
  type PushRequest,
  type PushResponse,
} from "@latchkey/core";
import { sendVersion } from "../ci/escrow.js";
import type { Context } from "../context.js";
import { sealEnvelopeSync } from "../crypto/native.js";
import { checkCurrentOrgKey, listOrgConnections, orgPath, orgVaultPath, sendShare } from "../org/copy.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";
import { requireServerSession } from "../server/session.js";
import { ensureSharingKey, type SharingKey } from "../sharing/sharing-key.js";
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
  chosenOrg,
  openSyncProject,
  orgFlag,
  pushName,
  pushSchema,
  recordedVersion,
  recordVersion,
  type CopyChoice,
  type SyncProject,
} from "./project.js";
import { getSyncEntry, readSyncBase, recordSync, writeSyncBase, type SyncBase } from "./state.js";

/** Options of `env push`: which copy (`org`, `personal`: see chosenOrg), and where. */
export interface PushOptions extends CopyChoice {
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
  /** The organisation whose copy was pushed; absent for the personal copy. */
  org?: string;
  name: string;
  baseVersion: number;
  /** The new version; when nothing was pushed, the version the vault is still at. */
  version: number;
  environments: number;
  /** False when nothing had changed since the last sync, so no request was made. */
  pushed: boolean;
}

/** Options of `env share`: an organisation's copy always (`--org`, else latchkey.json's `org`). */
export interface ShareOptions extends PushOptions {
  /** Seal with a new organisation vault key rather than the one the copy has. */
  newKey?: boolean;
  /** `--trust-new-members`: wrap for members this machine never saw without asking (org/pins.ts). */
  trustNewMembers?: boolean;
}

/** What a share did: a push of the organisation's copy whose key set became the members' current keys. */
export interface ShareOutcome extends PushOutcome {
  org: string;
  /** Whether the copy was sealed with a new organisation vault key (its first share, or --new-key). */
  newKey: boolean;
  /** Emails of the members whose sharing key the vault key was wrapped for. */
  sharedWith: string[];
  /** Emails of the members who have no sharing key yet: shared with at the next share once they have one. */
  waiting: string[];
  /**
   * With a new key for a copy that had one: its platform connections whose credential was re-sealed with the new
   * key, and those whose credential the old key did not open (deleted by the share), by name.
   */
  platforms?: { resealed: string[]; dropped: string[] };
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
  // A base that lost its organisation key cannot tell: this push would be refused for want of one anyway.
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

/** Whether `org` has a copy of `vaultId` now (`GET /orgs/:slug/vaults`). */
async function orgCopyListed(ctx: Context, org: string, vaultId: string, api: ApiOptions): Promise<boolean> {
  const listed = await callApi(
    ctx,
    { method: "GET", path: `${orgPath(org)}/vaults`, answer: orgVaultsResponseSchema },
    api,
  );
  return listed.data.vaults.some((v) => v.vaultId.toLowerCase() === vaultId.toLowerCase());
}

/** LK_ORG_VAULT_NOT_SYNCED: this machine holds no organisation vault key at the version a push is based on. */
function orgCopyNotSynced(vaultId: string, org: string, baseVersion: number): LatchkeyError {
  return new LatchkeyError("LK_ORG_VAULT_NOT_SYNCED", {
    message:
      baseVersion === 0
        ? `This machine has not pulled organisation ${org}'s copy of vault ${vaultId}, so it holds no key to seal a push with. Nothing was sent.`
        : `This machine has no record of organisation ${org}'s vault key at version ${baseVersion} of vault ${vaultId} (its merge base is gone or was written before it kept one). Nothing was sent.`,
    hint:
      baseVersion === 0
        ? `Run \`latchkey env pull --org ${org}\` first. If the organisation has no copy yet, a maintainer creates it with \`latchkey env share --org ${org}\`.`
        : `Run \`latchkey env pull --org ${org}\`, then push again.`,
    details: { vaultId, org, baseVersion },
  });
}

/**
 * `env push` and `env share`: seals the whole vault (every environment) under syncBlobContext(vault, base + 1
 * [, org]) and sends it as the next version of the chosen copy:
 * - the personal copy: sealed with the local vault key, sent with it as this machine wraps it;
 * - an organisation's (`org`, after ensureSharingKey): sealed with the organisation's vault key this machine got
 *   at its last sync of that copy (kept in its merge base); the members' wrapped keys stay as they are;
 * - `share`: an organisation's copy whose key set becomes the vault key wrapped for every member with a sharing
 *   key, sealed with the copy's key, a new one for its first version or with `newKey`.
 * A copy with CI pulls enabled whose escrow does not open the new version (a new key) is sent again with the
 * escrow of the key it is sealed with (ci/escrow.ts sendVersion).
 * The base is the lower of latchkey.json's recorded version of that copy and this machine's last synced version,
 * so a checkout that has not seen a newer version, or a latchkey.json carried in by git from elsewhere, is
 * refused (409) rather than overwriting what it never merged.
 */
async function pushCopy(
  ctx: Context,
  options: ShareOptions,
  share: boolean,
): Promise<PushOutcome | ShareOutcome> {
  const sp = await openSyncProject(ctx);
  const { vaultId, project, keystore } = sp;
  const org = chosenOrg(project, options);
  if (share && org === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        "`latchkey env share` shares with an organisation: name it with --org SLUG (or `org` in latchkey.json).",
      hint: "List your organisations with `latchkey org list`.",
    });
  }
  const { document, exists } = await readVaultWithPresence(sp.deps, vaultId);
  const wrappedKey = await keystore.get(vaultKeyAccount(vaultId));
  const vaultKey = await loadVaultKey(sp.deps, vaultId);
  if (!exists || wrappedKey === null || vaultKey === null) {
    await refuseVaultSyncedElsewhere(keystore, project, vaultId);
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `Vault ${vaultId} has no secrets on this machine: there is nothing to ${share ? "share" : "push"}.`,
      hint: `Set secrets with \`latchkey env set\`, or fetch the server's copy with \`latchkey env pull${orgFlag(org)}\`.`,
    });
  }
  checkVaultSize(document, "push");
  const serverOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const active = await requireServerSession(ctx, { ...serverOptions, verbose: options.verbose ?? 0 });
  const server = active.selection.server;
  const api = { ...serverOptions, server, verbose: options.verbose ?? 0 };
  const sharing: SharingKey | null = org === undefined ? null : await ensureSharingKey(ctx, api);
  const entry = await getSyncEntry(ctx.paths.home, server, active.session.subject, vaultId, org);
  let baseVersion = Math.min(recordedVersion(project, org) ?? 0, entry?.syncedVersion ?? 0);
  const schema = pushSchema(ctx, project);
  const name = pushName(ctx, project);
  const userId = active.session.subject;
  const base = baseVersion > 0 ? await readSyncBase(ctx.paths.home, vaultId, vaultKey, org) : null;
  if (
    !share &&
    options.force !== true &&
    unchangedSince(base, { server, userId, baseVersion, document, name }, schema)
  ) {
    const environments = Object.keys(document).length;
    return {
      vaultId,
      server,
      ...(org === undefined ? {} : { org }),
      name,
      baseVersion,
      version: baseVersion,
      environments,
      pushed: false,
    };
  }
  // The key the new version is sealed with: the organisation's as of the base, unless the copy starts (or is
  // re-keyed) with this share. A copy the organisation does not have now starts afresh: either it never had one,
  // or it was unshared, and then its old key was wrapped for whoever was a member before.
  const unshared = share && org !== undefined && !(await orgCopyListed(ctx, org, vaultId, api));
  const newKey = share && (unshared || baseVersion === 0 || options.newKey === true);
  let sealingKey = vaultKey;
  // A new key for a copy that has one (--new-key): its platform credentials are re-sealed in the share.
  let previousKey: Uint8Array | undefined;
  if (org !== undefined) {
    const known =
      base !== null && base.version === baseVersion && base.server === server ? base.orgKey : undefined;
    if (newKey) sealingKey = ctx.random.bytes(32);
    else if (known === undefined) throw orgCopyNotSynced(vaultId, org, baseVersion);
    else sealingKey = fromBase64(known);
    if (newKey && !unshared && known !== undefined) {
      previousKey = fromBase64(known);
      // The share re-seals the copy's platform credentials from this key and drops each it does not open: a key
      // that is not the copy's (a damaged record) would drop every connection, so it must open the copy first.
      await checkCurrentOrgKey(
        ctx,
        { org, vaultId },
        previousKey,
        {
          what: "re-seal the copy's platform credentials for its new key (no connection was dropped)",
          then: `run \`latchkey env share --org ${org} --new-key\``,
        },
        api,
      );
    } else if (newKey && !unshared && baseVersion > 0) {
      // No key here opens the copy's platform credentials: a new key would leave them sealed with one nobody is
      // given any more, so every push from them would fail. A copy without connections loses nothing.
      const connections = await listOrgConnections(ctx, org, vaultId, api);
      if (connections.length > 0)
        throw new LatchkeyError("LK_ORG_VAULT_NOT_SYNCED", {
          message: `This machine has no record of organisation ${org}'s vault key at version ${baseVersion} of vault ${vaultId}, so it cannot re-seal the copy's platform connections (${connections.map((c) => c.name).join(", ")}) for a new key. Nothing was sent.`,
          hint: `Run \`latchkey env pull --org ${org}\`, then \`latchkey env share --org ${org} --new-key\` again.`,
          details: { vaultId, org, baseVersion },
        });
    }
  }
  const seal = (from: number): string =>
    toBase64(
      sealEnvelopeSync(
        sealingKey,
        utf8Encode(JSON.stringify(document)),
        syncBlobContext(vaultId, from + 1, org),
        (n) => ctx.random.bytes(n),
      ),
    );
  let version = baseVersion + 1;
  let encryptedBlob = seal(baseVersion);
  let result: ApiResult<PushResponse>;
  let shared: { sharedWith: string[]; waiting: string[] } | null = null;
  let platforms: ShareOutcome["platforms"];
  try {
    if (org === undefined) {
      const body: PushRequest = {
        encryptedBlob,
        wrappedKey,
        ...(schema === undefined ? {} : { schema }),
        name,
        baseVersion,
      };
      result = await sendVersion(
        ctx,
        { path: vaultPath(vaultId), body, sealedWith: sealingKey, vaultId },
        api,
      );
    } else if (share) {
      const send = () =>
        sendShare(
          ctx,
          {
            org,
            vaultId,
            vaultKey: sealingKey,
            encryptedBlob,
            name,
            ...(schema === undefined ? {} : { schema }),
            baseVersion,
            ...(previousKey === undefined ? {} : { previousKey }),
          },
          { userId, key: sharing!, trustNewMembers: options.trustNewMembers === true },
          api,
        );
      let sent;
      try {
        sent = await send();
      } catch (error) {
        const current = isLatchkeyError(error, "LK_VAULT_CONFLICT")
          ? error.details?.currentVersion
          : undefined;
        if (!unshared || typeof current !== "number" || current === baseVersion) throw error;
        // An unshared copy keeps its last version, so that no member ever sees its versions go back: a new share
        // continues from it.
        baseVersion = current;
        version = current + 1;
        encryptedBlob = seal(current);
        sent = await send();
      }
      result = sent.answer;
      shared = sent.members;
      if (sent.platforms !== null)
        platforms = { resealed: sent.platforms.resealed, dropped: sent.platforms.dropped };
    } else {
      const body: OrgPushRequest = {
        encryptedBlob,
        ...(schema === undefined ? {} : { schema }),
        name,
        baseVersion,
      };
      result = await sendVersion(
        ctx,
        { path: orgVaultPath(org, vaultId), body, sealedWith: sealingKey, vaultId, org },
        api,
      );
    }
  } catch (error) {
    if (!isLatchkeyError(error, "LK_VAULT_CONFLICT")) throw error;
    // A machine that never synced this vault may be one that cannot open the server's copy: pulling cannot help it.
    if (entry === null && org === undefined)
      await refuseUnopenableServerCopy(ctx, sp, { ...serverOptions, server }, options);
    const current = error.details?.currentVersion;
    const copy = org === undefined ? `vault ${vaultId}` : `organisation ${org}'s copy of vault ${vaultId}`;
    throw new LatchkeyError("LK_VAULT_CONFLICT", {
      message:
        typeof current === "number"
          ? `The server has version ${current} of ${copy}; this ${share ? "share" : "push"} was based on version ${baseVersion}. Nothing was overwritten.`
          : `The server has a newer version of ${copy} than version ${baseVersion}, which this ${share ? "share" : "push"} was based on. Nothing was overwritten.`,
      hint: `Run \`latchkey env pull${orgFlag(org)}\` to reconcile the server's version with your changes, then \`latchkey env ${share ? "share" : "push"}${orgFlag(org)}\` again.`,
      details: {
        vaultId,
        baseVersion,
        ...(org === undefined ? {} : { org }),
        ...(typeof current === "number" ? { currentVersion: current } : {}),
      },
      cause: error,
    });
  }
  if (!acknowledges(result.data, vaultId, version)) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server acknowledged the ${share ? "share" : "push"} of vault ${vaultId} with an answer that is not the acknowledgement of version ${version}; nothing was recorded as synced.`,
      hint: `Run \`latchkey env pull${orgFlag(org)}\` to see what the server has, then push again.`,
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
      ...(org === undefined ? {} : { orgKey: toBase64(sealingKey) }),
    },
    ctx.random,
    org,
  );
  // A share makes the key version its own version: this machine has had that key, an older one is a rollback.
  await recordSync(
    ctx.paths.home,
    server,
    result.userId,
    vaultId,
    version,
    ctx.clock.now(),
    org,
    share ? version : undefined,
  );
  await recordVersion(ctx, project, version, org);
  const outcome: PushOutcome = {
    vaultId,
    server,
    ...(org === undefined ? {} : { org }),
    name,
    baseVersion,
    version,
    environments: Object.keys(document).length,
    pushed: true,
  };
  if (!share || org === undefined || shared === null) return outcome;
  return {
    ...outcome,
    org,
    newKey,
    sharedWith: shared.sharedWith,
    waiting: shared.waiting,
    ...(platforms === undefined ? {} : { platforms }),
  };
}

/** `env push`: the next version of the personal copy, or of an organisation's (see {@link pushCopy}). */
export async function pushVault(ctx: Context, options: PushOptions = {}): Promise<PushOutcome> {
  return pushCopy(ctx, options, false);
}

/**
 * `env share`: the next version of an organisation's copy (the first one creates it), whose vault key is wrapped
 * for every member with a registered sharing key, replacing every key the copy had; members added or re-keyed
 * since the last share get access by it. Needs the maintainer role.
 */
export async function shareVault(ctx: Context, options: ShareOptions = {}): Promise<ShareOutcome> {
  return (await pushCopy(ctx, options, true)) as ShareOutcome;
}
