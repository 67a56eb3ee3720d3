/**
 * The sync service: business rules of push, pull, rewrap and the audit log, with the dependencies narrowed to
 * what it uses. Callers (routes.ts) have validated the input and authenticated the user; every outcome the
 * client must tell apart is a value here, not an exception.
 */
import type { AuditPageResponse, CiEscrow, VaultSummary } from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertAudit, listAudit } from "../audit/data.js";
import { parseMetadata } from "../audit/metadata.js";
import { readAuditPage, type AuditPageRequest } from "../audit/page.js";
import { Abort, abortable } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import type { EscrowKey } from "../escrow-key.js";
import * as data from "./data.js";
import { createWriter, type Writer } from "./group-commit.js";
import { blobDigest, pushVersion, storedEnvSchema, type HeadStore } from "../vault-copies.js";

/** What the service needs. */
export interface SyncServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** The server's escrow key: a push to a copy with CI must open with its escrow (vault-copies.ts PushOptions). */
  escrowKey?: EscrowKey | undefined;
  /** Where push and rewrap run when not here: the writer thread (writer-thread.ts). */
  writes?: SyncWrites;
  /** The organisations of the user's that hold copies of the vaults (orgs/data.ts, wired in app.ts). */
  orgCopies?: OrgCopiesLookup;
}

/**
 * The slugs of `userId`'s organisations holding a copy of each of `vaultIds` (absent: none); organisations the
 * user is not in are never named.
 */
export type OrgCopiesLookup = (
  db: Kysely<Database>,
  userId: string,
  vaultIds: readonly string[],
) => Promise<Map<string, string[]>>;

/** The service's writes, as another party (the writer thread) can run them. */
export interface SyncWrites {
  push(actor: Actor, vaultId: string, push: ValidPush): Promise<PushOutcome>;
  rewrap(
    actor: Actor,
    vaultId: string,
    request: { wrappedKey: string; version: number },
  ): Promise<RewrapOutcome>;
}

/** A push that passed validation. */
export interface ValidPush {
  encryptedBlob: string;
  /** The bytes encryptedBlob encodes. */
  blobBytes: Uint8Array;
  wrappedKey: string;
  schema: Record<string, unknown> | undefined;
  name: string;
  baseVersion: number;
  /** The vault key escrowed anew for CI (a copy without CI ignores it). */
  escrow?: CiEscrow | undefined;
}

/** The acting user. */
export interface Actor {
  userId: string;
  clientId: string;
}

/** Result of a push. */
export type PushOutcome =
  | { kind: "pushed"; version: number; createdAt: string }
  | { kind: "conflict"; currentVersion: number }
  | { kind: "not-found" }
  /** The copy has CI and the new version opens with neither its escrow nor the push's: nothing was written. */
  | { kind: "escrow-stale" };

/** Result of a rewrap. */
export type RewrapOutcome =
  | { kind: "rewrapped"; version: number }
  | { kind: "conflict"; currentVersion: number }
  | { kind: "not-found" };

/** A vault copy as pulled. */
export interface PulledVault {
  version: number;
  encryptedBlob: string;
  wrappedKey: string;
  schema: Record<string, unknown> | null;
  name: string;
  updatedAt: string;
}

/** One audit entry for the log route. */
export interface AuditLogEntry {
  action: string;
  version: number | null;
  createdAt: string;
  actor: { userId: string; email: string };
  metadata: Record<string, unknown>;
}

/** `body` in the writer's transaction, which an Abort rolls back with its outcome. */
function inTransaction<T extends PushOutcome | RewrapOutcome>(
  writer: Writer,
  body: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return abortable(() => writer.run(body));
}

/** The personal copy of `vaultId` of `userId`, for the versioned push. */
function personalHeads(vaultId: string, userId: string): HeadStore {
  return {
    copy: { vaultId, userId },
    advance: (trx, baseVersion, write) => data.advanceHead(trx, vaultId, userId, baseVersion, write),
    insertFirst: (trx, write) => data.insertFirstHead(trx, vaultId, userId, write),
    currentVersion: (trx) => data.currentVersion(trx, vaultId, userId),
    insertVersion: (trx, record) => data.insertVersion(trx, { vaultId, userId, ...record }),
  };
}

