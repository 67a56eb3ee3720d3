/**
 * Schema migrations, in code (no migration files to ship next to the bundle). Each one is written once with
 * Kysely's schema builder and runs unchanged on SQLite and PostgreSQL; a migration that has shipped is never
 * edited — a change is a new entry at the end of MIGRATIONS.
 */
import { PostgresAdapter, sql, SqliteAdapter, type Kysely } from "kysely";
import {
  DEFAULT_MIGRATION_LOCK_TABLE,
  MIGRATION_LOCK_ID,
  Migrator,
  type Migration,
  type MigrationProvider,
} from "kysely/migration";
import type { Database } from "./schema.js";
import { accountActionCountsMigration, stepUpMigration } from "../api/migration.js";
import { auditPagesMigration } from "../audit/migration.js";
import { ciOidcMigration, ciPoliciesMigration } from "../ci/migration.js";
import { identityMigration, signInLimitsMigration } from "../identity/migration.js";
import { outboxMigration } from "../outbox/migration.js";
import { orgKeyAuthorsMigration, orgsMigration, orgVaultUnsharedMigration } from "../orgs/migration.js";
import { pairingMigration } from "../pairing/migration.js";
import { platformConnectionsMigration } from "../platforms/migration.js";
import { sharingKeysMigration } from "../sharing-keys/migration.js";
import { syncMigration, vaultHeadsByUserMigration } from "../sync/migration.js";

/** Every migration, in order. Names sort in that order too (Kysely runs them by name). */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  // The first slice of issue 6 needs only the server to start and be ready; these tables are the minimum the
  // accounts, sync and audit slices build on, and those slices add their columns and tables in new migrations.
  "0001_initial": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("server_meta")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("users")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("email", "text", (c) => c.notNull().unique())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("audit_events")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.references("users.id"))
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("vault_id", "text")
        .addColumn("version", "integer")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("metadata", "text", (c) => c.notNull().defaultTo("{}"))
        .execute();
      // `latchkey env log` reads the newest entries of one vault.
      await db.schema
        .createIndex("audit_events_vault_time")
        .on("audit_events")
        .columns(["vault_id", "created_at"])
        .execute();
    },
  },
  "0002_identity": identityMigration,
  "0003_sync": syncMigration,
  // A version of what bearer-token authentication reads (tokens, grants, accounts), for the accepted-token cache
  // (db/read-cache.ts): on SQLite, triggers bump it with every change to those tables, from any connection or
  // process, so pushes (which change data_version on every commit) no longer empty that cache. PostgreSQL gets the
  // table but no triggers: nothing is cached there, and a row every sign-in write would lock is not worth having.
  "0004_change_counters": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("change_counters")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "bigint", (c) => c.notNull())
        .execute();
      await sql`insert into change_counters (name, value) values ('identity', 0)`.execute(db);
      if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return;
      for (const table of ["oidc_models", "users"]) {
        for (const event of ["insert", "update", "delete"]) {
          await sql
            .raw(
              `create trigger ${table}_${event}_identity_version after ${event} on ${table} ` +
                `begin update change_counters set value = value + 1 where name = 'identity'; end`,
            )
            .execute(db);
        }
      }
    },
  },
  "0005_sign_in_limits": signInLimitsMigration,
  // Events a client can repeat at will (refused sign-ins) are written as one row per key with a count
  // (audit/data.ts insertAudit), so they cannot grow the table without bound.
  "0006_audit_coalesce": {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable("audit_events")
        .addColumn("count", "integer", (c) => c.notNull().defaultTo(1))
        .execute();
      await db.schema.alterTable("audit_events").addColumn("coalesce_key", "text").execute();
      await db.schema
        .createIndex("audit_events_coalesce")
        .unique()
        .on("audit_events")
        .column("coalesce_key")
        .execute();
    },
  },
  "0007_step_up": stepUpMigration,
  "0008_pairing": pairingMigration,
  "0009_orgs": orgsMigration,
  "0010_sharing_keys": sharingKeysMigration,
  "0011_outbox": outboxMigration,
  "0012_org_vault_unshared": orgVaultUnsharedMigration,
  "0013_account_action_counts": accountActionCountsMigration,
  "0014_org_key_authors": orgKeyAuthorsMigration,
  "0015_ci_oidc": ciOidcMigration,
  "0016_ci_policies": ciPoliciesMigration,
  "0017_audit_pages": auditPagesMigration,
  "0018_vault_heads_by_user": vaultHeadsByUserMigration,
  "0019_platform_connections": platformConnectionsMigration,
};

