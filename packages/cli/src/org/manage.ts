// The organisation commands that change or read membership (docs/teams.md, "Organisations and roles"): create,
// list, members, add, set-role and delete. Each opens an organisation session first (session.ts: the server
// session, then ensureSharingKey), checks what it can before the first request, and leaves every rule to the
// server's one permission table: a role too weak is the server's LK_ORG_FORBIDDEN, said in the command's words.
// Add, set-role and delete change who can read the organisation's vaults (or end them), so each needs a step-up
// proof typed on a terminal (server/step-up.ts): a stolen session token alone cannot make them.
import {
  LatchkeyError,
  isLatchkeyError,
  orgDeleteResponseSchema,
  orgListResponseSchema,
  orgMemberResponseSchema,
  orgResponseSchema,
  type OrgCreateRequest,
  type OrgDeleteResponse,
  type OrgMember,
  type OrgMemberAddRequest,
  type OrgMemberDetail,
  type OrgMemberRoleRequest,
  type OrgMembersResponse,
  type OrgResponse,
  type OrgRole,
  type OrgSummary,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { mintStepUpProof } from "../server/step-up.js";
import { orgPath } from "./copy.js";
import { pinOrgKeys, pinState, pinsOf, readOrgKeys, type PinState } from "./pins.js";
import { checkSlug, fetchMembers, memberByEmail, openOrgSession } from "./session.js";

/** LK_ORG_FORBIDDEN for `what` in `org`, where the server's message would be lost (error bodies are not shown). */
function forbidden(error: unknown, org: string, what: string, least: OrgRole): unknown {
  if (!isLatchkeyError(error, "LK_ORG_FORBIDDEN")) return error;
  return new LatchkeyError("LK_ORG_FORBIDDEN", {
    message: `Your role in organisation ${org} does not allow you to ${what} (it needs ${least} or stronger).`,
    details: { org, ...(error.details ?? {}) },
    cause: error,
  });
}

/** `org create SLUG [--name NAME]`: a new organisation whose only member, its owner, is you. */
export async function createOrg(
  ctx: Context,
  slug: string,
  options: ApiOptions & { name?: string },
): Promise<OrgResponse & { server: string }> {
  const org = checkSlug(slug);
  const session = await openOrgSession(ctx, options);
  const body: OrgCreateRequest = { slug: org, ...(options.name === undefined ? {} : { name: options.name }) };
  try {
    const created = await callApi(
      ctx,
      { method: "POST", path: "/orgs", body, answer: orgResponseSchema },
      session.api,
    );
    return { ...created.data, server: created.server };
  } catch (error) {
    if (!isLatchkeyError(error, "LK_ORG_EXISTS")) throw error;
    throw new LatchkeyError("LK_ORG_EXISTS", {
      message: `An organisation with the slug ${org} already exists on ${session.api.server}.`,
      details: { org },
      cause: error,
    });
  }
}

/** `org list`: your organisations, with your role in each. */
export async function listOrgs(ctx: Context, options: ApiOptions): Promise<OrgSummary[]> {
  const session = await openOrgSession(ctx, options);
  const listed = await callApi(
    ctx,
    { method: "GET", path: "/orgs", answer: orgListResponseSchema },
    session.api,
  );
  return [...listed.data.orgs].sort((a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0));
}

/** A member as `org members` shows them: with how their key stands against this machine's pins. */
export interface MemberView extends OrgMemberDetail {
  /** "yours" for the caller; null while waiting for a sharing key. */
  readonly pin: PinState | "yours" | null;
}

/** What `org members` shows. */
export interface MembersView extends Omit<OrgMembersResponse, "members"> {
  readonly members: MemberView[];
  /** The full fingerprint of this machine's sharing key: what a member reads to a maintainer for `org trust`. */
  readonly thisMachineFingerprint: string;
}

/**
 * `org members SLUG`: every member with role, email, sharing key, per vault the state of their key, and whether
 * this machine pinned that key (org/pins.ts).
 */
export async function orgMembers(ctx: Context, slug: string, options: ApiOptions): Promise<MembersView> {
  const org = checkSlug(slug);
  const session = await openOrgSession(ctx, options);
  const listing = await fetchMembers(ctx, org, session.api);
  const pins = pinsOf(await readOrgKeys(ctx), session.api.server, org);
  const members = listing.members.map((m): MemberView => {
    const fingerprint = m.sharingKeyFingerprint;
    const pin =
      m.userId.toLowerCase() === session.userId.toLowerCase()
        ? "yours"
        : fingerprint === null
          ? null
          : pinState(pins, { userId: m.userId, email: m.email, fingerprint });
    return { ...m, pin };
  });
  return { ...listing, members, thisMachineFingerprint: session.key.fingerprint };
}

/**
 * `org trust SLUG EMAIL FINGERPRINT`: pins the member's sharing key on this machine, once `fingerprint` (which the
 * member read out by another channel) is the one the server lists for them; anything else pins nothing.
 */
export async function trustOrgMember(
  ctx: Context,
  slug: string,
  email: string,
  fingerprint: string,
  options: ApiOptions,
): Promise<{ server: string; member: OrgMemberDetail; fingerprint: string; previous: string | null }> {
  const org = checkSlug(slug);
  const given = fingerprint.replace(/[\s:]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) {
    throw new LatchkeyError("LK_USAGE", {
      message: "A sharing key fingerprint is 64 hexadecimal digits (the full one, not the first 16).",
      hint: `The member reads it from \`latchkey org members ${org}\` on their machine ("this machine's sharing key").`,
    });
  }
  const session = await openOrgSession(ctx, options);
  const member = memberByEmail((await fetchMembers(ctx, org, session.api)).members, org, email);
  if (member.userId.toLowerCase() === session.userId.toLowerCase()) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Your own sharing key is not pinned: every share checks it against this machine's.",
    });
  }
  if (member.sharingKeyFingerprint !== given) {
    throw new LatchkeyError("LK_ORG_MEMBER_KEY_CHANGED", {
      message:
        member.sharingKeyFingerprint === null
          ? `${session.api.server} lists no sharing key for ${member.email} in ${org}; nothing was pinned.`
          : `The fingerprint given is not the sharing key ${session.api.server} lists for ${member.email} in ${org} (${member.sharingKeyFingerprint}); nothing was pinned.`,
      hint:
        member.sharingKeyFingerprint === null
          ? `Ask ${member.email} to run an organisation command (\`latchkey org members ${org}\`) to register their key, then try again.`
          : `Check the fingerprint with ${member.email} again: if theirs is the one you gave, the server is offering another key for them — do not share with it.`,
      details: { server: session.api.server, org },
    });
  }
  const previous = pinsOf(await readOrgKeys(ctx), session.api.server, org)[member.userId.toLowerCase()];
  await pinOrgKeys(ctx, session.api.server, org, [
    { userId: member.userId, email: member.email, fingerprint: given },
  ]);
  return { server: session.api.server, member, fingerprint: given, previous: previous?.fingerprint ?? null };
}

