/**
 * The CI policies service (docs/ci.md "Policies" and "Escrow"): show, enable (make or replace) and disable the CI
 * policy of a vault copy — the caller's personal copy, or an organisation's — with its escrow, with dependencies
 * narrowed to what it uses. Callers (policies-routes.ts) have validated the bodies, authenticated the session and
 * verified the step-up proof; every outcome a client must tell apart is a value here, not an exception.
 *
 * Enabling checks, in the transaction that stores it, that the escrowed key opens the copy's current version (its
 * head row locked, so no push slips between the check and the write), spends the step-up proof and writes the
 * audit row; a refusal anywhere rolls back all of it. Who may act on an organisation's copy is the organisations
 * slice's permission table, asked through {@link OrgCopyAccess} (wired in app.ts).
 */
import type { CiPolicy, CiPolicyResponse } from "@latchkey/core";
import type { Kysely } from "kysely";
import {
  insertCopyAudit,
  resolveCopy,
  type CopyNotFound,
  type CopyTarget,
  type OrgCopiesRemoved,
  type OrgCopyAccess as SharedOrgCopyAccess,
  type OrgDenied,
} from "../api/copies.js";
import { insertAudit } from "../audit/data.js";
import { Abort, abortableTransaction } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import type { EscrowKey } from "../escrow-key.js";
import { findCopyHead, type CopyHeadRecord, type CopyRef } from "../db/copies.js";
import { openCopyHead } from "./escrow.js";
import type { CiIssuer } from "./issuers.js";
import * as data from "./policies-data.js";

export type { CopyNotFound, CopyTarget, OrgCopiesRemoved, OrgDenied };

/** Who may read (show) or manage (enable, disable) an organisation copy's policy. */
export type OrgCopyAccess = SharedOrgCopyAccess<"read" | "manage">;

/** What the service needs. */
export interface CiPolicyServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  escrowKey: EscrowKey;
  /** The trusted issuers (CI_OIDC_ISSUERS): a policy names one of its provider's. */
  issuers: readonly CiIssuer[];
  orgAccess: OrgCopyAccess;
}

/** Who is asking. */
export interface CiActor {
  userId: string;
  clientId: string;
  ip: string;
}

/** The step-up proof enabling spends (verified by the route; recorded in the enabling's transaction). */
export interface StepUpSpend {
  method: string;
  record(trx: Kysely<Database>): Promise<boolean>;
}

/** Refusals of enabling. */
export type EnableRefusal =
  /** The policy's issuer is not a trusted issuer of its provider. */
  | { kind: "issuer-not-trusted" }
  /** protectedRefsOnly asked of a provider whose tokens say nothing of protected refs (GitHub). */
  | { kind: "protected-refs-unsupported" }
  /** The escrow is for another escrow key than the server's current one. */
  | { kind: "escrow-stale" }
  /** The escrowed key does not open the copy's current version. */
  | { kind: "escrow-invalid" }
  | { kind: "step-up-used" };

/** A successful result, or why not. */
export type Outcome<T, R = never> = { kind: "ok"; value: T } | OrgDenied | CopyNotFound | R;

/** The copy has no policy. */
export type NotEnabled = { kind: "not-enabled" };

/** What a change of a policy records about it (never the escrowed key). */
function auditPolicy(policy: CiPolicy): Record<string, unknown> {
  return {
    provider: policy.provider,
    issuer: policy.issuer,
    repository: policy.repository,
    repositoryId: policy.repositoryId,
    ownerId: policy.ownerId,
    branches: policy.branches,
    environments: policy.environments,
    allowForks: policy.allowForks,
    protectedRefsOnly: policy.protectedRefsOnly,
    audience: policy.audience,
  };
}

function view(record: data.CiPolicyRecord): CiPolicyResponse {
  return {
    vaultId: record.copy.vaultId,
    org: "slug" in record.copy ? record.copy.slug : null,
    policy: record.policy,
    escrowVersion: record.escrowVersion,
    escrowKeyFingerprint: record.escrowKeyFingerprint,
    enabledAt: record.enabledAt,
    enabledBy: record.enabledBy?.email ?? null,
  };
}