class InCodeProvider implements MigrationProvider {
  constructor(private readonly migrations: Readonly<Record<string, Migration>>) {}
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve({ ...this.migrations });
  }
}

function migrator(db: Kysely<Database>, migrations: Readonly<Record<string, Migration>>): Migrator {
  return new Migrator({ db, provider: new InCodeProvider(migrations) });
}

/** How the migrator gives way to the serving processes on PostgreSQL; the defaults are the server's. */
export interface MigrateOptions {
  /** How long one statement of a migration waits for a table lock before the migration gives way (ms). */
  lockTimeoutMs?: number;
  /** Tries of one migration (the first and the retries after giving way) before start-up fails. */
  attempts?: number;
  /** Waits between tries; a timer unless a test passes its own. */
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_LOCK_TIMEOUT_MS = 2_000;
const DEFAULT_ATTEMPTS = 10;
/** Backoff between tries: doubling from the first, capped (about a minute over the default attempts). */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 8_000;

/**
 * Runs every pending migration. Several server processes may call it at once and each migration still runs once:
 * on PostgreSQL this process holds Kysely's pg_advisory_lock for the whole run, and on SQLite the one transaction
 * begins IMMEDIATE (sqlite-dialect.ts), so a second process waits for the write lock and then finds nothing
 * pending. Returns the names it ran; throws the first failure.
 *
 * On PostgreSQL, where the previous release keeps serving during a rolling upgrade, each migration is its own
 * transaction (so no lock is held from one migration into the next) and waits at most `lockTimeoutMs` for any lock;
 * when that runs out, or PostgreSQL picks it as a deadlock's victim, the whole migration rolls back and is tried
 * again after a backoff. The serving processes' short transactions go first, and wait at most that long.
 *
 * A database a newer release has already migrated (every migration here has run, plus later ones) is left as it
 * is and this returns []: every migration is expand-then-contract (docs/operations.md, "Upgrades"), so the
 * previous release keeps running on it during a rolling upgrade — and must be able to restart there.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  migrations: Readonly<Record<string, Migration>> = MIGRATIONS,
  options: MigrateOptions = {},
): Promise<string[]> {
  const executed = await executedMigrations(db);
  const known = Object.keys(migrations).sort();
  const last = known.at(-1) ?? "";
  const unknown = executed.filter((name) => !(name in migrations));
  if (
    unknown.length > 0 &&
    unknown.every((name) => name > last) &&
    known.every((n) => executed.includes(n))
  ) {
    return [];
  }
  if (db.getExecutor().adapter instanceof PostgresAdapter) return migratePostgres(db, migrations, options);
  const { error, results } = await migrator(db, migrations).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw migrationFailed(failed, error);
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

function migrationFailed(name: string | undefined, cause: unknown, note = ""): Error {
  return new Error(`Database migration ${name ?? "(before any migration ran)"} failed${note}`, { cause });
}

/** PostgreSQL's codes for a lock wait that ran past lock_timeout, and for the victim of a deadlock. */
const GAVE_WAY = new Set(["55P03", "40P01"]);

function gaveWay(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && GAVE_WAY.has(String(err.code));
}

/** A try of one migration that failed: its name (undefined before any began) and the migrator's error. */
class StepFailed extends Error {
  constructor(
    readonly migrationName: string | undefined,
    readonly failure: unknown,
  ) {
    super("migration step failed", { cause: failure });
  }
}

async function migratePostgres(
  db: Kysely<Database>,
  migrations: Readonly<Record<string, Migration>>,
  options: MigrateOptions,
): Promise<string[]> {
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const yielding = yieldingMigrations(migrations, lockTimeoutMs);
  const adapter = db.getExecutor().adapter;
  const lockOptions = { lockTable: DEFAULT_MIGRATION_LOCK_TABLE, lockRowId: MIGRATION_LOCK_ID };
  return db.connection().execute(async (conn) => {
    // Held across the per-migration transactions (the migrator inside each one takes the same lock again, and
    // lets go of that hold before its transaction commits): a second process waits here, then finds nothing.
    await adapter.acquireMigrationLock(conn, lockOptions);
    try {
      const ran: string[] = [];
      for (;;) {
        const name = await migrateOne(conn, yielding, attempts, sleep);
        if (name === null) return ran;
        ran.push(name);
      }
    } finally {
      // Every hold this session has (the server takes no other advisory lock), so none goes back to the pool.
      await sql`select pg_advisory_unlock_all()`.execute(conn);
    }
  });
}

/** Runs the next pending migration in a transaction of its own, again after giving way; null when none is left. */
async function migrateOne(
  conn: Kysely<Database>,
  migrations: Readonly<Record<string, Migration>>,
  attempts: number,
  sleep: (ms: number) => Promise<void>,
): Promise<string | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await conn.transaction().execute(async (trx) => {
        const { error, results } = await migrator(trx, migrations).migrateUp();
        if (error !== undefined) {
          throw new StepFailed(results?.find((r) => r.status === "Error")?.migrationName, error);
        }
        return results?.find((r) => r.status === "Success")?.migrationName ?? null;
      });
    } catch (err) {
      const step = err instanceof StepFailed ? err : new StepFailed(undefined, err);
      if (!gaveWay(step.failure)) throw migrationFailed(step.migrationName, step.failure);
      if (attempt >= attempts) {
        throw migrationFailed(
          step.migrationName,
          step.failure,
          ` after giving way to other transactions ${attempts} times (a lock it needs stays held: a long ` +
            `transaction, such as a backup, may be running)`,
        );
      }
      await sleep(Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS));
    }
  }
}