/** `org add SLUG EMAIL --role ROLE`: adds an existing account, after a step-up (`org:member:add`). */
export async function addOrgMember(
  ctx: Context,
  slug: string,
  email: string,
  role: OrgRole,
  options: ApiOptions,
): Promise<OrgMember> {
  const org = checkSlug(slug);
  const session = await openOrgSession(ctx, options);
  const body: OrgMemberAddRequest = { email: email.trim(), role };
  const proof = await mintStepUpProof(ctx, "org:member:add", session.api);
  try {
    const added = await callApi(
      ctx,
      {
        method: "POST",
        path: `${orgPath(org)}/members`,
        body,
        answer: orgMemberResponseSchema,
        stepUpProof: proof.proof,
      },
      { ...session.api, server: proof.server },
    );
    return added.data.member;
  } catch (error) {
    if (isLatchkeyError(error, "LK_RATE_LIMITED")) {
      throw new LatchkeyError("LK_RATE_LIMITED", {
        message: `${session.api.server} refused to add ${email}: your account has made as many member additions (or attempts) in the past hour as it allows. Nothing was changed.`,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
        details: { org, ...(error.details ?? {}) },
        cause: error,
      });
    }
    if (isLatchkeyError(error, "LK_ACCOUNT_NOT_FOUND")) {
      throw new LatchkeyError("LK_ACCOUNT_NOT_FOUND", {
        message: `${session.api.server} has no account with the email ${email}; only existing accounts can be added.`,
        hint: "Ask the server's administrator to create it (`latchkey-server admin create-user EMAIL`), then add it again.",
        details: { org },
        cause: error,
      });
    }
    if (isLatchkeyError(error, "LK_MEMBER_EXISTS")) {
      throw new LatchkeyError("LK_MEMBER_EXISTS", {
        message: `${email} is already a member of organisation ${org}.`,
        hint: `Change the role with \`latchkey org set-role ${org} ${email} ROLE\`.`,
        details: { org },
        cause: error,
      });
    }
    throw forbidden(error, org, `add a member as ${role}`, role === "owner" ? "owner" : "admin");
  }
}

