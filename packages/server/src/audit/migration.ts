/** Migrations of the audit log's table (audit_events), whose rows every slice writes through audit/data.ts. */
import { sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/** Rows read and updated per statement while the environments are filled in. */
const BACKFILL_BATCH = 500;

/**
 * Migration 0017: the audit log read a page at a time (audit/data.ts pageAudit) — newest first by (created_at, id),
 * each page continuing strictly after the last row of the one before, so rows written meanwhile neither repeat nor
 * shift a row out of the pages — and filtered by environment.
 *
 * - `environment`: the environment a row concerns, copied by the writer from its metadata (a CI pull's), so a
 *   filter on it is a plain comparison on both databases rather than JSON read per row. Rows written before are
 *   filled in here by the same rule.
 * - One index per log, each ending in (created_at, id): a personal vault's, an organisation's and an account's
 *   (by actor). The vault's and the organisation's extend the (…, created_at) indexes of 0001 and 0009, which stay
 *   for now: a migration only adds (docs/operations.md, "Upgrades"), and a later one drops them once no release
 *   reads through them.
 */
export const auditPagesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("audit_events").addColumn("environment", "text").execute();
    await backfillEnvironments(db);
    await db.schema
      .createIndex("audit_events_vault_page")
      .on("audit_events")
      .columns(["vault_id", "created_at", "id"])
      .execute();
    await db.schema
      .createIndex("audit_events_org_page")
      .on("audit_events")
      .columns(["org_id", "created_at", "id"])
      .execute();
    await db.schema
      .createIndex("audit_events_user_page")
      .on("audit_events")
      .columns(["user_id", "created_at", "id"])
      .execute();
  },
};

/** Sets `environment` of the rows written before the column, from their metadata as the writer now does. */
async function backfillEnvironments(db: Kysely<unknown>): Promise<void> {
  let after = "";
  for (;;) {
    // Only a metadata object with an "environment" member can name one; JSON.stringify writes it so.
    const rows = await sql<{ id: string; metadata: string }>`
      select id, metadata from audit_events
      where id > ${after} and metadata like ${'%"environment":%'}
      order by id limit ${BACKFILL_BATCH}`.execute(db);
    for (const row of rows.rows) {
      const environment = environmentOf(row.metadata);
      if (environment !== null) {
        await sql`update audit_events set environment = ${environment} where id = ${row.id}`.execute(db);
      }
    }
    if (rows.rows.length < BACKFILL_BATCH) return;
    after = rows.rows[rows.rows.length - 1]!.id;
  }
}

/** metadata.environment when it is a string: the environment an audit row concerns (a CI pull's), else null. */
export function auditEnvironment(metadata: Record<string, unknown>): string | null {
  return typeof metadata.environment === "string" ? metadata.environment : null;
}

/** {@link auditEnvironment} of metadata as stored (JSON text); null when it is not a JSON object. */
function environmentOf(metadata: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(metadata);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  return auditEnvironment(value as Record<string, unknown>);
}
