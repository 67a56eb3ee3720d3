// `latchkey org remove SLUG EMAIL` (docs/teams.md, "Removing a member"): the server drops the membership and the
// member's wrapped keys (step-up `org:member:remove`, typed on a terminal), and answers which organisation vaults
// they held a key for, with their last pull of each. A key they held may have been kept, so unless --no-rotate
// each of those vaults then gets a new vault key (rotate.ts): whatever they kept opens nothing pushed from then on.
// The offboarding report names, per vault and environment, the secrets they could read — names, never values —
// so the people removing them know what else to change at its source.
import {
  LatchkeyError,
  ORG_SHARING_ROLE,
  isLatchkeyError,
  orgRoleAtLeast,
  orgMemberRemoveResponseSchema,
  type OrgMember,
  type OrgRemovedCiPolicy,
  type OrgRemovedVault,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { mintStepUpProof } from "../server/step-up.js";
import { orgPath } from "./copy.js";
import { unpinOrgKey } from "./pins.js";
import { openOrgVault, rotateOrgVault, secretNames, type RotatedVault, type SecretNames } from "./rotate.js";
import { checkSlug, fetchMembers, memberByEmail, openOrgSession, type OrgSession } from "./session.js";

/** One vault of the offboarding report. */
export interface OffboardedVault {
  readonly vaultId: string;
  readonly name: string;
  /** The version when they were removed: what their key opened. */
  readonly version: number;
  /** When they last pulled it (their first pull of the newest version they pulled); null if never. */
  readonly lastPulledAt: string | null;
  readonly lastPulledVersion: number | null;
  /** The CI policy left on the organisation's copy (another member enabled it); null when none. */
  readonly ciPolicy: NonNullable<OrgRemovedVault["ciPolicy"]> | null;
  /**
   * The names of the secrets they could read, by environment (read at the version the rotation started from, or
   * at the current one with --no-rotate); null when this machine could not open the vault.
   */
  readonly environments: SecretNames | null;
  /** The version sealed with the new key; null when not rotated (--no-rotate, or it failed: see `error`). */
  readonly rotatedVersion: number | null;
  /** The copy's platform connections the rotation re-sealed and dropped, by name; null when not rotated. */
  readonly platforms: RotatedVault["platforms"] | null;
  /** Why the vault could not be rotated or read. */
  readonly error?: { readonly code: string; readonly message: string };
}

/** What `org remove` did. */
export interface RemovalReport {
  readonly org: string;
  readonly server: string;
  readonly removed: OrgMember;
  /** Whether the vaults' keys were to be rotated (no --no-rotate). */
  readonly rotate: boolean;
  readonly vaults: OffboardedVault[];
  /** The CI policies they had enabled on the organisation's copies, which the server deleted with them. */
  readonly ciPoliciesDisabled: OrgRemovedCiPolicy[];
}

/** Options of `org remove`. */
export interface RemoveOptions extends ApiOptions {
  /** Leave the vault keys as they are (the member's keys are dropped on the server all the same). */
  rotate: boolean;
  /** `--trust-new-members` for the rotations' shares. */
  trustNewMembers?: boolean;
}

/**
 * Removes `email` from `slug` and, unless `rotate` is false, gives every vault they held a key for a new vault
 * key. The removal needs a step-up proof (a terminal to type the password on). A vault this machine cannot
 * rotate (no key of its own there, or a push kept landing first) is reported with its error; the removal itself
 * stands.
 */
export async function removeOrgMember(
  ctx: Context,
  slug: string,
  email: string,
  options: RemoveOptions,
): Promise<RemovalReport> {
  const org = checkSlug(slug);
  const opened = await openOrgSession(ctx, options);
  const members = await fetchMembers(ctx, org, opened.api);
  const target = memberByEmail(members.members, org, email);
  const session: OrgSession = {
    ...opened,
    trustNewMembers: options.trustNewMembers === true,
    // Checked on the list read before the removal: a plain member removed gets no such standing.
    ...(orgRoleAtLeast(target.role, ORG_SHARING_ROLE) ? { removedSharer: target.userId } : {}),
  };
  if (target.userId.toLowerCase() === session.userId.toLowerCase() && options.rotate) {
    throw new LatchkeyError("LK_USAGE", {
      message: `You are removing yourself from ${org}: once you are out, you cannot give its vaults new keys.`,
      hint: `Run it with --no-rotate, then ask a maintainer of ${org} to run \`latchkey org rotate-keys ${org}\`.`,
    });
  }
  const proof = await mintStepUpProof(ctx, "org:member:remove", session.api);
  const removal = await callApi(
    ctx,
    {
      method: "DELETE",
      path: `${orgPath(org)}/members/${encodeURIComponent(target.userId)}`,
      answer: orgMemberRemoveResponseSchema,
      stepUpProof: proof.proof,
    },
    { ...session.api, server: proof.server },
  );
  const vaults: OffboardedVault[] = [];
  try {
    for (const held of removal.data.vaults) {
      vaults.push(await offboard(ctx, org, held, session, options.rotate));
    }
  } finally {
    // After the rotations, which open the keys they wrapped by this pin: from now on their key is nobody's here.
    await unpinOrgKey(ctx, removal.server, org, target.userId);
  }
  return {
    org,
    server: removal.server,
    removed: removal.data.removed,
    rotate: options.rotate,
    vaults,
    ciPoliciesDisabled: removal.data.ciPoliciesDisabled ?? [],
  };
}

/** One vault of the report: rotated (and its names read on the way), or only read with --no-rotate. */
async function offboard(
  ctx: Context,
  org: string,
  held: OrgRemovedVault,
  session: OrgSession,
  rotate: boolean,
): Promise<OffboardedVault> {
  const facts = {
    vaultId: held.vaultId,
    name: held.name,
    version: held.version,
    lastPulledAt: held.lastPulledAt,
    lastPulledVersion: held.lastPulledVersion,
    ciPolicy: held.ciPolicy ?? null,
  };
  try {
    if (rotate) {
      const rotated = await rotateOrgVault(ctx, org, held.vaultId, session);
      return {
        ...facts,
        environments: rotated.environments,
        rotatedVersion: rotated.version,
        platforms: rotated.platforms,
      };
    }
    const { document } = await openOrgVault(ctx, org, held.vaultId, session);
    return { ...facts, environments: secretNames(document), rotatedVersion: null, platforms: null };
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    return {
      ...facts,
      environments: null,
      rotatedVersion: null,
      platforms: null,
      error: { code: error.code, message: error.message },
    };
  }
}