/** Builds the service. */
export function createSyncService(deps: SyncServiceDeps) {
  const { db } = deps;
  const writer = createWriter(db);

  /**
   * Stores `push` as version baseVersion + 1 of the actor's copy, with its history row and audit row, in one
   * transaction; a stale base is a conflict and writes nothing. The first user to push a vault id owns it; for
   * everyone else it does not exist.
   */
  async function push(actor: Actor, vaultId: string, push: ValidPush): Promise<PushOutcome> {
    const at = deps.now().toISOString();
    const versioned = { ...push, digest: blobDigest(push.blobBytes) };
    return inTransaction(writer, async (trx) => {
      if (push.baseVersion === 0) {
        let owner = await data.findVaultOwner(trx, vaultId);
        if (owner === null) owner = await data.claimVault(trx, vaultId, actor.userId, at);
        if (owner !== actor.userId) return { kind: "not-found" };
      }
      const audit = {
        id: deps.randomId(),
        userId: actor.userId,
        action: "vault.push",
        vaultId,
        metadata: { clientId: actor.clientId },
      };
      const heads = personalHeads(vaultId, actor.userId);
      const outcome = await pushVersion(trx, heads, versioned, at, audit, {
        escrowKey: deps.escrowKey,
        wrappedKey: push.wrappedKey,
      });
      switch (outcome.kind) {
        case "pushed":
          return outcome;
        case "taken":
          // Rolls back the claim made above with it.
          throw new Abort({ kind: "conflict", currentVersion: outcome.currentVersion });
        case "escrow-stale":
          // The head has moved: rolled back with it.
          throw new Abort({ kind: "escrow-stale" });
        case "stale": {
          // The conditional update checks the owner too; only now does the outcome need telling apart (absent
          // vault: conflict at 0; someone else's: not found; a stale base: conflict).
          const owner = await data.findVaultOwner(trx, vaultId);
          if (owner === null) return { kind: "conflict", currentVersion: 0 };
          if (owner !== actor.userId) return { kind: "not-found" };
          return { kind: "conflict", currentVersion: await data.currentVersion(trx, vaultId, actor.userId) };
        }
      }
    });
  }

  /** The actor's latest copy of the vault, or null: absent and someone else's look the same. */
  async function pull(actor: Actor, vaultId: string): Promise<PulledVault | null> {
    // Keyed by the actor's own user id: a head row exists only for a vault the actor pushed, so another user's
    // vault is unreachable by construction.
    const head = await data.findHead(db, vaultId, actor.userId);
    if (head === undefined) return null;
    return {
      version: Number(head.version),
      encryptedBlob: head.encrypted_blob,
      wrappedKey: head.wrapped_key,
      schema: head.schema_json === null ? null : storedEnvSchema(head.schema_json),
      name: head.name,
      updatedAt: head.updated_at,
    };
  }

  /** Replaces the wrapped key of the actor's current version (rotate-key), audited, without a new version. */
  async function rewrap(
    actor: Actor,
    vaultId: string,
    request: { wrappedKey: string; version: number },
  ): Promise<RewrapOutcome> {
    const at = deps.now().toISOString();
    return inTransaction(writer, async (trx) => {
      const replaced = await data.replaceWrappedKey(
        trx,
        vaultId,
        actor.userId,
        request.version,
        request.wrappedKey,
        at,
      );
      if (!replaced) {
        const current = await data.currentVersion(trx, vaultId, actor.userId);
        return current === 0 ? { kind: "not-found" } : { kind: "conflict", currentVersion: current };
      }
      await insertAudit(trx, {
        id: deps.randomId(),
        userId: actor.userId,
        action: "vault.rewrap",
        vaultId,
        version: request.version,
        createdAt: at,
        metadata: { clientId: actor.clientId },
      });
      return { kind: "rewrapped", version: request.version };
    });
  }

  /** The newest `limit` audit entries of a vault the actor owns; null when it is not theirs (or absent). */
  async function log(actor: Actor, vaultId: string, limit: number): Promise<AuditLogEntry[] | null> {
    const owner = await data.findVaultOwner(db, vaultId);
    if (owner !== actor.userId) return null;
    const rows = await listAudit(db, vaultId, limit);
    return rows.map((r) => ({
      action: r.action,
      version: r.version,
      createdAt: r.createdAt,
      actor: { userId: r.userId ?? "", email: r.email ?? "" },
      metadata: parseMetadata(r.metadata),
    }));
  }

  /** The actor's personal copies, by name, with their organisations' copies of them. */
  async function vaults(actor: Actor): Promise<VaultSummary[]> {
    const heads = await data.listHeads(db, actor.userId);
    const copies =
      deps.orgCopies === undefined || heads.length === 0
        ? new Map<string, string[]>()
        : await deps.orgCopies(
            db,
            actor.userId,
            heads.map((h) => h.vaultId),
          );
    return heads.map((head) => ({ ...head, orgs: copies.get(head.vaultId) ?? [] }));
  }

  /** A page of the audit log of a vault the actor owns; null when it is not theirs (or absent). */
  async function audit(
    actor: Actor,
    vaultId: string,
    request: AuditPageRequest,
  ): Promise<AuditPageResponse | null> {
    const owner = await data.findVaultOwner(db, vaultId);
    if (owner !== actor.userId) return null;
    return readAuditPage(db, { kind: "vault", vaultId }, request);
  }

  const writes = deps.writes;
  return writes === undefined
    ? { push, pull, rewrap, log, vaults, audit }
    : {
        push: (actor: Actor, vaultId: string, request: ValidPush) => writes.push(actor, vaultId, request),
        pull,
        rewrap: (actor: Actor, vaultId: string, request: { wrappedKey: string; version: number }) =>
          writes.rewrap(actor, vaultId, request),
        log,
        vaults,
        audit,
      };
}

/** The sync service's interface. */
export type SyncService = ReturnType<typeof createSyncService>;
