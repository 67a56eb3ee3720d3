/**
 * Data access of the organisations slice: SQL only, no rules. Every function takes the database or a transaction,
 * so the service decides what runs atomically; failures come out as DatabaseError (db/query.ts). Each state move is
 * one conditional statement that moves nothing when its condition no longer holds. The audit rows are
 * audit/data.ts's.
 */
import type { OrgRole } from "@latchkey/core";
import { sql, type ExpressionBuilder, type Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { HeadWrite } from "../db/heads.js";
import type { OrgVaultHeadsTable, OrgsTable, VaultOrgKeysTable } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** At most this many ids go into one `in (...)` list or one multi-row insert (SQLite's limit on bound values). */
const ROWS_PER_STATEMENT = 500;

/** The tables keyed by an organisation's copy of a vault. */
type CopyTable = "org_vault_heads" | "org_vault_unshared" | "org_vault_versions" | "vault_org_keys";

/** The condition "the row belongs to the organisation's copy of the vault", for `.where(...)` on any CopyTable. */
function ofCopy(vaultId: string, orgId: string) {
  return (eb: ExpressionBuilder<Database, CopyTable>) =>
    eb.and([eb("vault_id", "=", vaultId), eb("org_id", "=", orgId)]);
}

/** The version in `table`'s row of the organisation's copy (its head, or what it was unshared at); undefined if none. */
function copyVersion(
  db: Db,
  table: "org_vault_heads" | "org_vault_unshared",
  vaultId: string,
  orgId: string,
): Promise<number | undefined> {
  return db
    .selectFrom(table)
    .select("version")
    .where(ofCopy(vaultId, orgId))
    .executeTakeFirst()
    .then((row) => (row === undefined ? undefined : Number(row.version)));
}

/** An organisation's row. */
export type OrgRow = OrgsTable;

/** Creates an organisation; false, writing nothing, when its slug is taken. */
export function insertOrg(db: Db, org: OrgRow): Promise<boolean> {
  return runQuery("insert organisation", async () => {
    const rows = await db
      .insertInto("orgs")
      .values(org)
      .onConflict((oc) => oc.column("slug").doNothing())
      .returning("id")
      .execute();
    return rows.length === 1;
  });
}

/** The organisation with `slug` and the role `userId` has in it (null when not a member); undefined if none. */
export function findOrgFor(
  db: Db,
  slug: string,
  userId: string,
): Promise<{ org: OrgRow; role: OrgRole | null } | undefined> {
  return runQuery("find organisation", async () => {
    const row = await db
      .selectFrom("orgs as o")
      .leftJoin("org_members as m", (join) =>
        join.onRef("m.org_id", "=", "o.id").on("m.user_id", "=", userId),
      )
      .select(["o.id", "o.slug", "o.name", "o.created_at", "o.updated_at", "m.role"])
      .where("o.slug", "=", slug)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const { role, ...org } = row;
    return { org, role: role ?? null };
  });
}

/**
 * Takes the organisation's row lock for the rest of `trx` (an UPDATE of its `updated_at`), so that changes of one
 * organisation's members and keys run one after another on PostgreSQL: each reads what the one before committed.
 * SQLite runs one write transaction at a time anyway. False when the organisation is gone.
 */
export function lockOrg(db: Db, orgId: string, at: string): Promise<boolean> {
  return runQuery("lock organisation", async () => {
    const rows = await db
      .updateTable("orgs")
      .set({ updated_at: at })
      .where("id", "=", orgId)
      .returning("id")
      .execute();
    return rows.length === 1;
  });
}

/** The role of `userId` in the organisation, or null. */
export function findRole(db: Db, orgId: string, userId: string): Promise<OrgRole | null> {
  return runQuery("find member role", async () => {
    const row = await db
      .selectFrom("org_members")
      .select("role")
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return row?.role ?? null;
  });
}

/** One of a user's organisations. */
export interface UserOrgRow {
  slug: string;
  name: string;
  role: OrgRole;
  createdAt: string;
}

/** The organisations `userId` is a member of, by slug. */
export function listUserOrgs(db: Db, userId: string): Promise<UserOrgRow[]> {
  return runQuery("list user organisations", async () => {
    const rows = await db
      .selectFrom("org_members as m")
      .innerJoin("orgs as o", "o.id", "m.org_id")
      .select(["o.slug", "o.name", "m.role", "o.created_at"])
      .where("m.user_id", "=", userId)
      .orderBy("o.slug")
      .execute();
    return rows.map((r) => ({ slug: r.slug, name: r.name, role: r.role, createdAt: r.created_at }));
  });
}

/** How many members and vaults the organisation has. */
export function countOrg(db: Db, orgId: string): Promise<{ members: number; vaults: number }> {
  return runQuery("count organisation", async () => {
    const members = await db
      .selectFrom("org_members")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("org_id", "=", orgId)
      .executeTakeFirstOrThrow();
    const vaults = await db
      .selectFrom("org_vault_heads")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("org_id", "=", orgId)
      .executeTakeFirstOrThrow();
    return { members: Number(members.n), vaults: Number(vaults.n) };
  });
}

/** A member with their account's email. */
export interface MemberRow {
  userId: string;
  email: string;
  role: OrgRole;
  addedAt: string;
}

/** The organisation's members with their emails, as a query to narrow or order. */
function selectMembers(db: Db, orgId: string) {
  return db
    .selectFrom("org_members as m")
    .innerJoin("users as u", "u.id", "m.user_id")
    .select(["m.user_id", "u.email", "m.role", "m.added_at"])
    .where("m.org_id", "=", orgId);
}

function toMemberRow(r: { user_id: string; email: string; role: OrgRole; added_at: string }): MemberRow {
  return { userId: r.user_id, email: r.email, role: r.role, addedAt: r.added_at };
}

/** The organisation's members, by email. */
export function listMembers(db: Db, orgId: string): Promise<MemberRow[]> {
  return runQuery("list members", async () => {
    const rows = await selectMembers(db, orgId).orderBy("u.email").execute();
    return rows.map(toMemberRow);
  });
}

/** One member, or undefined. */
export function findMember(db: Db, orgId: string, userId: string): Promise<MemberRow | undefined> {
  return runQuery("find member", async () => {
    const r = await selectMembers(db, orgId).where("m.user_id", "=", userId).executeTakeFirst();
    return r === undefined ? undefined : toMemberRow(r);
  });
}

/** The id of the account with this (normalized) email, or undefined. Reads no credential column. */
export function findUserIdByEmail(db: Db, email: string): Promise<string | undefined> {
  return runQuery("find account id", async () => {
    const row = await db.selectFrom("users").select("id").where("email", "=", email).executeTakeFirst();
    return row?.id;
  });
}

/** Adds a member; false, writing nothing, when they are one already. */
export function insertMember(
  db: Db,
  member: { orgId: string; userId: string; role: OrgRole; addedAt: string },
): Promise<boolean> {
  return runQuery("insert member", async () => {
    const rows = await db
      .insertInto("org_members")
      .values({ org_id: member.orgId, user_id: member.userId, role: member.role, added_at: member.addedAt })
      .onConflict((oc) => oc.columns(["org_id", "user_id"]).doNothing())
      .returning("user_id")
      .execute();
    return rows.length === 1;
  });
}

/** The condition "the member is no owner, or another owner remains", for the statements that demote or remove. */
function anotherOwnerRemains(orgId: string, userId: string) {
  return sql<boolean>`(role <> 'owner' or exists (select 1 from org_members o2 where o2.org_id = ${orgId} and o2.role = 'owner' and o2.user_id <> ${userId}))`;
}

/**
 * Sets a member's role, unless it would take the organisation's last owner away (a new role other than owner for
 * the only owner). False, changing nothing, when the member is gone or is that last owner.
 */
export function setRole(db: Db, orgId: string, userId: string, role: OrgRole): Promise<boolean> {
  return runQuery("set member role", async () => {
    let update = db
      .updateTable("org_members")
      .set({ role })
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId);
    if (role !== "owner") update = update.where(anotherOwnerRemains(orgId, userId));
    const rows = await update.returning("user_id").execute();
    return rows.length === 1;
  });
}

/** Removes a member unless they are the organisation's last owner; false, changing nothing, otherwise. */
export function deleteMember(db: Db, orgId: string, userId: string): Promise<boolean> {
  return runQuery("delete member", async () => {
    const rows = await db
      .deleteFrom("org_members")
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .where(anotherOwnerRemains(orgId, userId))
      .returning("user_id")
      .execute();
    return rows.length === 1;
  });
}

/** One organisation vault a member holds a wrapped key for. */
export interface KeyedVault {
  vaultId: string;
  name: string;
  version: number;
}

/** Each wrapped key (`k`) with the head of the organisation copy it opens (`h`), as a query to narrow. */
function selectKeyedHeads(db: Db) {
  return db
    .selectFrom("vault_org_keys as k")
    .innerJoin("org_vault_heads as h", (join) =>
      join.onRef("h.vault_id", "=", "k.vault_id").onRef("h.org_id", "=", "k.org_id"),
    );
}

/** The organisation vaults `userId` holds a wrapped key for, by vault id. */
export function listKeyedVaults(db: Db, orgId: string, userId: string): Promise<KeyedVault[]> {
  return runQuery("list keyed vaults", async () => {
    const rows = await selectKeyedHeads(db)
      .select(["h.vault_id", "h.name", "h.version"])
      .where("k.org_id", "=", orgId)
      .where("k.user_id", "=", userId)
      .orderBy("h.vault_id")
      .execute();
    return rows.map((r) => ({ vaultId: r.vault_id, name: r.name, version: Number(r.version) }));
  });
}

/** Deletes every wrapped key of `userId` in the organisation; returns how many. */
export function deleteMemberKeys(db: Db, orgId: string, userId: string): Promise<number> {
  return runQuery("delete member keys", async () => {
    const result = await db
      .deleteFrom("vault_org_keys")
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  });
}

/** A wrapped key of one user, with the organisation vault it opens. */
export interface UserKey {
  orgId: string;
  slug: string;
  vaultId: string;
  vaultName: string;
}

/** Every organisation vault `userId` holds a wrapped key for, by organisation slug and vault id. */
export function listUserKeys(db: Db, userId: string): Promise<UserKey[]> {
  return runQuery("list user keys", async () => {
    const rows = await selectKeyedHeads(db)
      .innerJoin("orgs as o", "o.id", "k.org_id")
      .select(["k.org_id", "o.slug", "k.vault_id", "h.name"])
      .where("k.user_id", "=", userId)
      .orderBy("o.slug")
      .orderBy("k.vault_id")
      .execute();
    return rows.map((r) => ({ orgId: r.org_id, slug: r.slug, vaultId: r.vault_id, vaultName: r.name }));
  });
}

/** Deletes every wrapped key of `userId` in every organisation (their sharing key changed); returns how many. */
export function deleteUserKeys(db: Db, userId: string): Promise<number> {
  return runQuery("delete user keys", async () => {
    const result = await db.deleteFrom("vault_org_keys").where("user_id", "=", userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  });
}

/** The e-mails of the members of each of `orgIds` with one of `roles`: who hears of changes to the organisation. */
export function orgNoticeRecipients(
  db: Db,
  orgIds: readonly string[],
  roles: readonly OrgRole[],
): Promise<{ orgId: string; slug: string; emails: string[] }[]> {
  return runQuery("list organisation notice recipients", async () => {
    const unique = [...new Set(orgIds)];
    const byOrg = new Map<string, { orgId: string; slug: string; emails: string[] }>();
    for (let start = 0; start < unique.length; start += ROWS_PER_STATEMENT) {
      const rows = await db
        .selectFrom("org_members as m")
        .innerJoin("orgs as o", "o.id", "m.org_id")
        .innerJoin("users as u", "u.id", "m.user_id")
        .select(["m.org_id", "o.slug", "u.email"])
        .where("m.org_id", "in", unique.slice(start, start + ROWS_PER_STATEMENT))
        .where("m.role", "in", roles)
        .orderBy("o.slug")
        .orderBy("u.email")
        .execute();
      for (const row of rows) {
        const entry = byOrg.get(row.org_id) ?? { orgId: row.org_id, slug: row.slug, emails: [] };
        entry.emails.push(row.email);
        byOrg.set(row.org_id, entry);
      }
    }
    return [...byOrg.values()];
  });
}

/** Deletes the organisation and everything of it but its audit rows; returns how many members and vaults went. */
export function deleteOrg(db: Db, orgId: string): Promise<{ members: number; vaults: number }> {
  return runQuery("delete organisation", async () => {
    await db.deleteFrom("vault_org_keys").where("org_id", "=", orgId).execute();
    await db.deleteFrom("org_vault_versions").where("org_id", "=", orgId).execute();
    await db.deleteFrom("org_vault_unshared").where("org_id", "=", orgId).execute();
    const vaults = await db.deleteFrom("org_vault_heads").where("org_id", "=", orgId).executeTakeFirst();
    const members = await db.deleteFrom("org_members").where("org_id", "=", orgId).executeTakeFirst();
    await db.deleteFrom("orgs").where("id", "=", orgId).execute();
    return { members: Number(members.numDeletedRows), vaults: Number(vaults.numDeletedRows) };
  });
}

/** The head row of an organisation's copy of a vault. */
export type OrgHeadRow = OrgVaultHeadsTable;

/** The organisation's copies, by vault id, without their blobs. */
export function listOrgVaults(
  db: Db,
  orgId: string,
): Promise<{ vaultId: string; name: string; version: number; updatedAt: string }[]> {
  return runQuery("list organisation vaults", async () => {
    const rows = await db
      .selectFrom("org_vault_heads")
      .select(["vault_id", "name", "version", "updated_at"])
      .where("org_id", "=", orgId)
      .orderBy("vault_id")
      .execute();
    return rows.map((r) => ({
      vaultId: r.vault_id,
      name: r.name,
      version: Number(r.version),
      updatedAt: r.updated_at,
    }));
  });
}

/** The audit action of a member's first pull of a version: one row per (member, vault, version). */
export const PULL_ACTION = "org.vault.pull";

/** The coalesce key of the pull audit row of (organisation, vault, member, version): at most one row each. */
export function pullAuditKey(orgId: string, vaultId: string, userId: string, version: number): string {
  return `${PULL_ACTION}:${orgId}:${vaultId}:${userId}:${version}`;
}

/** The key wrapped for a member, with who wrapped it. */
export interface PulledKey {
  wrappedKey: string;
  fingerprint: string;
  /** The share that wrote it; null for a row written before the server recorded sharers. */
  author: {
    userId: string;
    /** Null when the account is gone. */
    email: string | null;
    /** Their role in the organisation now; null when they are no longer a member. */
    role: OrgRole | null;
    publicKey: string;
    keyVersion: number;
  } | null;
}

/** Whether a wrapped-key row records its sharer; rows written before migration 0014 do not. */
function hasAuthor<R extends Pick<VaultOrgKeysTable, "wrapped_by" | "wrapped_by_key" | "key_version">>(
  row: R,
): row is R & { wrapped_by: string; wrapped_by_key: string; key_version: number } {
  return row.wrapped_by !== null && row.wrapped_by_key !== null && row.key_version !== null;
}

/** What a pull reads, in one statement: the caller's role, the copy, their wrapped key, whether this pull is new. */
export interface PullRead {
  orgId: string;
  /** The caller's role; null when not a member. */
  role: OrgRole | null;
  /** The organisation's copy; undefined when it has none. */
  head: OrgHeadRow | undefined;
  /** The key wrapped for the caller; null when the copy holds none. */
  key: PulledKey | null;
  /** Whether the caller's pull of this version is audited already. */
  recorded: boolean;
}

// Compiled once (db/precompiled.ts): a pull is the hot path. Slots: slug, vault id, user id.
const pullRead = precompile(3, (db, [slug, vaultId, userId]) =>
  db
    .selectFrom("orgs as o")
    .leftJoin("org_members as m", (join) => join.onRef("m.org_id", "=", "o.id").on("m.user_id", "=", userId!))
    .leftJoin("org_vault_heads as h", (join) =>
      join.onRef("h.org_id", "=", "o.id").on("h.vault_id", "=", vaultId!),
    )
    .leftJoin("vault_org_keys as k", (join) =>
      join.onRef("k.org_id", "=", "o.id").on("k.vault_id", "=", vaultId!).on("k.user_id", "=", userId!),
    )
    .leftJoin("users as s", "s.id", "k.wrapped_by")
    // The sharer's role now: a member's CLI opens only a key wrapped by a current maintainer or stronger.
    .leftJoin("org_members as sm", (join) =>
      join.onRef("sm.org_id", "=", "o.id").onRef("sm.user_id", "=", "k.wrapped_by"),
    )
    // The coalesce key of the caller's pull audit row for this version, spelt as pullAuditKey spells it.
    .leftJoin("audit_events as a", (join) =>
      join.on(
        "a.coalesce_key",
        "=",
        sql<string>`${`${PULL_ACTION}:`} || o.id || ':' || h.vault_id || ':' || m.user_id || ':' || h.version`,
      ),
    )
    .select([
      "o.id as org_id",
      "m.role",
      "h.version",
      "h.encrypted_blob",
      "h.schema_json",
      "h.name",
      "h.updated_at",
      "k.wrapped_key",
      "k.key_fingerprint",
      "k.wrapped_by",
      "k.wrapped_by_key",
      "k.key_version",
      "s.email as wrapped_by_email",
      "sm.role as wrapped_by_role",
      "a.id as audit_id",
    ])
    .where("o.slug", "=", slug!),
);

/**
 * Everything a pull of `vaultId` from the organisation `slug` by `userId` needs, in one statement (a pull is the
 * hot path; on PostgreSQL every statement is a round trip). Undefined when no organisation has the slug.
 */
export function readPull(
  db: Db,
  slug: string,
  vaultId: string,
  userId: string,
): Promise<PullRead | undefined> {
  return runQuery("read organisation pull", async () => {
    const row = (await pullRead.run(db, [slug, vaultId, userId])).rows[0];
    if (row === undefined) return undefined;
    const head =
      row.version === null || row.encrypted_blob === null || row.name === null || row.updated_at === null
        ? undefined
        : {
            vault_id: vaultId,
            org_id: row.org_id,
            version: row.version,
            encrypted_blob: row.encrypted_blob,
            schema_json: row.schema_json,
            name: row.name,
            updated_at: row.updated_at,
          };
    const author = hasAuthor(row)
      ? {
          userId: row.wrapped_by,
          email: row.wrapped_by_email,
          role: row.wrapped_by_role ?? null,
          publicKey: row.wrapped_by_key,
          keyVersion: Number(row.key_version),
        }
      : null;
    const key =
      row.wrapped_key === null || row.key_fingerprint === null
        ? null
        : { wrappedKey: row.wrapped_key, fingerprint: row.key_fingerprint, author };
    return { orgId: row.org_id, role: row.role ?? null, head, key, recorded: row.audit_id !== null };
  });
}

/** Whether the organisation has a copy of the vault. */
export function orgVaultExists(db: Db, vaultId: string, orgId: string): Promise<boolean> {
  return runQuery(
    "find organisation vault",
    async () => (await copyVersion(db, "org_vault_heads", vaultId, orgId)) !== undefined,
  );
}

/** Records an acknowledged version of the organisation's copy; the primary key refuses a second row for it. */
export function insertOrgVersion(
  db: Db,
  vaultId: string,
  orgId: string,
  record: { version: number; blobSha256: string; blobSize: number; createdAt: string },
): Promise<void> {
  return runQuery("insert organisation vault version", async () => {
    await db
      .insertInto("org_vault_versions")
      .values({
        vault_id: vaultId,
        org_id: orgId,
        version: record.version,
        blob_sha256: record.blobSha256,
        blob_size: record.blobSize,
        created_at: record.createdAt,
      })
      .execute();
  });
}

/** The version of the organisation's copy; 0 when it has none. */
export function currentOrgVersion(db: Db, vaultId: string, orgId: string): Promise<number> {
  return runQuery(
    "read organisation vault version",
    async () => (await copyVersion(db, "org_vault_heads", vaultId, orgId)) ?? 0,
  );
}

/**
 * Version 1 of the organisation's copy; false, writing nothing, when it exists or was unshared (a share continues
 * an unshared copy from its last version instead: resumeOrgHead).
 */
export function insertFirstOrgHead(
  db: Db,
  vaultId: string,
  orgId: string,
  write: HeadWrite,
): Promise<boolean> {
  return runQuery("insert organisation vault head", async () => {
    // INSERT … SELECT … WHERE NOT EXISTS: one conditional statement. The version is a literal, since PostgreSQL
    // would read an untyped parameter in a SELECT list as text, which a bigint column refuses.
    const rows = await db
      .insertInto("org_vault_heads")
      .columns(["vault_id", "org_id", "version", "encrypted_blob", "schema_json", "name", "updated_at"])
      .expression(
        db
          .selectNoFrom([
            sql<string>`${vaultId}`.as("vault_id"),
            sql<string>`${orgId}`.as("org_id"),
            sql.lit(1).as("version"),
            sql<string>`${write.encryptedBlob}`.as("encrypted_blob"),
            sql<string | null>`${write.schemaJson ?? null}`.as("schema_json"),
            sql<string>`${write.name}`.as("name"),
            sql<string>`${write.updatedAt}`.as("updated_at"),
          ])
          .where((eb) =>
            eb.not(
              eb.exists(eb.selectFrom("org_vault_unshared").select("version").where(ofCopy(vaultId, orgId))),
            ),
          ),
      )
      .onConflict((oc) => oc.columns(["vault_id", "org_id"]).doNothing())
      .returning("version")
      .execute();
    return rows.length === 1;
  });
}

/**
 * Shares an unshared copy again as version `baseVersion + 1`, if it was unshared at `baseVersion`: its unshared
 * row goes (the conditional statement) and the head comes back one version above. False, writing nothing, otherwise.
 */
export function resumeOrgHead(
  db: Db,
  vaultId: string,
  orgId: string,
  baseVersion: number,
  write: HeadWrite,
): Promise<boolean> {
  return runQuery("resume organisation vault head", async () => {
    const gone = await db
      .deleteFrom("org_vault_unshared")
      .where(ofCopy(vaultId, orgId))
      .where("version", "=", baseVersion)
      .returning("version")
      .execute();
    if (gone.length !== 1) return false;
    await db
      .insertInto("org_vault_heads")
      .values({
        vault_id: vaultId,
        org_id: orgId,
        version: baseVersion + 1,
        encrypted_blob: write.encryptedBlob,
        schema_json: write.schemaJson ?? null,
        name: write.name,
        updated_at: write.updatedAt,
      })
      .execute();
    return true;
  });
}

/**
 * The version a share must continue from: the copy's, or the one it was unshared at; 0 when there was never a
 * copy. (A push continues only a shared copy: currentOrgVersion.)
 */
export function lastOrgVersion(db: Db, vaultId: string, orgId: string): Promise<number> {
  return runQuery(
    "read organisation vault last version",
    async () =>
      (await copyVersion(db, "org_vault_heads", vaultId, orgId)) ??
      (await copyVersion(db, "org_vault_unshared", vaultId, orgId)) ??
      0,
  );
}

/**
 * From `baseVersion` to the next in one conditional UPDATE: on PostgreSQL a concurrent writer's row lock makes it
 * wait and re-check the version against the committed row, so two pushes from one base never both succeed.
 */
export function advanceOrgHead(
  db: Db,
  vaultId: string,
  orgId: string,
  baseVersion: number,
  write: HeadWrite,
): Promise<boolean> {
  return runQuery("advance organisation vault head", async () => {
    const rows = await db
      .updateTable("org_vault_heads")
      .set({
        version: baseVersion + 1,
        encrypted_blob: write.encryptedBlob,
        ...(write.schemaJson === undefined ? {} : { schema_json: write.schemaJson }),
        name: write.name,
        updated_at: write.updatedAt,
      })
      .where(ofCopy(vaultId, orgId))
      .where("version", "=", baseVersion)
      .returning("version")
      .execute();
    return rows.length === 1;
  });
}

/** A wrapped key as stored. */
export interface KeyWrite {
  userId: string;
  wrappedKey: string;
  fingerprint: string;
}

/** Who wrapped the keys of a share: the sharer, their registered public key, and the version the share made. */
export interface KeyAuthor {
  userId: string;
  publicKey: string;
  keyVersion: number;
}

/** Replaces every wrapped key of the organisation's copy by `keys`, all wrapped by `author`; returns how many it had. */
export function replaceKeys(
  db: Db,
  vaultId: string,
  orgId: string,
  keys: readonly KeyWrite[],
  author: KeyAuthor,
  at: string,
): Promise<number> {
  return runQuery("replace wrapped keys", async () => {
    const removed = await db.deleteFrom("vault_org_keys").where(ofCopy(vaultId, orgId)).executeTakeFirst();
    for (let start = 0; start < keys.length; start += ROWS_PER_STATEMENT) {
      await db
        .insertInto("vault_org_keys")
        .values(
          keys.slice(start, start + ROWS_PER_STATEMENT).map((k) => ({
            vault_id: vaultId,
            org_id: orgId,
            user_id: k.userId,
            wrapped_key: k.wrappedKey,
            key_fingerprint: k.fingerprint,
            created_at: at,
            wrapped_by: author.userId,
            wrapped_by_key: author.publicKey,
            key_version: author.keyVersion,
          })),
        )
        .execute();
    }
    return Number(removed.numDeletedRows);
  });
}

/**
 * Deletes the organisation's copy, its history and its wrapped keys, keeping only the version it had (in
 * org_vault_unshared, for a later share to continue from); returns how many keys went and that version, or null
 * when the organisation has no copy.
 */
export function deleteOrgVault(
  db: Db,
  vaultId: string,
  orgId: string,
  at: string,
): Promise<{ wrappedKeysRemoved: number; version: number } | null> {
  return runQuery("delete organisation vault", async () => {
    const keys = await db.deleteFrom("vault_org_keys").where(ofCopy(vaultId, orgId)).executeTakeFirst();
    await db.deleteFrom("org_vault_versions").where(ofCopy(vaultId, orgId)).execute();
    const head = await db
      .deleteFrom("org_vault_heads")
      .where(ofCopy(vaultId, orgId))
      .returning("version")
      .executeTakeFirst();
    if (head === undefined) return null;
    const version = Number(head.version);
    await db
      .insertInto("org_vault_unshared")
      .values({ vault_id: vaultId, org_id: orgId, version, unshared_at: at })
      // Never both a head and this row (a share that continues the copy deletes it); were one left, the head's
      // version is the later one.
      .onConflict((oc) => oc.columns(["vault_id", "org_id"]).doUpdateSet({ version, unshared_at: at }))
      .execute();
    return { wrappedKeysRemoved: Number(keys.numDeletedRows), version };
  });
}

/**
 * Every wrapped key's (vault, member, fingerprint) in the organisation, for the member list, and whether the row
 * records who wrapped it (a pull refuses one that does not).
 */
export function listKeyFingerprints(
  db: Db,
  orgId: string,
): Promise<{ vaultId: string; userId: string; fingerprint: string; authored: boolean }[]> {
  return runQuery("list wrapped key fingerprints", async () => {
    const rows = await db
      .selectFrom("vault_org_keys")
      .select(["vault_id", "user_id", "key_fingerprint", "wrapped_by", "wrapped_by_key", "key_version"])
      .where("org_id", "=", orgId)
      .execute();
    return rows.map((r) => ({
      vaultId: r.vault_id,
      userId: r.user_id,
      fingerprint: r.key_fingerprint,
      authored: hasAuthor(r),
    }));
  });
}

/** The roles of `userIds` in the organisation (those not members are absent). */
export function findRoles(db: Db, orgId: string, userIds: readonly string[]): Promise<Map<string, OrgRole>> {
  return runQuery("find member roles", async () => {
    const found = new Map<string, OrgRole>();
    const unique = [...new Set(userIds)];
    for (let start = 0; start < unique.length; start += ROWS_PER_STATEMENT) {
      const rows = await db
        .selectFrom("org_members")
        .select(["user_id", "role"])
        .where("org_id", "=", orgId)
        .where("user_id", "in", unique.slice(start, start + ROWS_PER_STATEMENT))
        .execute();
      for (const row of rows) found.set(row.user_id, row.role);
    }
    return found;
  });
}

/**
 * The slugs of the organisations `userId` is a member of that hold a copy of each of `vaultIds`, by slug; a vault
 * no such organisation holds is absent. Organisations the user is not in are never named.
 */
export function listMemberCopies(
  db: Db,
  userId: string,
  vaultIds: readonly string[],
): Promise<Map<string, string[]>> {
  return runQuery("list member organisation copies", async () => {
    const copies = new Map<string, string[]>();
    const unique = [...new Set(vaultIds)];
    for (let start = 0; start < unique.length; start += ROWS_PER_STATEMENT) {
      const rows = await db
        .selectFrom("org_vault_heads as h")
        .innerJoin("org_members as m", (join) =>
          join.onRef("m.org_id", "=", "h.org_id").on("m.user_id", "=", userId),
        )
        .innerJoin("orgs as o", "o.id", "h.org_id")
        .select(["h.vault_id", "o.slug"])
        .where("h.vault_id", "in", unique.slice(start, start + ROWS_PER_STATEMENT))
        .orderBy("o.slug")
        .execute();
      for (const row of rows) copies.set(row.vault_id, [...(copies.get(row.vault_id) ?? []), row.slug]);
    }
    return copies;
  });
}
