// What every organisation command does first (docs/teams.md, "Before every organisation operation"): pick the
// server session, and make sure this machine's sharing key is the account's registered one (ensureSharingKey:
// registered on first use, LK_SHARING_KEY_MISMATCH when the account has another). Commands then talk to that one
// server, whatever the profile says by the time they finish.
import { LatchkeyError, isOrgSlug, orgMembersResponseSchema, type OrgMemberDetail } from "@latchkey/core";
import type { Context } from "../context.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { requireServerSession } from "../server/session.js";
import { ensureSharingKey, type SharingKey } from "../sharing/sharing-key.js";
import { orgPath } from "./copy.js";

/** The server, account and sharing key an organisation command works with. */
export interface OrgSession {
  /** callApi's options, the server fixed. */
  readonly api: ApiOptions & { server: string };
  readonly userId: string;
  readonly key: SharingKey;
  /** `--trust-new-members`: shares of this command pin new members' keys without asking (org/pins.ts). */
  readonly trustNewMembers?: boolean;
  /** A maintainer (or stronger) this command has just removed: see {@link Sharer}'s field of the same name. */
  readonly removedSharer?: string;
}

/** The server session an organisation command talks to: callApi's options with its server fixed, and the account. */
async function orgServer(ctx: Context, options: ApiOptions): Promise<Omit<OrgSession, "key">> {
  const active = await requireServerSession(ctx, {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
    verbose: options.verbose ?? 0,
  });
  return { api: { ...options, server: active.selection.server }, userId: active.session.subject };
}

/** Opens an organisation command: the server session, then ensureSharingKey. */
export async function openOrgSession(ctx: Context, options: ApiOptions): Promise<OrgSession> {
  const opened = await orgServer(ctx, options);
  return { ...opened, key: await ensureSharingKey(ctx, opened.api) };
}

/**
 * {@link openOrgSession} with `request` (a read that needs no sharing key) sent while the sharing key is checked,
 * saving a round trip. Its answer is handed back only once the check passed: the check's error comes first, so
 * nothing is done with an answer before the key that opens it is known to be the registered one.
 */
export async function openOrgSessionWith<T>(
  ctx: Context,
  options: ApiOptions,
  request: (api: OrgSession["api"]) => Promise<T>,
): Promise<[OrgSession, T]> {
  const opened = await orgServer(ctx, options);
  const [key, answer] = await Promise.allSettled([ensureSharingKey(ctx, opened.api), request(opened.api)]);
  if (key.status === "rejected") throw key.reason;
  if (answer.status === "rejected") throw answer.reason;
  return [{ ...opened, key: key.value }, answer.value];
}

/** `slug` when it is an organisation slug, else LK_USAGE (before anything is asked of the server). */
export function checkSlug(slug: string): string {
  if (!isOrgSlug(slug)) {
    throw new LatchkeyError("LK_USAGE", {
      message: "An organisation slug is 1 to 40 lower-case letters, digits and inner hyphens.",
      hint: "List your organisations with `latchkey org list`.",
    });
  }
  return slug;
}

/** The organisation's members with their sharing state (`GET /orgs/:slug/members`). */
export async function fetchMembers(ctx: Context, slug: string, api: ApiOptions) {
  const result = await callApi(
    ctx,
    { method: "GET", path: `${orgPath(slug)}/members`, answer: orgMembersResponseSchema },
    api,
  );
  if (result.data.slug !== slug) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server answered the members of organisation ${slug} with another organisation's.`,
      details: { server: result.server },
    });
  }
  return result.data;
}

/** The member of `slug` with `email` (compared without case), else LK_MEMBER_NOT_FOUND naming both. */
export function memberByEmail(
  members: readonly OrgMemberDetail[],
  slug: string,
  email: string,
): OrgMemberDetail {
  const wanted = email.trim().toLowerCase();
  const member = members.find((m) => m.email.toLowerCase() === wanted);
  if (member === undefined) {
    throw new LatchkeyError("LK_MEMBER_NOT_FOUND", {
      message: `${email} is not a member of organisation ${slug}.`,
      hint: `List the members with \`latchkey org members ${slug}\`.`,
      details: { org: slug },
    });
  }
  return member;
}