/** `org set-role SLUG EMAIL ROLE`, after a step-up (`org:member:role`). */
export async function setOrgMemberRole(
  ctx: Context,
  slug: string,
  email: string,
  role: OrgRole,
  options: ApiOptions,
): Promise<OrgMember> {
  const org = checkSlug(slug);
  const session = await openOrgSession(ctx, options);
  const target = memberByEmail((await fetchMembers(ctx, org, session.api)).members, org, email);
  const body: OrgMemberRoleRequest = { role };
  const proof = await mintStepUpProof(ctx, "org:member:role", session.api);
  try {
    const changed = await callApi(
      ctx,
      {
        method: "PATCH",
        path: `${orgPath(org)}/members/${encodeURIComponent(target.userId)}`,
        body,
        answer: orgMemberResponseSchema,
        stepUpProof: proof.proof,
      },
      { ...session.api, server: proof.server },
    );
    return changed.data.member;
  } catch (error) {
    const owners = role === "owner" || target.role === "owner";
    throw forbidden(error, org, `make ${email} ${role}`, owners ? "owner" : "admin");
  }
}

/** Options of `org delete`. */
export interface DeleteOptions extends ApiOptions {
  /** The slug again, on the command line instead of at the prompt (the step-up still needs a terminal). */
  confirm?: string;
}

/**
 * `org delete SLUG`: the organisation with its members, vault copies, their history and wrapped keys (its audit
 * rows stay). The slug must be typed again, at a prompt or with --confirm SLUG, and then the password at the
 * step-up (`org:delete`), which needs a terminal whatever the options: anything else changes nothing
 * (LK_CANCELLED at the prompt, LK_USAGE for a --confirm that is not the slug, LK_NOT_INTERACTIVE without a
 * terminal).
 */
export async function deleteOrg(
  ctx: Context,
  slug: string,
  options: DeleteOptions,
): Promise<OrgDeleteResponse & { server: string }> {
  const org = checkSlug(slug);
  if (options.confirm !== undefined && options.confirm !== org) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--confirm must repeat the slug of the organisation to delete (${org}); nothing was deleted.`,
    });
  }
  const session = await openOrgSession(ctx, options);
  const shown = await callApi(
    ctx,
    { method: "GET", path: orgPath(org), answer: orgResponseSchema },
    session.api,
  );
  if (shown.data.org.role !== "owner") {
    throw new LatchkeyError("LK_ORG_FORBIDDEN", {
      message: `Only an owner of ${org} may delete it; your role is ${shown.data.org.role}.`,
      details: { org },
    });
  }
  if (options.confirm === undefined) {
    const text = ctx.prompts.text;
    if (!ctx.stdin.isTTY || !ctx.stderr.isTTY || text === undefined) {
      throw new LatchkeyError("LK_NOT_INTERACTIVE", {
        message: `Deleting ${org} asks you to type its slug and your password, and this command has no terminal to ask on.`,
        hint: "Run it in an interactive terminal. A script cannot delete an organisation, by design: --confirm only takes the place of the typed slug, never of the password.",
      });
    }
    const { memberCount, vaultCount } = shown.data;
    printStatus(
      ctx,
      `Deleting organisation ${org} removes its ${memberCount} member${memberCount === 1 ? "" : "s"} and its ${vaultCount} shared vault ${vaultCount === 1 ? "copy" : "copies"} with their history and wrapped keys, for everyone. Personal copies stay; the audit log stays.`,
    );
    const typed = await text(`Type ${org} to delete it`);
    if (typed.trim() !== org) {
      throw new LatchkeyError("LK_CANCELLED", {
        message: `What was typed is not ${org}; nothing was deleted.`,
      });
    }
  }
  const proof = await mintStepUpProof(ctx, "org:delete", session.api);
  const deleted = await callApi(
    ctx,
    { method: "DELETE", path: orgPath(org), answer: orgDeleteResponseSchema, stepUpProof: proof.proof },
    { ...session.api, server: proof.server },
  );
  return { ...deleted.data, server: deleted.server };
}
