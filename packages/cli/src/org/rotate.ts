// Rotating the vault key of an organisation's copy (docs/teams.md, "Removing a member"): the copy as the server
// has it is opened with this machine's sharing key, sealed again with a new vault key as the next version, and
// shared: the new key wrapped for every member with a registered sharing key, which replaces the whole key set.
// The copy's platform connections' credentials, sealed with the old key, go in the same share sealed again with the
// new one (copy.ts sendShare), so the connections keep working and the old key opens none of them.
// One versioned share per vault, so a push that lands in between makes it start again from the newer version;
// nothing of the local vault or its sync state is touched (members, this machine included, pull the new version)
// but the highest key version this machine has had of the copy, so that the old key cannot be replayed to it.
import {
  LatchkeyError,
  isLatchkeyError,
  orgVaultsResponseSchema,
  syncBlobContext,
  toBase64,
  utf8Encode,
  type OrgPullResponse,
  type VaultDocument,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { sealEnvelopeSync } from "../crypto/native.js";
import { callApi } from "../server/api.js";
import { recordKeyVersion } from "../sync/state.js";
import { fetchOrgCopy, openOrgBlob, orgPath, sendShare, unwrapOrgKey } from "./copy.js";
import type { OrgSession } from "./session.js";

/** How many times a rotation starts again when a push lands between its fetch and its share. */
export const ROTATE_ATTEMPTS = 3;

/** The names (never the values) of a vault's secrets, by environment, each list sorted. */
export type SecretNames = Record<string, string[]>;

/** The names of `document`'s secrets by environment. */
export function secretNames(document: VaultDocument): SecretNames {
  const names: SecretNames = {};
  for (const environment of Object.keys(document).sort())
    names[environment] = Object.keys(document[environment] ?? {}).sort();
  return names;
}

/** An organisation copy, fetched and opened. */
interface Opened {
  readonly copy: OrgPullResponse;
  readonly document: VaultDocument;
  /** The copy's vault key, which opened it. */
  readonly key: Uint8Array;
}

/**
 * Fetches `org`'s copy of `vaultId` and opens it with the session's sharing key, once its sharer and key version
 * pass (copy.ts unwrapOrgKey).
 */
export async function openOrgVault(
  ctx: Context,
  org: string,
  vaultId: string,
  session: OrgSession,
): Promise<Opened> {
  const { data: copy, server } = await fetchOrgCopy(ctx, org, vaultId, session.api);
  const orgKey = await unwrapOrgKey(ctx, copy, session, org, server);
  return { copy, document: await openOrgBlob(orgKey, copy, org, server), key: orgKey };
}

/** A rotated copy. */
export interface RotatedVault {
  readonly vaultId: string;
  readonly name: string;
  /** The version the rotation read, whose secrets `environments` names. */
  readonly fromVersion: number;
  /** The version sealed with the new key. */
  readonly version: number;
  readonly environments: SecretNames;
  /** Emails of the members the new key was wrapped for. */
  readonly sharedWith: string[];
  /** Emails of the members with no sharing key yet. */
  readonly waiting: string[];
  /**
   * The copy's platform connections, by name: those whose credential was sealed again with the new key, and those
   * whose credential the old key did not open (already unreadable), which the share deleted.
   */
  readonly platforms: { readonly resealed: string[]; readonly dropped: string[] };
}

/**
 * Gives `org`'s copy of `vaultId` a new vault key: fetch and open it, seal the same secrets with a fresh key as
 * the next version, and share it with every member's current sharing key and the copy's platform credentials
 * sealed again with the new key (a connection made or disconnected meanwhile: copy.ts sendShare lists them again).
 * A push between the fetch and the share (LK_VAULT_CONFLICT) makes it start again, {@link ROTATE_ATTEMPTS} times in
 * all. Needs the maintainer role and a key of the copy wrapped for this machine's sharing key.
 */
export async function rotateOrgVault(
  ctx: Context,
  org: string,
  vaultId: string,
  session: OrgSession,
): Promise<RotatedVault> {
  for (let attempt = 1; ; attempt++) {
    const { copy, document, key } = await openOrgVault(ctx, org, vaultId, session);
    const vaultKey = ctx.random.bytes(32);
    const version = copy.version + 1;
    const sealed = sealEnvelopeSync(
      vaultKey,
      utf8Encode(JSON.stringify(document)),
      syncBlobContext(vaultId, version, org),
      (n) => ctx.random.bytes(n),
    );
    try {
      const { answer, members, platforms } = await sendShare(
        ctx,
        {
          org,
          vaultId,
          vaultKey,
          encryptedBlob: toBase64(sealed),
          name: copy.name,
          // No schema: the copy keeps the envSchema it has.
          baseVersion: copy.version,
          previousKey: key,
        },
        { userId: session.userId, key: session.key, trustNewMembers: session.trustNewMembers === true },
        session.api,
      );
      if (answer.data.vaultId.toLowerCase() !== vaultId.toLowerCase() || answer.data.version !== version) {
        throw new LatchkeyError("LK_SERVER_ERROR", {
          message: `The server acknowledged the new key of organisation ${org}'s copy of vault ${vaultId} with an answer that is not the acknowledgement of version ${version}.`,
          details: { server: answer.server, org, vaultId },
        });
      }
      await recordKeyVersion(ctx.paths.home, answer.server, answer.userId, vaultId, org, version);
      return {
        vaultId,
        name: copy.name,
        fromVersion: copy.version,
        version,
        environments: secretNames(document),
        sharedWith: members.sharedWith,
        waiting: members.waiting,
        platforms: { resealed: platforms?.resealed ?? [], dropped: platforms?.dropped ?? [] },
      };
    } catch (error) {
      if (!isLatchkeyError(error, "LK_VAULT_CONFLICT") || attempt >= ROTATE_ATTEMPTS) throw error;
    }
  }
}

/** What `org rotate-keys` did to each vault: rotated, or why not. */
export type VaultRotation =
  | ({ readonly rotated: true } & RotatedVault)
  | {
      readonly rotated: false;
      readonly vaultId: string;
      readonly name: string | null;
      readonly error: { readonly code: string; readonly message: string };
    };

/**
 * Rotates each of `vaultIds` (default: every vault of the organisation) in turn; a vault that cannot be rotated
 * (no key for this machine, the role too weak, a conflict that kept coming back) is reported with its error and
 * the others still go ahead.
 */
export async function rotateOrgVaults(
  ctx: Context,
  org: string,
  session: OrgSession,
  vaults?: readonly { vaultId: string; name: string | null }[],
): Promise<VaultRotation[]> {
  const targets =
    vaults ??
    (
      await callApi(
        ctx,
        { method: "GET", path: `${orgPath(org)}/vaults`, answer: orgVaultsResponseSchema },
        session.api,
      )
    ).data.vaults.map((v) => ({ vaultId: v.vaultId, name: v.name }));
  const results: VaultRotation[] = [];
  for (const target of targets) {
    try {
      results.push({ rotated: true, ...(await rotateOrgVault(ctx, org, target.vaultId, session)) });
    } catch (error) {
      if (!isLatchkeyError(error)) throw error;
      results.push({
        rotated: false,
        vaultId: target.vaultId,
        name: target.name,
        error: { code: error.code, message: error.message },
      });
    }
  }
  return results;
}
