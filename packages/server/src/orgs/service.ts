/**
 * The organisations service (docs/teams.md): organisations, members and roles, and the organisations' copies of
 * vaults, with dependencies narrowed to what it uses. Callers (routes.ts) have validated the bodies and
 * authenticated the user; every outcome a client must tell apart is a value here, not an exception. Every request
 * is checked against the one permission table (permissions.ts) here. A write takes the organisation's row lock
 * first and reads the caller's role after it, in its transaction, so a role changed or a member removed a moment
 * before is what the check sees; the change and its audit row are committed together or not at all (a refusal
 * rolls back everything, the lock's timestamp too).
 */
import {
  fromBase64,
  sharingKeyFingerprint,
  type AuditPageResponse,
  type CiEscrow,
  type OrgKeyState,
  type OrgMember,
  type OrgMemberDetail,
  type OrgRemovedCiPolicy,
  type OrgRemovedVault,
  type OrgRole,
  type OrgSummary,
  type OrgVaultSummary,
  type PlatformCredentialsReseal,
  type StepUpScope,
} from "@latchkey/core";
import type { Kysely } from "kysely";
import type { OrgCopiesRemoved, OrgCopyResealed } from "../api/copies.js";
import { countAction, type AccountLimit } from "../api/account-limits.js";
import {
  insertAudit,
  latestVersionEvents,
  latestVersionEventsByMember,
  listOrgAudit,
  type OrgAuditRow,
} from "../audit/data.js";
import { readAuditPage, type AuditPageRequest } from "../audit/page.js";
import { Abort, abortableTransaction } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import type { EscrowKey } from "../escrow-key.js";
import { parseMetadata } from "../audit/metadata.js";
import { blobDigest, pushVersion, storedEnvSchema, type HeadStore } from "../vault-copies.js";
import * as data from "./data.js";
import { allows, atLeast, leastRoleFor, leastRoleToManage, type OrgAction } from "./permissions.js";

/** What a member's removal tells whoever must hear of it (the notices outbox), inside the removal's transaction. */
export interface MemberRemovedEvent {
  orgId: string;
  slug: string;
  removedUserId: string;
  removedEmail: string;
  actorUserId: string;
  actorEmail: string;
  /** The organisation vaults the removed member held a wrapped key for. */
  vaultIds: string[];
  /** When the removal happened (its audit row's time). */
  at: string;
}

/** What a member's removal tells the CI slice: whose policies go, and which vaults' remaining ones to report. */
export interface MemberCiEvent {
  orgId: string;
  removedUserId: string;
  actorUserId: string;
  vaultIds: readonly string[];
  at: string;
}

/** The CI policies a removal deleted, and those left on the vaults the member held (by vault id). */
export interface MemberCiOutcome {
  disabled: OrgRemovedCiPolicy[];
  remaining: Map<string, NonNullable<OrgRemovedVault["ciPolicy"]>>;
}

/** What a member's addition tells whoever must hear of it (the notices outbox), inside the addition's transaction. */
export interface MemberAddedEvent {
  orgId: string;
  slug: string;
  addedUserId: string;
  addedEmail: string;
  role: OrgRole;
  actorUserId: string;
  actorEmail: string;
  /** When the addition happened (its audit row's time). */
  at: string;
}

/**
 * Member adds one account may make per hour, in every organisation together, counted whatever their outcome (an
 * unknown email too): with the step-up proof each add needs, this bounds how fast anyone can probe which emails
 * have accounts (docs/teams.md).
 */
export const MEMBER_ADD_LIMIT: AccountLimit = {
  action: "org.member.add",
  limit: 30,
  windowMs: 60 * 60 * 1000,
};

/**
 * What deleting the organisation or unsharing one of its copies tells other slices (the CI policies and platform
 * connections of the copies go with them), inside the change's transaction, before the copies are deleted.
 */
export type CopiesRemovedEvent = OrgCopiesRemoved;

/** A member's registered sharing key: the public key to wrap for and its fingerprint. */
export interface RegisteredKey {
  publicKey: string;
  fingerprint: string;
}

/**
 * Reads the registered sharing keys of `userIds` (the sharing-keys slice's, wired in app.ts); an account with no
 * entry has none yet.
 */
export type SharingKeyLookup = (
  db: Kysely<Database>,
  userIds: readonly string[],
) => Promise<Map<string, RegisteredKey>>;