/** Builds the service. */
export function createCiPolicyService(deps: CiPolicyServiceDeps) {
  const { db } = deps;

  /**
   * The copy `target` names as `actor` may act on it with `need`, and its head; in a write (`lockAt`), the
   * organisation's lock and the head row's lock are taken first. A refusal otherwise.
   */
  function resolve(
    trx: Kysely<Database>,
    actor: CiActor,
    target: CopyTarget,
    need: "read" | "manage",
    lockAt?: string,
  ): Promise<{ copy: CopyRef; head: CopyHeadRecord } | OrgDenied | CopyNotFound> {
    const readHead = lockAt === undefined ? findCopyHead : data.lockCopyHead;
    return resolveCopy(trx, deps.orgAccess, { userId: actor.userId, target, need, lockAt }, readHead);
  }

  const audit = (
    trx: Kysely<Database>,
    actor: CiActor,
    action: string,
    copy: CopyRef,
    version: number | null,
    at: string,
    metadata: Record<string, unknown>,
  ): Promise<void> =>
    insertCopyAudit(trx, { id: deps.randomId(), actor, action, copy, version, at, metadata });

  /** The copy's policy. */
  async function show(actor: CiActor, target: CopyTarget): Promise<Outcome<CiPolicyResponse, NotEnabled>> {
    const found = await resolve(db, actor, target, "read");
    if ("kind" in found) return found;
    const record = await data.findCopyPolicy(db, found.copy);
    if (record === undefined) return { kind: "not-enabled" };
    return { kind: "ok", value: view(record) };
  }

  /**
   * Makes or replaces the copy's policy and escrow, spending the step-up proof. The escrow must be for the server's
   * current escrow key and open the copy's current version; a replacement is one more generation, so CI access
   * tokens issued under the old one pull nothing.
   */
  async function enable(
    actor: CiActor,
    target: CopyTarget,
    request: { policy: CiPolicy; escrow: { escrowedKey: string; escrowKeyFingerprint: string } },
    stepUp: StepUpSpend,
  ): Promise<Outcome<CiPolicyResponse, EnableRefusal>> {
    const { policy, escrow } = request;
    if (!deps.issuers.some((i) => i.provider === policy.provider && i.url === policy.issuer)) {
      return { kind: "issuer-not-trusted" };
    }
    if (policy.provider === "github" && policy.protectedRefsOnly)
      return { kind: "protected-refs-unsupported" };
    if (escrow.escrowKeyFingerprint !== deps.escrowKey.fingerprint) return { kind: "escrow-stale" };
    const at = deps.now().toISOString();
    const refuse = (outcome: OrgDenied | CopyNotFound | EnableRefusal): never => {
      throw new Abort(outcome);
    };
    return abortableTransaction(db, async (trx) => {
      const found = await resolve(trx, actor, target, "manage", at);
      if ("kind" in found) return refuse(found);
      const { copy, head } = found;
      const opened = await openCopyHead(deps.escrowKey, escrow, copy, head);
      if (opened.kind !== "opened") return refuse({ kind: "escrow-invalid" });
      const record = await data.upsertCiPolicy(trx, copy, {
        id: deps.randomId(),
        policy,
        escrowedKey: escrow.escrowedKey,
        escrowKeyFingerprint: escrow.escrowKeyFingerprint,
        escrowVersion: head.version,
        enabledBy: actor.userId,
        at,
      });
      if (!(await stepUp.record(trx))) return refuse({ kind: "step-up-used" });
      await audit(trx, actor, "vault.ci.enable", copy, head.version, at, {
        ...auditPolicy(policy),
        generation: record.generation,
        stepUp: stepUp.method,
      });
      return { kind: "ok", value: view(record) } as const;
    });
  }

  /** Deletes the copy's policy and its escrow. */
  async function disable(actor: CiActor, target: CopyTarget): Promise<Outcome<true, NotEnabled>> {
    const at = deps.now().toISOString();
    return abortableTransaction(db, async (trx) => {
      const found = await resolve(trx, actor, target, "manage", at);
      if ("kind" in found) return found;
      const deleted = await data.deleteCopyPolicy(trx, found.copy);
      if (deleted === undefined) return { kind: "not-enabled" } as const;
      await audit(trx, actor, "vault.ci.disable", found.copy, found.head.version, at, {
        provider: deleted.policy.provider,
        repository: deleted.policy.repository,
        generation: deleted.generation,
      });
      return { kind: "ok", value: true } as const;
    });
  }

  return { show, enable, disable };
}