/**
 * `migrations`, each first setting this transaction's lock_timeout, and run inside a savepoint: a failed statement
 * would leave the transaction aborted, where the migrator can no longer release its advisory-lock hold and reports
 * that failure instead of the migration's own (whose code tells whether to try again).
 */
function yieldingMigrations(
  migrations: Readonly<Record<string, Migration>>,
  lockTimeoutMs: number,
): Record<string, Migration> {
  const out: Record<string, Migration> = {};
  for (const [name, migration] of Object.entries(migrations)) {
    out[name] = {
      async up(trx: Kysely<unknown>): Promise<void> {
        await sql`select set_config('lock_timeout', ${`${String(lockTimeoutMs)}ms`}, true)`.execute(trx);
        await sql`savepoint migration`.execute(trx);
        try {
          await migration.up(trx);
        } catch (err) {
          await sql`rollback to savepoint migration`.execute(trx);
          throw err;
        }
      },
    };
  }
  return out;
}

/** True when every migration this server knows has run on `db` (what /readyz checks). */
export async function migrationsCurrent(
  db: Kysely<Database>,
  migrations: Readonly<Record<string, Migration>> = MIGRATIONS,
): Promise<boolean> {
  const infos = await migrator(db, migrations).getMigrations();
  return infos.every((m) => m.executedAt !== undefined);
}

/** Names of the migrations `db` records as run, in order; [] for a database never migrated. */
export async function executedMigrations(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((t) => t.name === MIGRATION_TABLE)) return [];
  const rows = await sql<{
    name: string;
  }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** The table where Kysely records the migrations that ran (its default name). */
export const MIGRATION_TABLE = "kysely_migration";