/** What the service needs. */
export interface OrgServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  sharingKeys: SharingKeyLookup;
  /**
   * Called inside a member removal's transaction once the membership and keys are gone: a failure rolls the
   * removal back, so a notice is queued exactly when the removal commits.
   */
  onMemberRemoved?: (trx: Kysely<Database>, event: MemberRemovedEvent) => Promise<void>;
  /**
   * Called inside a member removal's transaction: deletes the organisation's CI policies the member enabled and
   * answers those and the policies left on the vaults they held (the CI slice's, wired in app.ts).
   */
  memberCiPolicies?: (trx: Kysely<Database>, event: MemberCiEvent) => Promise<MemberCiOutcome>;
  /** The same for an addition, once the membership is written. */
  onMemberAdded?: (trx: Kysely<Database>, event: MemberAddedEvent) => Promise<void>;
  /** Called in the transaction of an organisation's deletion or an unshare (the CI slice's, wired in app.ts). */
  onCopiesRemoved?: (trx: Kysely<Database>, event: CopiesRemovedEvent) => Promise<void>;
  /**
   * Called in a share's transaction when the share carries re-sealed platform credentials (the platforms slice's,
   * wired in app.ts): `connections-changed` rolls the share back.
   */
  onCopyResealed?: (trx: Kysely<Database>, event: OrgCopyResealed) => Promise<"ok" | "connections-changed">;
  /**
   * The server's escrow key: a push or share to a copy with CI must open with its escrow (vault-copies.ts
   * PushOptions).
   */
  escrowKey?: EscrowKey | undefined;
}

/** Who is asking. */
export interface OrgActor {
  userId: string;
  email: string;
  clientId: string;
  ip: string;
}

/**
 * The step-up proof a change of membership or the organisation's deletion spends (the route verified it for
 * `scope`; recorded in the change's transaction, after every check, so a refused change leaves it unspent).
 */
export interface StepUpSpend {
  scope: StepUpScope;
  method: string;
  record(trx: Kysely<Database>): Promise<boolean>;
}

/** The proof was spent by an earlier request: nothing was changed. */
export interface StepUpUsed {
  kind: "step-up-used";
  scope: StepUpScope;
}

/** A request refused before anything was done. */
export type Denied =
  /** No organisation has the slug, or the caller is not a member: the same answer. */
  | { kind: "org-not-found" }
  /** The caller's role is weaker than `needed`. */
  | { kind: "forbidden"; needed: OrgRole; role: OrgRole };

/** Refusals of the membership routes. */
export type MemberRefusal =
  | { kind: "account-not-found" }
  | { kind: "member-exists" }
  | { kind: "member-not-found" }
  | { kind: "last-owner" }
  | StepUpUsed
  /** The actor made MEMBER_ADD_LIMIT adds in the current window. */
  | { kind: "rate-limited"; retryAfterSeconds: number };

/** Refusals of the vault routes. */
export type VaultRefusal =
  | { kind: "not-shared" }
  | { kind: "key-missing" }
  | { kind: "conflict"; currentVersion: number }
  | { kind: "members-changed" }
  /** The share names a sender key that is not the caller's registered sharing key. */
  | { kind: "sender-key-mismatch" }
  /** The copy has CI and the new version opens with neither its escrow nor the request's. */
  | { kind: "escrow-stale" }
  /** The share's re-sealed platform credentials are not exactly the copy's connections. */
  | { kind: "connections-changed" };

/** A successful result, or why not. */
export type Outcome<T, R = never> = { kind: "ok"; value: T } | Denied | R;

/** An organisation with its counts. */
export interface OrgView {
  org: OrgSummary;
  memberCount: number;
  vaultCount: number;
}

/** A push or share that passed validation. */
export interface OrgPush {
  encryptedBlob: string;
  /** The bytes encryptedBlob encodes. */
  blobBytes: Uint8Array;
  schema: Record<string, unknown> | undefined;
  name: string;
  baseVersion: number;
  /** The vault key escrowed anew for CI (a copy without CI ignores it). */
  escrow?: CiEscrow | undefined;
}

/** An organisation copy as pulled, with the caller's wrapped key. */
export interface OrgPulled {
  version: number;
  encryptedBlob: string;
  wrappedKey: string;
  fingerprint: string;
  /** The version of the share that wrapped the key. */
  keyVersion: number;
  /** The sharer, and the sharing key the key is wrapped from. */
  wrappedBy: {
    userId: string;
    email: string | null;
    /** Their role now; null when no longer a member. */
    role: OrgRole | null;
    publicKey: string;
    fingerprint: string;
  };
  schema: Record<string, unknown> | null;
  name: string;
  updatedAt: string;
}

