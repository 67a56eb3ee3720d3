import { LatchkeyError, type OrgRole } from "@latchkey/core";
import type { Context } from "../context.js";
import {
  addOrgMember,
  createOrg,
  deleteOrg,
  listOrgs,
  orgMembers,
  setOrgMemberRole,
  trustOrgMember,
  type MembersView,
} from "../org/manage.js";
import { removeOrgMember, type RemovalReport } from "../org/remove.js";
import { rotateOrgVaults, type RotatedVault, type SecretNames, type VaultRotation } from "../org/rotate.js";
import { checkSlug, openOrgSession } from "../org/session.js";
import { printData, printJson, printStatus } from "../output/output.js";
import type { ApiOptions } from "../server/api.js";

/** What every `org` command takes: the server selection, -v and --json. */
export interface OrgCommandOptions extends ApiOptions {
  json: boolean;
  /** `--trust-new-members`, for the commands that wrap vault keys for the members. */
  trustNewMembers?: boolean;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `org create`. */
export async function orgCreate(
  ctx: Context,
  slug: string,
  options: OrgCommandOptions & { name?: string },
): Promise<number> {
  const created = await createOrg(ctx, slug, options);
  if (options.json) printJson(ctx, { org: created.org, memberCount: created.memberCount });
  else
    printStatus(
      ctx,
      `Created organisation ${created.org.slug} (${created.org.name}) on ${created.server}; you are its owner. ` +
        `Add members with \`latchkey org add ${created.org.slug} EMAIL --role member\`.`,
    );
  return 0;
}

/** `org list`. */
export async function orgList(ctx: Context, options: OrgCommandOptions): Promise<number> {
  const orgs = await listOrgs(ctx, options);
  if (options.json) printJson(ctx, { orgs });
  else if (orgs.length === 0) printStatus(ctx, "You are not a member of any organisation.");
  else printData(ctx, orgs.map((o) => `${o.slug}  ${o.role}  ${o.name}`).join("\n"));
  return 0;
}

const PIN_WORDS = {
  yours: "(yours)",
  pinned: "(pinned on this machine)",
  new: "(new: never shared with from this machine)",
  changed: "(CHANGED since pinned: shares refuse it until `latchkey org trust`)",
} as const;

/**
 * The lines of `org members`: this machine's fingerprint, then per member role, full sharing key with its pin
 * state and the vaults that need a share for them.
 */
export function describeMembers(members: MembersView): string {
  const names = new Map(members.vaults.map((v) => [v.vaultId, v.name]));
  const lines = members.members.map((m) => {
    const key =
      m.sharingKeyFingerprint === null
        ? "waiting for a sharing key"
        : `sharing key ${m.sharingKeyFingerprint} ${m.pin === null ? "" : PIN_WORDS[m.pin]}`.trimEnd();
    const pending = m.keys.filter((k) => k.state !== "current");
    const share =
      m.sharingKeyFingerprint === null || !m.needsShare
        ? ""
        : `  needs share: ${pending.map((k) => `${names.get(k.vaultId) ?? k.vaultId} (${k.state})`).join(", ")}`;
    return `${m.email}  ${m.role}  ${key}${share}`;
  });
  const vaults =
    members.vaults.length === 0
      ? "no shared vaults"
      : `vaults: ${members.vaults.map((v) => `${v.name} (${v.vaultId}, v${v.version})`).join(", ")}`;
  return [`This machine's sharing key: ${members.thisMachineFingerprint}`, "", ...lines, "", vaults].join(
    "\n",
  );
}

/** `org members`. */
export async function orgMembersCommand(
  ctx: Context,
  slug: string,
  options: OrgCommandOptions,
): Promise<number> {
  const members = await orgMembers(ctx, slug, options);
  if (options.json) printJson(ctx, members);
  else printData(ctx, describeMembers(members));
  if (!options.json && members.members.some((m) => m.needsShare))
    printStatus(
      ctx,
      `Members marked "needs share" get the vaults named once a maintainer runs \`latchkey env share --org ${members.slug}\` in each vault's project.`,
    );
  if (!options.json && members.members.some((m) => m.pin === "changed"))
    printStatus(
      ctx,
      `A CHANGED key is refused by every share from this machine: compare its fingerprint with the member by another channel than the server, then \`latchkey org trust ${members.slug} EMAIL FINGERPRINT\`.`,
    );
  return 0;
}

/** `org trust`. */
export async function orgTrust(
  ctx: Context,
  slug: string,
  email: string,
  fingerprint: string,
  options: OrgCommandOptions,
): Promise<number> {
  const trusted = await trustOrgMember(ctx, slug, email, fingerprint, options);
  if (options.json)
    printJson(ctx, {
      org: slug,
      email: trusted.member.email,
      userId: trusted.member.userId,
      fingerprint: trusted.fingerprint,
      previous: trusted.previous,
    });
  else
    printStatus(
      ctx,
      trusted.previous === trusted.fingerprint
        ? `${trusted.member.email}'s sharing key ${trusted.fingerprint} was already pinned for ${slug} on this machine.`
        : `Pinned ${trusted.member.email}'s sharing key ${trusted.fingerprint} for ${slug} on this machine${trusted.previous === null ? "" : ` (it replaces ${trusted.previous})`}. Shares from here now wrap for it.`,
    );
  return 0;
}

/** `org add`. */
export async function orgAdd(
  ctx: Context,
  slug: string,
  email: string,
  role: OrgRole,
  options: OrgCommandOptions,
): Promise<number> {
  const member = await addOrgMember(ctx, slug, email, role, options);
  if (options.json) printJson(ctx, { org: slug, member });
  else
    printStatus(
      ctx,
      `Added ${member.email} to ${slug} as ${member.role}. They get its vaults when they have a sharing key ` +
        `(their first organisation command registers one) and a maintainer runs \`latchkey env share --org ${slug}\` in each vault's project.`,
    );
  return 0;
}

/** `org set-role`. */
export async function orgSetRole(
  ctx: Context,
  slug: string,
  email: string,
  role: OrgRole,
  options: OrgCommandOptions,
): Promise<number> {
  const member = await setOrgMemberRole(ctx, slug, email, role, options);
  if (options.json) printJson(ctx, { org: slug, member });
  else printStatus(ctx, `${member.email} is now ${member.role} in ${slug}.`);
  return 0;
}

/** The names of a vault's secrets for people: `default: A, B; prod: C`. */
function describeNames(environments: SecretNames | null): string {
  if (environments === null) return "could not be read here";
  const parts = Object.entries(environments).map(
    ([environment, names]) => `${environment}: ${names.length === 0 ? "(none)" : names.join(", ")}`,
  );
  return parts.length === 0 ? "(no secrets)" : parts.join("; ");
}

/** What a rotation did to a copy's platform connections, for people; null when it had none. */
function describePlatforms(platforms: RotatedVault["platforms"] | null): string | null {
  if (platforms === null || platforms.resealed.length + platforms.dropped.length === 0) return null;
  const parts = [];
  if (platforms.resealed.length > 0)
    parts.push(`credentials re-sealed with the new key: ${platforms.resealed.join(", ")}`);
  if (platforms.dropped.length > 0)
    parts.push(`disconnected, their credential no longer opened: ${platforms.dropped.join(", ")}`);
  return `platform connections ${parts.join("; ")}`;
}

/** The offboarding report, for people. */
export function describeRemoval(report: RemovalReport): string {
  const { removed, org } = report;
  const lines = [`Removed ${removed.email} (${removed.role}) from ${org} on ${report.server}.`];
  for (const policy of report.ciPoliciesDisabled) {
    lines.push(
      `CI pulls they enabled were disabled with them: ${policy.repository} (${policy.provider}) no longer pulls vault ${policy.vaultId}.`,
    );
  }
  if (report.vaults.length === 0) {
    lines.push("They held no key of an organisation vault: there is nothing to rotate.");
    return lines.join("\n");
  }
  lines.push(
    `They could read these secrets (names only), which a new vault key does not take back from what they already pulled:`,
  );
  for (const vault of report.vaults) {
    const pulled =
      vault.lastPulledAt === null
        ? "never pulled"
        : `last pulled ${vault.lastPulledAt} (version ${vault.lastPulledVersion})`;
    const key =
      vault.rotatedVersion !== null
        ? `new vault key as version ${vault.rotatedVersion}`
        : vault.error !== undefined
          ? `NOT ROTATED: ${vault.error.code} ${vault.error.message}`
          : "key not rotated (--no-rotate)";
    lines.push(`  ${vault.name} (${vault.vaultId}, version ${vault.version}): ${pulled}; ${key}`);
    const platforms = describePlatforms(vault.platforms);
    // They could unseal these credentials as well as the secrets: the tokens are to be reissued too.
    if (platforms !== null)
      lines.push(
        `    ${platforms} (they could read these tokens: reissue them at the platform, then connect again)`,
      );
    if (vault.ciPolicy !== null) {
      // The rotation re-escrows the new key for this policy: its repository keeps pulling, so the remover decides.
      lines.push(
        `    CI: ${vault.ciPolicy.repository} (${vault.ciPolicy.provider}, enabled by ${vault.ciPolicy.enabledBy ?? "a deleted account"}) still pulls it, the new key included; if it should not, \`latchkey env ci disable --org ${org}\` in its project.`,
      );
    }
    if (vault.environments === null) lines.push("    secrets: could not be read from this machine");
    else
      for (const [environment, names] of Object.entries(vault.environments))
        lines.push(`    ${environment}: ${names.length === 0 ? "(none)" : names.join(", ")}`);
  }
  lines.push("Change those secrets at their source (revoke and reissue them), then push the new values.");
  return lines.join("\n");
}

/** `org remove`: LK_ORG_ROTATION_INCOMPLETE, after the report, when a vault that was to be rotated was not. */
export async function orgRemove(
  ctx: Context,
  slug: string,
  email: string,
  options: OrgCommandOptions & { rotate: boolean },
): Promise<number> {
  const report = await removeOrgMember(ctx, slug, email, options);
  if (options.json) printJson(ctx, report);
  else printData(ctx, describeRemoval(report));
  const failed = report.vaults.filter((v) => options.rotate && v.rotatedVersion === null);
  if (failed.length > 0) throw rotationIncomplete(slug, failed, `the key ${report.removed.email} held`);
  return 0;
}

/** LK_ORG_ROTATION_INCOMPLETE, after the report: the vaults that kept their key. */
function rotationIncomplete(
  slug: string,
  failed: readonly { name: string | null; vaultId: string }[],
  what: string,
): LatchkeyError {
  return new LatchkeyError("LK_ORG_ROTATION_INCOMPLETE", {
    message: `${plural(failed.length, "vault")} of ${slug} kept ${what}: ${failed.map((v) => v.name ?? v.vaultId).join(", ")}.`,
    hint: `A maintainer who can pull ${failed.length === 1 ? "it" : "them"} runs \`latchkey org rotate-keys ${slug}\`.`,
    details: { org: slug, vaults: failed.map((v) => v.vaultId) },
  });
}

/** `org rotate-keys`: LK_ORG_ROTATION_INCOMPLETE, after the report, when a vault could not be rotated. */
export async function orgRotateKeys(
  ctx: Context,
  slug: string,
  vaultIds: readonly string[],
  options: OrgCommandOptions,
): Promise<number> {
  const org = checkSlug(slug);
  const session = {
    ...(await openOrgSession(ctx, options)),
    trustNewMembers: options.trustNewMembers === true,
  };
  const results: VaultRotation[] = await rotateOrgVaults(
    ctx,
    org,
    session,
    vaultIds.length === 0 ? undefined : vaultIds.map((vaultId) => ({ vaultId, name: null })),
  );
  if (options.json) printJson(ctx, { org, vaults: results });
  else if (results.length === 0) printStatus(ctx, `Organisation ${org} has no shared vaults.`);
  else
    printData(
      ctx,
      results
        .map((r) =>
          r.rotated
            ? [
                `${r.name} (${r.vaultId}): new vault key as version ${r.version}, wrapped for ${plural(r.sharedWith.length, "member")}; secrets ${describeNames(r.environments)}`,
                describePlatforms(r.platforms),
              ]
                .filter((part) => part !== null)
                .join("; ")
            : `${r.name ?? r.vaultId} (${r.vaultId}): NOT ROTATED: ${r.error.code} ${r.error.message}`,
        )
        .join("\n"),
    );
  const failed = results.filter((r) => !r.rotated);
  if (failed.length > 0) throw rotationIncomplete(org, failed, "their vault key");
  return 0;
}

/** `org delete`. */
export async function orgDelete(
  ctx: Context,
  slug: string,
  options: OrgCommandOptions & { confirm?: string },
): Promise<number> {
  const deleted = await deleteOrg(ctx, slug, options);
  if (options.json)
    printJson(ctx, {
      slug: deleted.slug,
      membersRemoved: deleted.membersRemoved,
      vaultsRemoved: deleted.vaultsRemoved,
    });
  else
    printStatus(
      ctx,
      `Deleted organisation ${deleted.slug} on ${deleted.server}: ${plural(deleted.membersRemoved, "member")} and ${plural(deleted.vaultsRemoved, "shared vault")} removed.`,
    );
  return 0;
}
