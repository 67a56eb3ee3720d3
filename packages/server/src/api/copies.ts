/**
 * Requests about one copy of a vault — the caller's personal copy or an organisation's — as every slice that keeps
 * something per copy (CI policies, platform connections) resolves and refuses them. One place, so the slices answer
 * an absent copy, an unknown organisation and a too-weak role alike, and so the organisations slice's hooks have
 * one event type to send.
 */
import type { OrgRole, PlatformCredentialsReseal } from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertAudit } from "../audit/data.js";
import { findCopyHead, type CopyHeadRecord, type CopyRef } from "../db/copies.js";
import type { Database } from "../db/schema.js";
import { ApiError } from "./plugin.js";

/** An organisation copy request refused: no such organisation for the caller, or a role too weak. */
export type OrgDenied = { kind: "org-not-found" } | { kind: "forbidden"; needed: OrgRole; role: OrgRole };

/** The copy does not exist for the caller (a personal copy) or the organisation (an organisation's). */
export type CopyNotFound = { kind: "vault-not-found" } | { kind: "not-shared" };

/** The copy a request names: the caller's personal copy of `vaultId`, or organisation `org`'s. */
export interface CopyTarget {
  vaultId: string;
  org?: string | undefined;
}

/**
 * The organisation `slug` as `userId` may act on it with `need`, per the organisations' permission table (wired in
 * app.ts, so that no slice imports the organisations slice). With `lockAt` (inside a write's transaction `db`), the
 * organisation's row lock is taken first and the role read after it.
 */
export type OrgCopyAccess<Need extends string> = (
  db: Kysely<Database>,
  userId: string,
  slug: string,
  need: Need,
  lockAt?: string,
) => Promise<{ orgId: string; slug: string } | OrgDenied>;

/**
 * What deleting an organisation or unsharing one of its copies tells the slices that keep something per copy, in
 * that change's transaction (the organisations slice's hook, wired in app.ts).
 */
export interface OrgCopiesRemoved {
  orgId: string;
  /** The unshared copy's vault; null when the whole organisation goes. */
  vaultId: string | null;
  actorUserId: string;
  /** The organisations slice's audit action of the change. */
  cause: "org.delete" | "org.vault.unshare";
  at: string;
}

/**
 * What a share that gives an organisation's copy a new vault key tells the slices whose data is sealed with that key,
 * in the share's transaction once the new version is written: the credentials the sharer re-sealed with the new key
 * (the organisations slice's hook, wired in app.ts).
 */
export interface OrgCopyResealed {
  copy: { readonly vaultId: string; readonly orgId: string; readonly slug: string };
  /** The share's new version. */
  version: number;
  actor: { userId: string; clientId: string; ip: string };
  credentials: PlatformCredentialsReseal;
  at: string;
}

/**
 * The copy `target` names as `userId` may act on it with `need`, and its head (read with `readHead`, e.g. a read
 * that locks the row inside a write); a refusal otherwise. A personal copy is keyed by the caller, so another
 * user's vault is as absent as one never pushed.
 */
export async function resolveCopy<Need extends string>(
  trx: Kysely<Database>,
  orgAccess: OrgCopyAccess<Need>,
  request: { userId: string; target: CopyTarget; need: Need; lockAt?: string | undefined },
  readHead: (trx: Kysely<Database>, copy: CopyRef) => Promise<CopyHeadRecord | undefined> = findCopyHead,
): Promise<{ copy: CopyRef; head: CopyHeadRecord } | OrgDenied | CopyNotFound> {
  const { userId, target, need, lockAt } = request;
  let copy: CopyRef;
  if (target.org === undefined) {
    copy = { vaultId: target.vaultId, userId };
  } else {
    const org = await orgAccess(trx, userId, target.org, need, lockAt);
    if ("kind" in org) return org;
    copy = { vaultId: target.vaultId, orgId: org.orgId, slug: org.slug };
  }
  const head = await readHead(trx, copy);
  if (head === undefined) return { kind: target.org === undefined ? "vault-not-found" : "not-shared" };
  return { copy, head };
}

const error = (status: number, name: string, code: string, message: string): ApiError =>
  new ApiError(status, { error: name, code, message });

/** The answer to a copy request refused by {@link resolveCopy}. */
export function copyRefusal(outcome: OrgDenied | CopyNotFound): ApiError {
  switch (outcome.kind) {
    case "org-not-found":
      return error(
        404,
        "OrgNotFoundError",
        "LK_ORG_NOT_FOUND",
        "No organisation with this slug has you as a member.",
      );
    case "forbidden":
      return error(
        403,
        "OrgForbiddenError",
        "LK_ORG_FORBIDDEN",
        `This needs the role ${outcome.needed} or a stronger one in the organisation; yours is ${outcome.role}.`,
      );
    case "vault-not-found":
      // The pull's answer: absent and someone else's look the same.
      return error(
        404,
        "VaultNotFoundError",
        "LK_VAULT_NOT_SYNCED",
        "The server has no copy of this vault for your account.",
      );
    case "not-shared":
      return error(
        404,
        "OrgVaultNotSharedError",
        "LK_ORG_VAULT_NOT_SHARED",
        "This vault is not shared with the organisation.",
      );
  }
}

/**
 * The audit row of a change to something kept per copy (a CI policy, a platform connection): the copy's vault and
 * organisation, and the caller's client and address beside the change's own metadata.
 */
export function insertCopyAudit(
  trx: Kysely<Database>,
  row: {
    id: string;
    actor: { userId: string; clientId: string; ip: string };
    action: string;
    copy: CopyRef;
    version: number | null;
    at: string;
    metadata: Record<string, unknown>;
  },
): Promise<void> {
  const orgId = "orgId" in row.copy ? row.copy.orgId : null;
  return insertAudit(trx, {
    id: row.id,
    userId: row.actor.userId,
    action: row.action,
    vaultId: row.copy.vaultId,
    orgId,
    version: row.version,
    createdAt: row.at,
    metadata: {
      ...row.metadata,
      ...(orgId === null ? {} : { orgId }),
      clientId: row.actor.clientId,
      ip: row.actor.ip,
    },
  });
}