/** One audit entry of an organisation's log. */
export interface OrgLogEntry {
  action: string;
  version: number | null;
  createdAt: string;
  actor: { userId: string; email: string };
  metadata: Record<string, unknown>;
  vaultId: string | null;
}

/** The organisation's copy of `vaultId`, for a member's push (vault-copies.ts): it moves a shared copy only. */
function orgHeads(vaultId: string, orgId: string, slug: string): HeadStore {
  return {
    copy: { vaultId, orgId, slug },
    advance: (trx, baseVersion, write) => data.advanceOrgHead(trx, vaultId, orgId, baseVersion, write),
    insertFirst: (trx, write) => data.insertFirstOrgHead(trx, vaultId, orgId, write),
    currentVersion: (trx) => data.currentOrgVersion(trx, vaultId, orgId),
    insertVersion: (trx, record) => data.insertOrgVersion(trx, vaultId, orgId, record),
  };
}

/**
 * The same for a share, which also continues an unshared copy from the version it was unshared at (never from 1
 * again: members' CLIs would refuse the lower version as a rollback); its conflicts name that version.
 */
function sharedOrgHeads(vaultId: string, orgId: string, slug: string): HeadStore {
  const heads = orgHeads(vaultId, orgId, slug);
  return {
    ...heads,
    advance: async (trx, baseVersion, write) =>
      (await heads.advance(trx, baseVersion, write)) ||
      data.resumeOrgHead(trx, vaultId, orgId, baseVersion, write),
    currentVersion: (trx) => data.lastOrgVersion(trx, vaultId, orgId),
  };
}

/** Why `role` (null: no member) may not take an action that needs `needed`; null when it may. */
function denial(role: OrgRole | null, needed: OrgRole): Denied | null {
  if (role === null) return { kind: "org-not-found" };
  return atLeast(role, needed) ? null : { kind: "forbidden", needed, role };
}

/**
 * The organisation `slug` and `userId`'s role in it, when the permission table lets that role take `action`; a
 * denial otherwise. With `lockAt` (inside a write's transaction `db`), the organisation's row lock (data.lockOrg) is
 * taken first and the role read after it, so a role changed or a member removed a moment before is what the check
 * sees. Other slices acting on an organisation's copy ask through this (wired in app.ts).
 */
export async function organisationAccess(
  db: Kysely<Database>,
  userId: string,
  slug: string,
  action: OrgAction,
  lockAt?: string,
): Promise<{ org: data.OrgRow; role: OrgRole } | Denied> {
  const found = await data.findOrgFor(db, slug, userId);
  if (found === undefined || found.role === null) return { kind: "org-not-found" };
  let role: OrgRole | null = found.role;
  if (lockAt !== undefined) {
    if (!(await data.lockOrg(db, found.org.id, lockAt))) return { kind: "org-not-found" };
    role = await data.findRole(db, found.org.id, userId);
  }
  return denial(role, leastRoleFor(action)) ?? { org: found.org, role: role! };
}

/** Most sharers' fingerprints kept by one service (a few per organisation in practice). */
const SHARER_FINGERPRINTS_KEPT = 1_000;

