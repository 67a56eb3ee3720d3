/**
 * The audit log's table (audit_events): the server's one audit writer, which the sync and identity slices both
 * write through, and the reader of a vault's log. SQL only; failures come out as DatabaseError (db/query.ts).
 */
import type { Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import { auditEnvironment } from "./migration.js";

/** The database or a transaction on it. */
type Db = Kysely<Database>;

/**
 * One audit row to write. `metadata` must hold no secret value. A string `metadata.environment` is the environment
 * the event concerns: the writer also stores it in a column of its own, which the paged log filters on.
 */
export interface AuditWrite {
  id: string;
  /** The actor; null when there is none (an email without an account, events of an address). */
  userId: string | null;
  action: string;
  vaultId: string | null;
  /** The organisation the event belongs to (its log shows it); absent or null for a personal event. */
  orgId?: string | null;
  version: number | null;
  createdAt: string;
  metadata: Record<string, unknown>;
  /**
   * For events a client can repeat at will (refused sign-in attempts): every write with the same key adds one to
   * the `count` of a single row instead of adding a row, so nobody can grow the log without bound.
   */
  coalesceKey?: string;
}

/** Writes an audit row (in the caller's transaction, with the change it records). */
export function insertAudit(db: Db, event: AuditWrite): Promise<void> {
  return runQuery("insert audit event", async () => {
    if (event.coalesceKey !== undefined) {
      await db
        .insertInto("audit_events")
        .values({
          id: event.id,
          user_id: event.userId,
          action: event.action,
          vault_id: event.vaultId,
          version: event.version,
          created_at: event.createdAt,
          metadata: JSON.stringify(event.metadata),
          coalesce_key: event.coalesceKey,
          org_id: event.orgId ?? null,
          environment: auditEnvironment(event.metadata),
        })
        .onConflict((oc) =>
          oc
            .column("coalesce_key")
            .doUpdateSet((eb) => ({ count: eb(eb.ref("audit_events.count"), "+", 1) })),
        )
        .execute();
      return;
    }
    await auditInsert.run(db, [
      event.id,
      event.userId,
      event.action,
      event.vaultId,
      event.version,
      event.createdAt,
      JSON.stringify(event.metadata),
      event.orgId ?? null,
      auditEnvironment(event.metadata),
    ]);
  });
}

/** Who did an account-level action, and from which address. */
export interface AuditActor {
  userId: string;
  ip: string;
}

/** Writes the audit row of an account-level action (no vault, no version), with `actor`'s address in its metadata. */
export function insertActorAudit(
  db: Db,
  event: Omit<AuditWrite, "userId" | "vaultId" | "version"> & { actor: AuditActor },
): Promise<void> {
  const { actor, metadata, ...rest } = event;
  return insertAudit(db, {
    ...rest,
    userId: actor.userId,
    vaultId: null,
    version: null,
    metadata: { ...metadata, ip: actor.ip },
  });
}

const auditInsert = precompile(9, (db, s) =>
  db.insertInto("audit_events").values({
    id: s[0]!,
    user_id: s[1]!,
    action: s[2]!,
    vault_id: s[3]!,
    version: s[4] as unknown as number,
    created_at: s[5]!,
    metadata: s[6]!,
    org_id: s[7]!,
    environment: s[8]!,
  }),
);

/** An audit row with its actor's email. */
export interface AuditRow {
  action: string;
  version: number | null;
  createdAt: string;
  userId: string | null;
  email: string | null;
  metadata: string;
}

/** Audit rows with their actors' emails, as a query to narrow. */
function selectLog(db: Db) {
  return db
    .selectFrom("audit_events as a")
    .leftJoin("users as u", "u.id", "a.user_id")
    .select(["a.action", "a.version", "a.created_at", "a.user_id", "u.email", "a.metadata", "a.vault_id"]);
}

/** The newest `limit` rows of a log query, newest first. */
function newestRows(query: ReturnType<typeof selectLog>, limit: number) {
  return (
    query
      // Several events can share a millisecond; a later version, then a rewrap after the push of its version,
      // is the newer one.
      .orderBy("a.created_at", "desc")
      .orderBy("a.version", "desc")
      .orderBy("a.action", "desc")
      .limit(limit)
      .execute()
  );
}

function toAuditRow(r: Awaited<ReturnType<typeof newestRows>>[number]): AuditRow {
  return {
    action: r.action,
    version: r.version === null ? null : Number(r.version),
    createdAt: r.created_at,
    userId: r.user_id,
    email: r.email,
    metadata: r.metadata,
  };
}

/**
 * The newest `limit` audit rows of a personal vault, newest first. An organisation's rows of the same vault id are
 * not among them: they belong to the organisation's log, and the owner of the personal copy may not be a member.
 */
export function listAudit(db: Db, vaultId: string, limit: number): Promise<AuditRow[]> {
  return runQuery("list audit events", async () => {
    const query = selectLog(db).where("a.vault_id", "=", vaultId).where("a.org_id", "is", null);
    return (await newestRows(query, limit)).map(toAuditRow);
  });
}

/** An organisation's audit row: an {@link AuditRow} with the vault it concerns, if any. */
export interface OrgAuditRow extends AuditRow {
  vaultId: string | null;
}

/** The newest `limit` audit rows of an organisation, or of one of its vaults when `vaultId` is given. */
export function listOrgAudit(
  db: Db,
  orgId: string,
  vaultId: string | null,
  limit: number,
): Promise<OrgAuditRow[]> {
  return runQuery("list organisation audit events", async () => {
    let query = selectLog(db).where("a.org_id", "=", orgId);
    if (vaultId !== null) query = query.where("a.vault_id", "=", vaultId);
    return (await newestRows(query, limit)).map((r) => ({ ...toAuditRow(r), vaultId: r.vault_id }));
  });
}

/** The newest version `userId` has an audit row of `action` for, per vault of an organisation, and its time. */
export function latestVersionEvents(
  db: Db,
  orgId: string,
  userId: string,
  action: string,
): Promise<Map<string, { version: number; createdAt: string }>> {
  return runQuery("list audit versions", async () => {
    const rows = await db
      .selectFrom("audit_events")
      .select(["vault_id", "version", "created_at"])
      .where("org_id", "=", orgId)
      .where("user_id", "=", userId)
      .where("action", "=", action)
      .orderBy("version", "asc")
      .execute();
    const latest = new Map<string, { version: number; createdAt: string }>();
    for (const row of rows) {
      if (row.vault_id === null || row.version === null) continue;
      latest.set(row.vault_id, { version: Number(row.version), createdAt: row.created_at });
    }
    return latest;
  });
}

/** Which rows one paged audit log is drawn from. */
export type AuditScope =
  /** A personal vault's: its rows outside any organisation (listAudit's rule). */
  | { kind: "vault"; vaultId: string }
  /** An organisation's: every row it owns, of its vaults and of its membership. */
  | { kind: "org"; orgId: string }
  /** An account's own events: the rows it acted in that concern no vault and no organisation. */
  | { kind: "account"; userId: string };

/** Filters of a paged log, combined with "and"; times are ISO-8601 as toISOString writes them. */
export interface AuditFilter {
  action?: string | undefined;
  userId?: string | undefined;
  vaultId?: string | undefined;
  environment?: string | undefined;
  /** Inclusive. */
  from?: string | undefined;
  /** Exclusive. */
  to?: string | undefined;
}

/** A row's place in the log's order (newest first by created_at, then id): where a page continues from. */
export interface AuditPosition {
  createdAt: string;
  id: string;
}

/** A row of a paged log. */
export interface AuditPageRow extends AuditRow {
  id: string;
  vaultId: string | null;
  environment: string | null;
  count: number;
}

/**
 * Up to `limit` rows of the log `scope`, newest first, that match `filter` and come strictly after `after` in the
 * order (created_at desc, id desc), and the position of the last one when more rows follow it (null otherwise).
 * Keyset, never an offset: a row written while someone pages is before the first page or in none, so no row
 * shows twice and none is skipped, and a page costs the same however deep it is.
 */
export function pageAudit(
  db: Db,
  scope: AuditScope,
  filter: AuditFilter,
  after: AuditPosition | null,
  limit: number,
): Promise<{ rows: AuditPageRow[]; next: AuditPosition | null }> {
  return runQuery("page audit events", async () => {
    let query = db
      .selectFrom("audit_events as a")
      .leftJoin("users as u", "u.id", "a.user_id")
      .select([
        "a.id",
        "a.action",
        "a.version",
        "a.created_at",
        "a.user_id",
        "u.email",
        "a.metadata",
        "a.vault_id",
        "a.environment",
        "a.count",
      ]);
    switch (scope.kind) {
      case "vault":
        query = query.where("a.vault_id", "=", scope.vaultId).where("a.org_id", "is", null);
        break;
      case "org":
        query = query.where("a.org_id", "=", scope.orgId);
        break;
      case "account":
        query = query
          .where("a.user_id", "=", scope.userId)
          .where("a.vault_id", "is", null)
          .where("a.org_id", "is", null);
        break;
    }
    if (filter.action !== undefined) query = query.where("a.action", "=", filter.action);
    if (filter.userId !== undefined) query = query.where("a.user_id", "=", filter.userId);
    if (filter.vaultId !== undefined) query = query.where("a.vault_id", "=", filter.vaultId);
    if (filter.environment !== undefined) query = query.where("a.environment", "=", filter.environment);
    if (filter.from !== undefined) query = query.where("a.created_at", ">=", filter.from);
    if (filter.to !== undefined) query = query.where("a.created_at", "<", filter.to);
    if (after !== null) {
      query = query.where((eb) =>
        eb(eb.refTuple("a.created_at", "a.id"), "<", eb.tuple(after.createdAt, after.id)),
      );
    }
    const found = await query
      .orderBy("a.created_at", "desc")
      .orderBy("a.id", "desc")
      .limit(limit + 1)
      .execute();
    const rows = found.slice(0, limit).map((r): AuditPageRow => ({
      id: r.id,
      action: r.action,
      version: r.version === null ? null : Number(r.version),
      createdAt: r.created_at,
      userId: r.user_id,
      email: r.email,
      metadata: r.metadata,
      vaultId: r.vault_id,
      environment: r.environment,
      count: Number(r.count),
    }));
    const last = rows[rows.length - 1];
    const next =
      found.length > limit && last !== undefined ? { createdAt: last.createdAt, id: last.id } : null;
    return { rows, next };
  });
}

/**
 * Each member's newest `action` row (by version) per vault of an organisation, keyed `vaultId NUL userId`: with
 * org.vault.pull, a member's last pull of each vault (one row per member, vault and version: the first pull of it).
 */
export function latestVersionEventsByMember(
  db: Db,
  orgId: string,
  action: string,
): Promise<Map<string, { version: number; createdAt: string }>> {
  return runQuery("list audit versions by member", async () => {
    const newest = db
      .selectFrom("audit_events")
      .select(["vault_id", "user_id"])
      .select((eb) => eb.fn.max("version").as("version"))
      .where("org_id", "=", orgId)
      .where("action", "=", action)
      .groupBy(["vault_id", "user_id"])
      .as("n");
    const rows = await db
      .selectFrom("audit_events as a")
      .innerJoin(newest, (join) =>
        join
          .onRef("n.vault_id", "=", "a.vault_id")
          .onRef("n.user_id", "=", "a.user_id")
          .onRef("n.version", "=", "a.version"),
      )
      .select(["a.vault_id", "a.user_id", "a.version", "a.created_at"])
      .where("a.org_id", "=", orgId)
      .where("a.action", "=", action)
      .orderBy("a.created_at", "desc")
      .execute();
    const latest = new Map<string, { version: number; createdAt: string }>();
    for (const row of rows) {
      if (row.vault_id === null || row.user_id === null || row.version === null) continue;
      // Were there two rows of one version (two first pulls at once before they were coalesced), the earlier one
      // is set last and kept: the first pull of that version.
      latest.set(`${row.vault_id}\u0000${row.user_id}`, {
        version: Number(row.version),
        createdAt: row.created_at,
      });
    }
    return latest;
  });
}
