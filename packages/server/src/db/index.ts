/**
 * Opens the server's database: PostgreSQL when DATABASE_URL says so, otherwise a SQLite file in the data
 * directory. Callers get a Kysely instance and never learn which; the schema is the same on both.
 */
import { closeSync, constants, fchmodSync, openSync } from "node:fs";
import { mkdir, chmod } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Kysely, type Dialect } from "kysely";
import type { PoolStats } from "./postgres.js";
import type { Database } from "./schema.js";
import { NodeSqliteDialect, SqliteChangeWatch } from "./sqlite-dialect.js";

export type { Database } from "./schema.js";

/** Where the database lives. */
export interface DatabaseConfig {
  /** `postgres://…` or `postgresql://…` selects PostgreSQL; anything else (or nothing) SQLite. */
  databaseUrl?: string;
  /** The server's data directory; the SQLite file is `latchkey.sqlite` inside it. */
  dataDir: string;
  /** PostgreSQL: connections this process's pool may open (DATABASE_POOL_MAX; default postgres.ts's). */
  poolMax?: number;
}

/** An open database. */
export interface OpenDatabase {
  db: Kysely<Database>;
  dialect: "sqlite" | "postgres";
  /** PostgreSQL: this process's pool's counts now (for the metrics); absent on SQLite. */
  poolStats?: () => PoolStats;
  /** Waits for queries in flight, then closes every connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE = "latchkey.sqlite";

/**
 * How long a SQLite writer waits for another connection's write lock before failing with SQLITE_BUSY. Long
 * enough for any single transaction of this server; a wait blocks the event loop (node:sqlite is synchronous).
 */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

// Kept beside the Kysely instance rather than in every service's dependencies: whoever holds the database can ask.
const changeWatches = new WeakMap<Kysely<Database>, SqliteChangeWatch>();

/**
 * The data version of `db` (SqliteChangeWatch.version) when it is a SQLite database this process opened, for read
 * caches that must never serve what a later write replaced; null for PostgreSQL, where no such cheap exact signal
 * exists across processes, so nothing is cached there.
 */
export function dataVersionOf(db: Kysely<Database>): (() => string | null) | null {
  const watch = changeWatches.get(db);
  return watch === undefined ? null : () => watch.version();
}

/** Like dataVersionOf, for what bearer-token authentication reads (SqliteChangeWatch.identityVersion). */
export function identityVersionOf(db: Kysely<Database>): (() => string | null) | null {
  const watch = changeWatches.get(db);
  return watch === undefined ? null : () => watch.identityVersion();
}

/** True for the URLs that select PostgreSQL. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

/** Opens (creating when needed) the database `config` names. Does not migrate: see migrations.ts. */
export async function openDatabase(config: DatabaseConfig): Promise<OpenDatabase> {
  if (isPostgresUrl(config.databaseUrl)) {
    const { dialect, poolStats } = await loadPostgresDialect(config.databaseUrl, config.poolMax);
    return { ...wrap(new Kysely<Database>({ dialect }), "postgres"), ...(poolStats ? { poolStats } : {}) };
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for an existing directory; the data directory holds the
  // server secret, so make it private either way.
  await chmod(config.dataDir, 0o700);
  const path = join(config.dataDir, SQLITE_FILE);
  const watch = new SqliteChangeWatch();
  const db = new Kysely<Database>({ dialect: new NodeSqliteDialect(() => openSqliteFile(path), watch) });
  changeWatches.set(db, watch);
  // Open now rather than on the first query, so a bad path or a corrupt file fails at start-up.
  await db.connection().execute(() => Promise.resolve());
  return wrap(db, "sqlite");
}

/**
 * Opens a SQLite file with the settings the server relies on: WAL (readers never block the writer),
 * synchronous=FULL (a commit is on disk before it is acknowledged: an acknowledged push survives power loss,
 * issue 6 point 1), a busy timeout (several processes may share the file), and enforced foreign keys.
 */
export function openSqliteFile(path: string): DatabaseSync {
  createPrivate(path);
  const sqlite = new DatabaseSync(path);
  try {
    sqlite.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    const mode = sqlite.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode?: string } | undefined;
    if (mode?.journal_mode?.toLowerCase() !== "wal") {
      throw new Error(`SQLite refused WAL mode for ${path} (got ${String(mode?.journal_mode)})`);
    }
    sqlite.exec("PRAGMA synchronous = FULL");
    // A checkpoint copies every page the WAL holds into the database file and fsyncs it, inside the COMMIT that
    // crosses the threshold. Pushes rewrite the same hot pages (each vault's head, the tail of the history and of
    // the audit log) over and over: at 10,000 pages (~40 MiB of WAL) a page is copied once per interval rather
    // than once per 1,000 pages, measured ~12% more pushes/s with the writer thread (sync/writer-thread.ts).
    sqlite.exec("PRAGMA wal_autocheckpoint = 10000");
    sqlite.exec("PRAGMA foreign_keys = ON");
  } catch (err) {
    sqlite.close();
    throw err;
  }
  return sqlite;
}

/**
 * Creates the database file with mode 0600 (or makes an existing one 0600) before SQLite opens it: SQLite gives
 * its -wal and -shm files the main file's mode, and would otherwise create all three as 0644 under the usual
 * umask. Never follows a symbolic link.
 */
function createPrivate(path: string): void {
  const fd = openSync(path, constants.O_CREAT | constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

function wrap(db: Kysely<Database>, dialect: OpenDatabase["dialect"]): OpenDatabase {
  let closing: Promise<void> | undefined;
  return { db, dialect, close: () => (closing ??= db.destroy()) };
}

async function loadPostgresDialect(
  url: string,
  max: number | undefined,
): Promise<{ dialect: Dialect; poolStats: (() => PoolStats) | null }> {
  // Loaded only when DATABASE_URL asks for PostgreSQL, so a SQLite server never loads pg (the build splits
  // postgres.ts and pg into their own chunk).
  const { createPostgresDialect, poolStatsOf } = await import("./postgres.js");
  const dialect = createPostgresDialect(url, max === undefined ? {} : { max });
  return { dialect, poolStats: poolStatsOf(dialect) };
}