/** Builds the service. */
export function createOrgService(deps: OrgServiceDeps) {
  const { db, sharingKeys: findSharingKeys } = deps;

  const transaction = <T>(body: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
    abortableTransaction(db, body);

  // Hashing the sharer's key on every pull would cost about as much as the pull's query on SQLite (the hot path);
  // a fingerprint depends on the key alone, so it is kept.
  const sharerFingerprints = new Map<string, string>();
  const sharerFingerprint = async (publicKey: string): Promise<string> => {
    let fingerprint = sharerFingerprints.get(publicKey);
    if (fingerprint === undefined) {
      fingerprint = await sharingKeyFingerprint(fromBase64(publicKey));
      if (sharerFingerprints.size >= SHARER_FINGERPRINTS_KEPT) sharerFingerprints.clear();
      sharerFingerprints.set(publicKey, fingerprint);
    }
    return fingerprint;
  };

  /** Refuses from inside a transaction, rolling back what it wrote. */
  const refuse = (outcome: Denied | MemberRefusal | VaultRefusal): never => {
    throw new Abort(outcome);
  };

  /** The organisation and the caller's role, for a read that `action` names; a denial otherwise. */
  const access = (actor: OrgActor, slug: string, action: OrgAction) =>
    organisationAccess(db, actor.userId, slug, action);

  /** The same inside a write transaction, with the organisation's row lock. Refuses (rolling back) when not. */
  async function lockedAccess(
    trx: Kysely<Database>,
    actor: OrgActor,
    slug: string,
    action: OrgAction,
    at: string,
  ): Promise<{ org: data.OrgRow; role: OrgRole }> {
    const found = await organisationAccess(trx, actor.userId, slug, action, at);
    return "kind" in found ? refuse(found) : found;
  }

  const audit = (
    trx: Kysely<Database>,
    actor: OrgActor,
    orgId: string,
    action: string,
    at: string,
    metadata: Record<string, unknown>,
    vault: { vaultId: string; version: number | null } | null = null,
  ): Promise<void> =>
    insertAudit(trx, {
      id: deps.randomId(),
      userId: actor.userId,
      action,
      vaultId: vault?.vaultId ?? null,
      orgId,
      version: vault?.version ?? null,
      createdAt: at,
      metadata: { ...metadata, orgId, clientId: actor.clientId, ip: actor.ip },
    });

  const view = async (org: data.OrgRow, role: OrgRole): Promise<OrgView> => {
    const counts = await data.countOrg(db, org.id);
    return {
      org: { slug: org.slug, name: org.name, role, createdAt: org.created_at },
      memberCount: counts.members,
      vaultCount: counts.vaults,
    };
  };

  /** Creates an organisation whose only member, its owner, is the actor. */
  async function create(
    actor: OrgActor,
    request: { slug: string; name?: string | undefined },
  ): Promise<Outcome<OrgView, { kind: "exists" }>> {
    const at = deps.now().toISOString();
    const org: data.OrgRow = {
      id: deps.randomId(),
      slug: request.slug,
      name: request.name ?? request.slug,
      created_at: at,
      updated_at: at,
    };
    return transaction(async (trx) => {
      if (!(await data.insertOrg(trx, org))) return { kind: "exists" } as const;
      await data.insertMember(trx, { orgId: org.id, userId: actor.userId, role: "owner", addedAt: at });
      await audit(trx, actor, org.id, "org.create", at, { slug: org.slug });
      return {
        kind: "ok",
        value: {
          org: { slug: org.slug, name: org.name, role: "owner", createdAt: at },
          memberCount: 1,
          vaultCount: 0,
        },
      } as const;
    });
  }

  /** The actor's organisations. */
  async function list(actor: OrgActor): Promise<OrgSummary[]> {
    return data.listUserOrgs(db, actor.userId);
  }

  /** One organisation of the actor's. */
  async function get(actor: OrgActor, slug: string): Promise<Outcome<OrgView>> {
    const found = await access(actor, slug, "org.read");
    if ("kind" in found) return found;
    return { kind: "ok", value: await view(found.org, found.role) };
  }

  /** Deletes the organisation with its members, copies and keys, spending the step-up proof; its audit rows stay. */
  async function remove(
    actor: OrgActor,
    slug: string,
    stepUp: StepUpSpend,
  ): Promise<Outcome<{ slug: string; membersRemoved: number; vaultsRemoved: number }, StepUpUsed>> {
    const at = deps.now().toISOString();
    return transaction(async (trx) => {
      const { org } = await lockedAccess(trx, actor, slug, "org.delete", at);
      await deps.onCopiesRemoved?.(trx, {
        orgId: org.id,
        vaultId: null,
        actorUserId: actor.userId,
        cause: "org.delete",
        at,
      });
      const removed = await data.deleteOrg(trx, org.id);
      if (!(await stepUp.record(trx))) return refuse({ kind: "step-up-used", scope: stepUp.scope });
      await audit(trx, actor, org.id, "org.delete", at, {
        slug,
        membersRemoved: removed.members,
        vaultsRemoved: removed.vaults,
        stepUp: stepUp.method,
      });
      return {
        kind: "ok",
        value: { slug, membersRemoved: removed.members, vaultsRemoved: removed.vaults },
      } as const;
    });
  }

  /**
   * The members with their sharing state, and the organisation's vaults; for a caller who may read the audit log,
   * each member's last pull of each vault too (it is read from that log).
   */
  async function members(
    actor: OrgActor,
    slug: string,
  ): Promise<Outcome<{ vaults: OrgVaultSummary[]; members: OrgMemberDetail[] }>> {
    const found = await access(actor, slug, "members.list");
    if ("kind" in found) return found;
    const orgId = found.org.id;
    const auditor = allows(found.role, "audit.read");
    const [rows, vaults, fingerprints, pulls] = await Promise.all([
      data.listMembers(db, orgId),
      data.listOrgVaults(db, orgId),
      data.listKeyFingerprints(db, orgId),
      auditor ? latestVersionEventsByMember(db, orgId, data.PULL_ACTION) : null,
    ]);
    const sharingKeys = await findSharingKeys(
      db,
      rows.map((m) => m.userId),
    );
    const wrappedFor = new Map(fingerprints.map((k) => [`${k.vaultId}\u0000${k.userId}`, k]));
    const detailed = rows.map((member): OrgMemberDetail => {
      const current = sharingKeys.get(member.userId)?.fingerprint ?? null;
      const keys = vaults.map((vault) => {
        const wrapped = wrappedFor.get(`${vault.vaultId}\u0000${member.userId}`);
        // A key with no recorded sharer is refused by the pull, so it needs a share as much as an old one.
        const state: OrgKeyState =
          wrapped === undefined
            ? "missing"
            : wrapped.fingerprint === current && wrapped.authored
              ? "current"
              : "stale";
        if (pulls === null) return { vaultId: vault.vaultId, state };
        const pull = pulls.get(`${vault.vaultId}\u0000${member.userId}`);
        return {
          vaultId: vault.vaultId,
          state,
          lastPulledAt: pull?.createdAt ?? null,
          lastPulledVersion: pull?.version ?? null,
        };
      });
      return {
        ...member,
        sharingKeyFingerprint: current,
        needsShare: current !== null && keys.some((k) => k.state !== "current"),
        keys,
      };
    });
    return { kind: "ok", value: { vaults, members: detailed } };
  }

  /**
   * Adds an existing account by its (normalized) email, spending the step-up proof and queueing the notices in
   * the same transaction. Every add is first counted against the actor's MEMBER_ADD_LIMIT, in a statement of its
   * own, so an add refused later (an unknown email) still counts.
   */
  async function addMember(
    actor: OrgActor,
    slug: string,
    request: { email: string; role: OrgRole },
    stepUp: StepUpSpend,
  ): Promise<Outcome<OrgMember, MemberRefusal>> {
    const now = deps.now();
    const at = now.toISOString();
    const counted = await countAction(db, actor.userId, MEMBER_ADD_LIMIT, now);
    if (!counted.allowed) return { kind: "rate-limited", retryAfterSeconds: counted.retryAfterSeconds };
    return transaction(async (trx) => {
      const { org, role } = await lockedAccess(trx, actor, slug, "members.add", at);
      const denied = denial(role, leastRoleToManage("members.add", null, request.role));
      if (denied !== null) return refuse(denied);
      const userId = await data.findUserIdByEmail(trx, request.email);
      if (userId === undefined) return refuse({ kind: "account-not-found" });
      const member = { orgId: org.id, userId, role: request.role, addedAt: at };
      if (!(await data.insertMember(trx, member))) return refuse({ kind: "member-exists" });
      if (!(await stepUp.record(trx))) return refuse({ kind: "step-up-used", scope: stepUp.scope });
      await audit(trx, actor, org.id, "org.member.add", at, {
        memberUserId: userId,
        role: request.role,
        stepUp: stepUp.method,
      });
      await deps.onMemberAdded?.(trx, {
        orgId: org.id,
        slug: org.slug,
        addedUserId: userId,
        addedEmail: request.email,
        role: request.role,
        actorUserId: actor.userId,
        actorEmail: actor.email,
        at,
      });
      return {
        kind: "ok",
        value: { userId, email: request.email, role: request.role, addedAt: at },
      } as const;
    });
  }

  /** Gives a member another role, spending the step-up proof; never leaves the organisation without an owner. */
  async function setRole(
    actor: OrgActor,
    slug: string,
    userId: string,
    newRole: OrgRole,
    stepUp: StepUpSpend,
  ): Promise<Outcome<OrgMember, MemberRefusal>> {
    const at = deps.now().toISOString();
    return transaction(async (trx) => {
      const { org, role } = await lockedAccess(trx, actor, slug, "members.set-role", at);
      const target = await data.findMember(trx, org.id, userId);
      if (target === undefined) return refuse({ kind: "member-not-found" });
      const denied = denial(role, leastRoleToManage("members.set-role", target.role, newRole));
      if (denied !== null) return refuse(denied);
      if (!(await data.setRole(trx, org.id, userId, newRole))) return refuse({ kind: "last-owner" });
      if (!(await stepUp.record(trx))) return refuse({ kind: "step-up-used", scope: stepUp.scope });
      await audit(trx, actor, org.id, "org.member.role", at, {
        memberUserId: userId,
        from: target.role,
        to: newRole,
        stepUp: stepUp.method,
      });
      return { kind: "ok", value: { ...target, role: newRole } } as const;
    });
  }

  /**
   * Removes a member and deletes their wrapped keys of every organisation vault, spending the step-up proof in the
   * same transaction; answers the vaults they held a key for, with their last pull of each.
   */
  async function removeMember(
    actor: OrgActor,
    slug: string,
    userId: string,
    stepUp: StepUpSpend,
  ): Promise<
    Outcome<
      { removed: OrgMember; vaults: OrgRemovedVault[]; ciPoliciesDisabled: OrgRemovedCiPolicy[] },
      MemberRefusal
    >
  > {
    const at = deps.now().toISOString();
    return transaction(async (trx) => {
      const { org, role } = await lockedAccess(trx, actor, slug, "members.remove", at);
      const target = await data.findMember(trx, org.id, userId);
      if (target === undefined) return refuse({ kind: "member-not-found" });
      const denied = denial(role, leastRoleToManage("members.remove", target.role, null));
      if (denied !== null) return refuse(denied);
      const keyed = await data.listKeyedVaults(trx, org.id, userId);
      if (!(await data.deleteMember(trx, org.id, userId))) return refuse({ kind: "last-owner" });
      const keysDeleted = await data.deleteMemberKeys(trx, org.id, userId);
      if (!(await stepUp.record(trx))) return refuse({ kind: "step-up-used", scope: stepUp.scope });
      const pulls = await latestVersionEvents(trx, org.id, userId, data.PULL_ACTION);
      const ci = await deps.memberCiPolicies?.(trx, {
        orgId: org.id,
        removedUserId: userId,
        actorUserId: actor.userId,
        vaultIds: keyed.map((v) => v.vaultId),
        at,
      });
      await audit(trx, actor, org.id, "org.member.remove", at, {
        memberUserId: userId,
        role: target.role,
        wrappedKeysDeleted: keysDeleted,
        stepUp: stepUp.method,
      });
      await deps.onMemberRemoved?.(trx, {
        orgId: org.id,
        slug: org.slug,
        removedUserId: userId,
        removedEmail: target.email,
        actorUserId: actor.userId,
        actorEmail: actor.email,
        vaultIds: keyed.map((v) => v.vaultId),
        at,
      });
      const vaults = keyed.map((vault): OrgRemovedVault => {
        const pull = pulls.get(vault.vaultId);
        return {
          ...vault,
          lastPulledAt: pull?.createdAt ?? null,
          lastPulledVersion: pull?.version ?? null,
          ciPolicy: ci?.remaining.get(vault.vaultId) ?? null,
        };
      });
      const ciPoliciesDisabled = ci?.disabled ?? [];
      return { kind: "ok", value: { removed: target, vaults, ciPoliciesDisabled } } as const;
    });
  }

  /** The registered sharing keys of the members that have one. */
  async function publicKeys(
    actor: OrgActor,
    slug: string,
  ): Promise<Outcome<{ userId: string; email: string; publicKey: string; fingerprint: string }[]>> {
    const found = await access(actor, slug, "public-keys.read");
    if ("kind" in found) return found;
    const rows = await data.listMembers(db, found.org.id);
    const keys = await findSharingKeys(
      db,
      rows.map((m) => m.userId),
    );
    return {
      kind: "ok",
      value: rows.flatMap((m) => {
        const key = keys.get(m.userId);
        return key === undefined ? [] : [{ userId: m.userId, email: m.email, ...key }];
      }),
    };
  }

  /** The organisation's vaults. */
  async function vaults(actor: OrgActor, slug: string): Promise<Outcome<OrgVaultSummary[]>> {
    const found = await access(actor, slug, "vaults.list");
    if ("kind" in found) return found;
    return { kind: "ok", value: await data.listOrgVaults(db, found.org.id) };
  }

  /**
   * The organisation's copy with the key wrapped for the actor. The first pull of each version by each member is
   * an audit row (what a removal reports as their last pull); pulling it again writes nothing.
   */
  async function pull(
    actor: OrgActor,
    slug: string,
    vaultId: string,
  ): Promise<Outcome<OrgPulled, VaultRefusal>> {
    const read = await data.readPull(db, slug, vaultId, actor.userId);
    const denied = denial(read?.role ?? null, leastRoleFor("vault.pull"));
    if (denied !== null) return denied;
    const { orgId, head, key, recorded } = read!;
    if (head === undefined) return { kind: "not-shared" };
    // A key without its sharer cannot be checked by the member's CLI: as good as none until a maintainer shares.
    if (key?.author == null) return { kind: "key-missing" };
    const { author } = key;
    const version = Number(head.version);
    if (!recorded) {
      // Two first pulls at once both land here; the coalesce key makes them one row (with a count of 2).
      await insertAudit(db, {
        id: deps.randomId(),
        userId: actor.userId,
        action: data.PULL_ACTION,
        vaultId,
        orgId,
        version,
        createdAt: deps.now().toISOString(),
        metadata: { orgId, clientId: actor.clientId, ip: actor.ip },
        coalesceKey: data.pullAuditKey(orgId, vaultId, actor.userId, version),
      });
    }
    return {
      kind: "ok",
      value: {
        version,
        encryptedBlob: head.encrypted_blob,
        wrappedKey: key.wrappedKey,
        fingerprint: key.fingerprint,
        keyVersion: author.keyVersion,
        wrappedBy: {
          userId: author.userId,
          email: author.email,
          role: author.role,
          publicKey: author.publicKey,
          fingerprint: await sharerFingerprint(author.publicKey),
        },
        schema: head.schema_json === null ? null : storedEnvSchema(head.schema_json),
        name: head.name,
        updatedAt: head.updated_at,
      },
    };
  }

  /** A new version of the organisation's copy, its wrapped keys kept; never creates a copy. */
  async function push(
    actor: OrgActor,
    slug: string,
    vaultId: string,
    request: OrgPush,
  ): Promise<Outcome<{ version: number; createdAt: string }, VaultRefusal>> {
    const at = deps.now().toISOString();
    const versioned = { ...request, digest: blobDigest(request.blobBytes) };
    return transaction(async (trx) => {
      const found = await data.findOrgFor(trx, slug, actor.userId);
      const denied = denial(found?.role ?? null, leastRoleFor("vault.push"));
      if (denied !== null) return refuse(denied);
      const orgId = found!.org.id;
      if (request.baseVersion === 0) {
        const current = await data.currentOrgVersion(trx, vaultId, orgId);
        return refuse(current === 0 ? { kind: "not-shared" } : { kind: "conflict", currentVersion: current });
      }
      const heads = orgHeads(vaultId, orgId, found!.org.slug);
      const outcome = await pushVersion(
        trx,
        heads,
        versioned,
        at,
        {
          id: deps.randomId(),
          userId: actor.userId,
          action: "org.vault.push",
          vaultId,
          orgId,
          metadata: { orgId, clientId: actor.clientId },
        },
        { escrowKey: deps.escrowKey },
      );
      if (outcome.kind === "pushed") {
        return { kind: "ok", value: { version: outcome.version, createdAt: outcome.createdAt } } as const;
      }
      if (outcome.kind === "escrow-stale") return refuse(outcome);
      const current = await data.currentOrgVersion(trx, vaultId, orgId);
      return refuse(current === 0 ? { kind: "not-shared" } : { kind: "conflict", currentVersion: current });
    });
  }

  /**
   * A new version whose wrapped keys are exactly `keys` (the first version from baseVersion 0), each recorded as
   * wrapped by the actor's registered sharing key at the new version. `senderFingerprint` must be that key's, and
   * every key must be for a member whose registered sharing key has its fingerprint, else nothing is written. (The
   * wraps themselves only members can check: the server holds no private key.) `platformCredentials`, from a share
   * that gives the copy a new vault key, goes to the onCopyResealed hook in the same transaction.
   */
  async function share(
    actor: OrgActor,
    slug: string,
    vaultId: string,
    request: OrgPush,
    senderFingerprint: string,
    keys: readonly data.KeyWrite[],
    platformCredentials?: PlatformCredentialsReseal,
  ): Promise<Outcome<{ version: number; createdAt: string }, VaultRefusal>> {
    const at = deps.now().toISOString();
    const versioned = { ...request, digest: blobDigest(request.blobBytes) };
    return transaction(async (trx) => {
      const { org } = await lockedAccess(trx, actor, slug, "vault.share", at);
      const userIds = keys.map((k) => k.userId);
      const roles = await data.findRoles(trx, org.id, userIds);
      // Read in this transaction: a rotation of the sharer's key cannot slip between the check and the rows.
      const registered = await findSharingKeys(trx, [...userIds, actor.userId]);
      const sender = registered.get(actor.userId);
      if (sender?.fingerprint !== senderFingerprint) return refuse({ kind: "sender-key-mismatch" });
      for (const key of keys) {
        if (!roles.has(key.userId) || registered.get(key.userId)?.fingerprint !== key.fingerprint) {
          return refuse({ kind: "members-changed" });
        }
      }
      const outcome = await pushVersion(
        trx,
        sharedOrgHeads(vaultId, org.id, org.slug),
        versioned,
        at,
        {
          id: deps.randomId(),
          userId: actor.userId,
          action: "org.vault.share",
          vaultId,
          orgId: org.id,
          metadata: { orgId: org.id, clientId: actor.clientId, keys: keys.length },
        },
        // A share (maintainer or stronger) is what gives the copy a new key, so it may bring that key's escrow.
        { escrowKey: deps.escrowKey, escrowReplacement: "new-key" },
      );
      if (outcome.kind === "escrow-stale") return refuse(outcome);
      if (outcome.kind === "taken") {
        return refuse({ kind: "conflict", currentVersion: outcome.currentVersion });
      }
      if (outcome.kind === "stale") {
        return refuse({
          kind: "conflict",
          currentVersion: await data.lastOrgVersion(trx, vaultId, org.id),
        });
      }
      const author = { userId: actor.userId, publicKey: sender.publicKey, keyVersion: outcome.version };
      await data.replaceKeys(trx, vaultId, org.id, keys, author, at);
      if (platformCredentials !== undefined && deps.onCopyResealed !== undefined) {
        const resealed = await deps.onCopyResealed(trx, {
          copy: { vaultId, orgId: org.id, slug: org.slug },
          version: outcome.version,
          actor: { userId: actor.userId, clientId: actor.clientId, ip: actor.ip },
          credentials: platformCredentials,
          at,
        });
        if (resealed === "connections-changed") return refuse({ kind: "connections-changed" });
      }
      return { kind: "ok", value: { version: outcome.version, createdAt: outcome.createdAt } } as const;
    });
  }

  /**
   * Deletes the organisation's copy, its history and its keys, so no member can pull it; the version it had stays
   * behind for a later share to continue from.
   */
  async function unshare(
    actor: OrgActor,
    slug: string,
    vaultId: string,
  ): Promise<Outcome<{ wrappedKeysRemoved: number }, VaultRefusal>> {
    const at = deps.now().toISOString();
    return transaction(async (trx) => {
      const { org } = await lockedAccess(trx, actor, slug, "vault.unshare", at);
      const removed = await data.deleteOrgVault(trx, vaultId, org.id, at);
      if (removed === null) return refuse({ kind: "not-shared" });
      await deps.onCopiesRemoved?.(trx, {
        orgId: org.id,
        vaultId,
        actorUserId: actor.userId,
        cause: "org.vault.unshare",
        at,
      });
      const { wrappedKeysRemoved, version } = removed;
      await audit(trx, actor, org.id, "org.vault.unshare", at, { wrappedKeysRemoved }, { vaultId, version });
      return { kind: "ok", value: { wrappedKeysRemoved } } as const;
    });
  }

  /** The newest `limit` audit entries of one organisation vault. */
  async function vaultLog(
    actor: OrgActor,
    slug: string,
    vaultId: string,
    limit: number,
  ): Promise<Outcome<OrgLogEntry[], VaultRefusal>> {
    const found = await access(actor, slug, "audit.read");
    if ("kind" in found) return found;
    if (!(await data.orgVaultExists(db, vaultId, found.org.id))) return { kind: "not-shared" };
    return { kind: "ok", value: (await listOrgAudit(db, found.org.id, vaultId, limit)).map(entry) };
  }

  /** The newest `limit` audit entries of the organisation. */
  async function orgLog(actor: OrgActor, slug: string, limit: number): Promise<Outcome<OrgLogEntry[]>> {
    const found = await access(actor, slug, "audit.read");
    if ("kind" in found) return found;
    return { kind: "ok", value: (await listOrgAudit(db, found.org.id, null, limit)).map(entry) };
  }

  /** A page of the organisation's audit log (of one of its vaults with the filter's vaultId). */
  async function auditPage(
    actor: OrgActor,
    slug: string,
    request: AuditPageRequest,
  ): Promise<Outcome<AuditPageResponse>> {
    const found = await access(actor, slug, "audit.read");
    if ("kind" in found) return found;
    return { kind: "ok", value: await readAuditPage(db, { kind: "org", orgId: found.org.id }, request) };
  }

  return {
    create,
    list,
    get,
    remove,
    members,
    addMember,
    setRole,
    removeMember,
    publicKeys,
    vaults,
    pull,
    push,
    share,
    unshare,
    vaultLog,
    orgLog,
    auditPage,
  };
}

/** The organisations service's interface. */
export type OrgService = ReturnType<typeof createOrgService>;

function entry(row: OrgAuditRow): OrgLogEntry {
  return {
    action: row.action,
    version: row.version,
    createdAt: row.createdAt,
    actor: { userId: row.userId ?? "", email: row.email ?? "" },
    metadata: parseMetadata(row.metadata),
    vaultId: row.vaultId,
  };
}