/** The CI policies service's interface. */
export type CiPolicyService = ReturnType<typeof createCiPolicyService>;

/**
 * Deletes the policies of the copies an organisation change removes, each with a `vault.ci.disable` audit row that
 * names the change, in its transaction `trx`.
 */
export function removeOrgCopyPolicies(randomId: () => string) {
  return async (trx: Kysely<Database>, event: OrgCopiesRemoved): Promise<void> => {
    const deleted = await data.deleteOrgPolicies(trx, event.orgId, event.vaultId);
    for (const policy of deleted) {
      await insertAudit(trx, {
        id: randomId(),
        userId: event.actorUserId,
        action: "vault.ci.disable",
        vaultId: policy.vaultId,
        orgId: event.orgId,
        version: null,
        createdAt: event.at,
        metadata: {
          provider: policy.provider,
          repository: policy.repository,
          generation: policy.generation,
          cause: event.cause,
          orgId: event.orgId,
        },
      });
    }
  };
}

/** What a member's removal tells the CI slice, in its transaction (the organisations slice's hook, wired in app.ts). */
export interface OrgMemberLeft {
  orgId: string;
  removedUserId: string;
  actorUserId: string;
  /** The organisation's vaults the removed member held a key for. */
  vaultIds: readonly string[];
  at: string;
}

/** What a member's removal did to the organisation's CI policies, for its answer. */
export interface MemberPoliciesOutcome {
  /** The policies the removed member had enabled: deleted. */
  disabled: { vaultId: string; provider: string; repository: string }[];
  /** The policies that remain on the copies of `vaultIds`, by vault id. */
  remaining: Map<string, { provider: string; repository: string; enabledBy: string | null }>;
}

/**
 * Deletes the policies the removed member enabled on the organisation's copies, each with a `vault.ci.disable` audit
 * row (cause `member-removed`), in the removal's transaction `trx`: a policy must not outlive its maker's membership,
 * or their repository would go on pulling, re-escrowed by every rotation of the copy. Answers those and the
 * policies that remain on the vaults the member held, for the remover to judge.
 */
export function removeMemberPolicies(randomId: () => string) {
  return async (trx: Kysely<Database>, event: OrgMemberLeft): Promise<MemberPoliciesOutcome> => {
    const deleted = await data.deleteOrgPoliciesEnabledBy(trx, event.orgId, event.removedUserId);
    for (const policy of deleted) {
      await insertAudit(trx, {
        id: randomId(),
        userId: event.actorUserId,
        action: "vault.ci.disable",
        vaultId: policy.vaultId,
        orgId: event.orgId,
        version: null,
        createdAt: event.at,
        metadata: {
          provider: policy.provider,
          repository: policy.repository,
          generation: policy.generation,
          cause: "member-removed",
          memberUserId: event.removedUserId,
          orgId: event.orgId,
        },
      });
    }
    const remaining = await data.listOrgPolicies(trx, event.orgId, event.vaultIds);
    return {
      disabled: deleted.map(({ vaultId, provider, repository }) => ({ vaultId, provider, repository })),
      remaining: new Map(
        remaining.map((r) => [
          r.copy.vaultId,
          {
            provider: r.policy.provider,
            repository: r.policy.repository,
            enabledBy: r.enabledBy?.email ?? null,
          },
        ]),
      ),
    };
  };
}
