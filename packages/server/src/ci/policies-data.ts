/**
 * Data access of the CI policies and their escrows (ci_policies, docs/ci.md "Policies" and "Escrow"): SQL only, no
 * rules. Every function takes the database or a transaction, so the caller decides what runs atomically; failures
 * come out as DatabaseError (db/query.ts), whose message names the operation and never a value.
 *
 * A policy belongs to one vault copy, and reading that copy's head (its version and blob) is read here too, from
 * the sync and organisation slices' head tables: read only, never written.
 */
import { checkSchema, ciPolicySchema, type CiPolicy } from "@latchkey/core";
import type { Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import { findCopyHead, type CopyHeadRecord, type CopyRef } from "../db/copies.js";
import type { CiPoliciesTable } from "./migration.js";

export { findCopyHead, type CopyHeadRecord };

/** The database or a transaction on it. */
type Db = Kysely<Database>;

/** A policy as stored, its escrow included. */
export interface CiPolicyRecord {
  /** The policy's id: new for every policy made (not for a replacement). */
  id: string;
  /** The copy it is for; an organisation copy's slug is the organisation's current one. */
  copy: CopyRef;
  policy: CiPolicy;
  /** The copy's vault key wrapped for the escrow key. Secret to everyone but the server. */
  escrowedKey: string;
  escrowKeyFingerprint: string;
  escrowVersion: number;
  /** Bumped at every replacement: a CI access token names the id and generation it was issued under. */
  generation: number;
  enabledBy: { userId: string; email: string | null } | null;
  enabledAt: string;
  updatedAt: string;
}

/** What making or replacing a policy writes. */
export interface CiPolicyWrite {
  /** The id the policy gets if the copy has none yet. */
  id: string;
  policy: CiPolicy;
  escrowedKey: string;
  escrowKeyFingerprint: string;
  escrowVersion: number;
  enabledBy: string;
  at: string;
}

type PolicyRow = CiPoliciesTable & { slug: string | null; enabled_by_email: string | null };

function policyColumns(db: Db) {
  return db
    .selectFrom("ci_policies as p")
    .leftJoin("orgs as o", "o.id", "p.org_id")
    .leftJoin("users as u", "u.id", "p.enabled_by")
    .selectAll("p")
    .select(["o.slug", "u.email as enabled_by_email"]);
}

function toRecord(row: PolicyRow): CiPolicyRecord {
  // The table's check and foreign keys make every row one or the other; anything else is a fault of the database.
  let copy: CopyRef;
  if (row.org_id !== null && row.slug !== null)
    copy = { vaultId: row.vault_id, orgId: row.org_id, slug: row.slug };
  else if (row.org_id === null && row.user_id !== null) copy = { vaultId: row.vault_id, userId: row.user_id };
  else throw new Error("a stored CI policy names no copy");
  const branches: unknown = JSON.parse(row.branches);
  const environments: unknown = JSON.parse(row.environments);
  const stored: unknown = {
    provider: row.provider,
    issuer: row.issuer,
    repository: row.repository,
    repositoryId: row.repository_id,
    ownerId: row.owner_id,
    branches,
    environments,
    allowForks: Number(row.allow_forks) === 1,
    protectedRefsOnly: Number(row.protected_refs_only) === 1,
    audience: row.audience,
  };
  // Only a validated policy is ever written: one that no longer reads as one is a fault of the database.
  const checked = checkSchema(ciPolicySchema, stored);
  if (!checked.ok) throw new Error(`a stored CI policy does not read as one: ${checked.message}`);
  return {
    id: row.id,
    copy,
    policy: checked.value,
    escrowedKey: row.escrowed_key,
    escrowKeyFingerprint: row.escrow_key_fingerprint,
    escrowVersion: Number(row.escrow_version),
    generation: Number(row.generation),
    enabledBy: row.enabled_by === null ? null : { userId: row.enabled_by, email: row.enabled_by_email },
    enabledAt: row.enabled_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The policy of the copy a CI job names: the organisation `orgSlug`'s copy of `vaultId`, or without a slug the
 * personal copy of the vault's owner. Undefined when that copy has no policy.
 */
export function findCiPolicy(
  db: Db,
  target: { vaultId: string; orgSlug?: string | undefined },
): Promise<CiPolicyRecord | undefined> {
  return runQuery("find CI policy", async () => {
    const query = policyColumns(db).where("p.vault_id", "=", target.vaultId);
    const row =
      target.orgSlug === undefined
        ? await query.where("p.org_id", "is", null).executeTakeFirst()
        : await query.where("o.slug", "=", target.orgSlug).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  });
}

/** The policy of `copy`, or undefined. */
export function findCopyPolicy(db: Db, copy: CopyRef): Promise<CiPolicyRecord | undefined> {
  return runQuery("find CI policy of copy", async () => {
    const query = policyColumns(db).where("p.vault_id", "=", copy.vaultId);
    const row =
      "orgId" in copy
        ? await query.where("p.org_id", "=", copy.orgId).executeTakeFirst()
        : await query.where("p.org_id", "is", null).where("p.user_id", "=", copy.userId).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  });
}

/** What a push needs of a copy's escrow. */
export interface CopyEscrowRecord {
  id: string;
  escrowedKey: string;
  escrowKeyFingerprint: string;
}

// Every push of every copy asks whether it has a policy: compiled once (db/precompiled.ts).
const personalEscrow = precompile(2, (db, [vaultId, userId]) =>
  db
    .selectFrom("ci_policies")
    .select(["id", "escrowed_key", "escrow_key_fingerprint"])
    .where("vault_id", "=", vaultId!)
    .where("org_id", "is", null)
    .where("user_id", "=", userId!),
);
const orgEscrow = precompile(2, (db, [vaultId, orgId]) =>
  db
    .selectFrom("ci_policies")
    .select(["id", "escrowed_key", "escrow_key_fingerprint"])
    .where("vault_id", "=", vaultId!)
    .where("org_id", "=", orgId!),
);

/** The escrow of `copy`'s policy, or undefined when the copy has none. */
export function findCopyEscrow(db: Db, copy: CopyRef): Promise<CopyEscrowRecord | undefined> {
  return runQuery("find CI escrow", async () => {
    const result =
      "orgId" in copy
        ? await orgEscrow.run(db, [copy.vaultId, copy.orgId])
        : await personalEscrow.run(db, [copy.vaultId, copy.userId]);
    const row = result.rows[0];
    return row === undefined
      ? undefined
      : { id: row.id, escrowedKey: row.escrowed_key, escrowKeyFingerprint: row.escrow_key_fingerprint };
  });
}

/**
 * Records that policy `id`'s escrow opens `version` of its copy: with `replacement`, the escrowed key (and the
 * escrow key it is for) that does, in place of the old one.
 */
export function updateEscrow(
  db: Db,
  id: string,
  version: number,
  at: string,
  replacement?: { escrowedKey: string; escrowKeyFingerprint: string },
): Promise<void> {
  return runQuery("update CI escrow", async () => {
    await db
      .updateTable("ci_policies")
      .set({
        escrow_version: version,
        updated_at: at,
        ...(replacement === undefined
          ? {}
          : {
              escrowed_key: replacement.escrowedKey,
              escrow_key_fingerprint: replacement.escrowKeyFingerprint,
            }),
      })
      .where("id", "=", id)
      .execute();
  });
}

/**
 * Makes `copy`'s policy, or replaces it (one more generation, the same id); answers it as stored. One upsert on
 * the copy's unique index, so two concurrent writes leave one policy.
 */
export function upsertCiPolicy(db: Db, copy: CopyRef, write: CiPolicyWrite): Promise<CiPolicyRecord> {
  return runQuery("write CI policy", async () => {
    const { policy } = write;
    const fields = {
      provider: policy.provider,
      issuer: policy.issuer,
      repository: policy.repository,
      repository_id: policy.repositoryId,
      owner_id: policy.ownerId,
      branches: JSON.stringify(policy.branches),
      environments: JSON.stringify(policy.environments),
      allow_forks: policy.allowForks ? 1 : 0,
      protected_refs_only: policy.protectedRefsOnly ? 1 : 0,
      audience: policy.audience,
      escrowed_key: write.escrowedKey,
      escrow_key_fingerprint: write.escrowKeyFingerprint,
      escrow_version: write.escrowVersion,
      enabled_by: write.enabledBy,
      enabled_at: write.at,
      updated_at: write.at,
    };
    const personal = !("orgId" in copy);
    await db
      .insertInto("ci_policies")
      .values({
        id: write.id,
        vault_id: copy.vaultId,
        user_id: personal ? copy.userId : null,
        org_id: personal ? null : copy.orgId,
        generation: 1,
        ...fields,
      })
      .onConflict((oc) =>
        (personal
          ? oc.column("vault_id").where("org_id", "is", null)
          : oc.columns(["org_id", "vault_id"]).where("org_id", "is not", null)
        ).doUpdateSet((eb) => ({ ...fields, generation: eb(eb.ref("ci_policies.generation"), "+", 1) })),
      )
      .execute();
    const stored = await findCopyPolicy(db, copy);
    if (stored === undefined) throw new Error("the CI policy just written is not there");
    return stored;
  });
}

/** Deletes `copy`'s policy and its escrow; the deleted policy, or undefined when it had none. */
export function deleteCopyPolicy(db: Db, copy: CopyRef): Promise<CiPolicyRecord | undefined> {
  return runQuery("delete CI policy", async () => {
    const found = await findCopyPolicy(db, copy);
    if (found === undefined) return undefined;
    await db.deleteFrom("ci_policies").where("id", "=", found.id).execute();
    return found;
  });
}

/**
 * Deletes the policies (and escrows) of organisation `orgId`'s copies — of `vaultId` only when given; answers the
 * deleted ones' ids and vaults.
 */
export function deleteOrgPolicies(
  db: Db,
  orgId: string,
  vaultId: string | null,
): Promise<{ id: string; vaultId: string; provider: string; repository: string; generation: number }[]> {
  return runQuery("delete organisation CI policies", async () => {
    let query = db.deleteFrom("ci_policies").where("org_id", "=", orgId);
    if (vaultId !== null) query = query.where("vault_id", "=", vaultId);
    const rows = await query.returning(["id", "vault_id", "provider", "repository", "generation"]).execute();
    return rows.map((r) => ({
      id: r.id,
      vaultId: r.vault_id,
      provider: r.provider,
      repository: r.repository,
      generation: Number(r.generation),
    }));
  });
}

/**
 * Deletes the policies (and escrows) of organisation `orgId`'s copies that `userId` enabled; answers the deleted
 * ones, as {@link deleteOrgPolicies} does.
 */
export function deleteOrgPoliciesEnabledBy(
  db: Db,
  orgId: string,
  userId: string,
): Promise<{ id: string; vaultId: string; provider: string; repository: string; generation: number }[]> {
  return runQuery("delete a member's organisation CI policies", async () => {
    const rows = await db
      .deleteFrom("ci_policies")
      .where("org_id", "=", orgId)
      .where("enabled_by", "=", userId)
      .returning(["id", "vault_id", "provider", "repository", "generation"])
      .execute();
    return rows.map((r) => ({
      id: r.id,
      vaultId: r.vault_id,
      provider: r.provider,
      repository: r.repository,
      generation: Number(r.generation),
    }));
  });
}

/** The policies of organisation `orgId`'s copies of `vaultIds`. */
export function listOrgPolicies(
  db: Db,
  orgId: string,
  vaultIds: readonly string[],
): Promise<CiPolicyRecord[]> {
  return runQuery("list organisation CI policies", async () => {
    if (vaultIds.length === 0) return [];
    const rows = await policyColumns(db)
      .where("p.org_id", "=", orgId)
      .where("p.vault_id", "in", [...vaultIds])
      .execute();
    return rows.map(toRecord);
  });
}

/**
 * The head of `copy`, locked until the transaction `trx` ends: a statement that writes nothing new to the row, so
 * a push of the copy waits for the transaction (PostgreSQL: its row lock; SQLite: its write lock) and then sees
 * what it committed. Undefined when the copy does not exist.
 */
export function lockCopyHead(trx: Db, copy: CopyRef): Promise<CopyHeadRecord | undefined> {
  return runQuery("lock copy head for CI", async () => {
    const row =
      "orgId" in copy
        ? await trx
            .updateTable("org_vault_heads")
            .set((eb) => ({ version: eb.ref("version") }))
            .where("vault_id", "=", copy.vaultId)
            .where("org_id", "=", copy.orgId)
            .returning(["version", "encrypted_blob", "schema_json"])
            .executeTakeFirst()
        : await trx
            .updateTable("vault_heads")
            .set((eb) => ({ version: eb.ref("version") }))
            .where("vault_id", "=", copy.vaultId)
            .where("user_id", "=", copy.userId)
            .returning(["version", "encrypted_blob", "schema_json"])
            .executeTakeFirst();
    return row === undefined
      ? undefined
      : { version: Number(row.version), encryptedBlob: row.encrypted_blob, schemaJson: row.schema_json };
  });
}
