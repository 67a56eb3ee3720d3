/**
 * A Kysely dialect over Node's built-in `node:sqlite` (DatabaseSync): no native build, so the server installs
 * anywhere Node 24 runs (DESIGN.md, "Dependencies"). Only the driver is ours; the adapter, introspector and
 * query compiler are Kysely's own SQLite ones, so the SQL is exactly what Kysely's SqliteDialect produces.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import {
  CompiledQuery,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

/** Opens the database; called once, when Kysely first needs a connection. */
export type OpenSqlite = () => DatabaseSync;

/**
 * Tells whether the database may have changed since an earlier look, exactly enough for read caches
 * (read-cache.ts): `PRAGMA data_version` changes when another connection (another process) commits, and this
 * connection counts its own writing statements, which data_version does not see. Both parts are cheap: the
 * pragma reads a counter SQLite keeps in shared memory.
 */
export class SqliteChangeWatch {
  #db: DatabaseSync | undefined;
  #dataVersion: StatementSync | undefined;
  #identityCounter: StatementSync | undefined;
  #localWrites = 0;

  /** Called by the driver once the database is open. */
  attach(db: DatabaseSync): void {
    this.#db = db;
    this.#dataVersion = db.prepare("PRAGMA data_version");
  }

  /** Called by the driver before the database closes. */
  detach(): void {
    this.#db = undefined;
    this.#dataVersion = undefined;
    this.#identityCounter = undefined;
  }

  /** Called after every statement of this connection that can change data, whether it succeeded or not. */
  wrote(): void {
    this.#localWrites++;
  }

  /**
   * A value that differs from every earlier one once anything was written since; null while the database is not
   * open (no caching then). Read it before reading the data it is to vouch for.
   */
  version(): string | null {
    const row = this.#dataVersion?.get() as { data_version: number } | undefined;
    return row === undefined ? null : `${row.data_version}:${this.#localWrites}`;
  }

  /**
   * Like version(), for what authentication reads only: the `identity` change counter (migration 0004: triggers
   * on tokens, grants and accounts, whoever writes) instead of data_version, so other tables' writes leave it
   * alone. This connection's write count stays part of it: a transaction of this connection that bumped the
   * counter and then rolled back gives the counter's value back, and a later commit would reuse it. Null while
   * the database is not open or not yet migrated.
   */
  identityVersion(): string | null {
    if (this.#db === undefined) return null;
    if (this.#identityCounter === undefined) {
      try {
        this.#identityCounter = this.#db.prepare("select value from change_counters where name = 'identity'");
      } catch {
        return null; // before migration 0004
      }
    }
    const row = this.#identityCounter.get() as { value: number | bigint } | undefined;
    return row === undefined ? null : `${row.value}:${this.#localWrites}`;
  }
}

/** The dialect to pass to `new Kysely({ dialect })`. */
export class NodeSqliteDialect implements Dialect {
  readonly #open: OpenSqlite;
  readonly #watch: SqliteChangeWatch | undefined;

  constructor(open: OpenSqlite, watch?: SqliteChangeWatch) {
    this.#open = open;
    this.#watch = watch;
  }

  createDriver(): Driver {
    return new NodeSqliteDriver(this.#open, this.#watch);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new NodeSqliteAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

/**
 * Kysely's SqliteAdapter, except that it admits what SQLite does: DDL is transactional. Kysely then runs the
 * pending migrations in one transaction, so a failing migration leaves no half-made schema behind, and (as the
 * driver begins write transactions IMMEDIATE) a second process starting at the same moment waits for the first
 * to finish and then finds nothing left to do.
 *
 * supportsMultipleConnections stays false, so Kysely serialises every acquireConnection on its own mutex: a
 * transaction holds the one connection until it ends, and no other query of this process interleaves with it.
 */
class NodeSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class NodeSqliteDriver implements Driver {
  readonly #open: OpenSqlite;
  readonly #watch: SqliteChangeWatch | undefined;
  #db: DatabaseSync | undefined;
  #connection: NodeSqliteConnection | undefined;

  constructor(open: OpenSqlite, watch: SqliteChangeWatch | undefined) {
    this.#open = open;
    this.#watch = watch;
  }

  init(): Promise<void> {
    this.#db = this.#open();
    this.#connection = new NodeSqliteConnection(this.#db, this.#watch);
    this.#watch?.attach(this.#db);
    return Promise.resolve();
  }

  acquireConnection(): Promise<DatabaseConnection> {
    if (!this.#connection) return Promise.reject(new Error("node:sqlite driver used before init"));
    return Promise.resolve(this.#connection);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // A deferred transaction that reads and then writes cannot wait for another connection's write lock: SQLite
    // answers SQLITE_BUSY at once instead of calling the busy handler (the upgrade would deadlock). Taking the
    // write lock at BEGIN makes a second writer wait for the busy timeout and then proceed.
    const mode = settings.accessMode === "read only" ? "deferred" : "immediate";
    await connection.executeQuery(CompiledQuery.raw(`begin ${mode}`));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  releaseConnection(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.#watch?.detach();
    this.#connection?.clearStatements();
    if (this.#db?.isOpen) this.#db.close();
    this.#db = undefined;
    this.#connection = undefined;
    return Promise.resolve();
  }
}

/**
 * Prepared statements kept per connection, keyed by SQL text. Preparing costs several times what running a
 * small statement does, and the server runs the same few dozen texts over and over (Kysely puts every value in
 * a parameter, so the text does not vary with the data). Least recently used statements are dropped past this.
 */
export const STATEMENT_CACHE_SIZE = 200;

interface Prepared {
  stmt: StatementSync;
  // A statement that yields columns (SELECT, RETURNING, some pragmas) returns rows; the rest report changes.
  // That depends on the text alone, so it is worked out once.
  reader: boolean;
  // Whether it can change data (SqliteChangeWatch). Only a plain SELECT cannot: anything else, a WITH included
  // (it may wrap an INSERT), counts as a write, which at worst empties a read cache once too often.
  writes: boolean;
}

const READ_ONLY_SQL = /^\s*select\b/i;

class NodeSqliteConnection implements DatabaseConnection {
  readonly #db: DatabaseSync;
  readonly #watch: SqliteChangeWatch | undefined;
  // A Map iterates in insertion order: re-inserting on each use keeps the least recently used first.
  readonly #cache = new Map<string, Prepared>();

  constructor(db: DatabaseSync, watch: SqliteChangeWatch | undefined) {
    this.#db = db;
    this.#watch = watch;
  }

  #prepare(sqlText: string): Prepared {
    const hit = this.#cache.get(sqlText);
    if (hit !== undefined) {
      this.#cache.delete(sqlText);
      this.#cache.set(sqlText, hit);
      return hit;
    }
    const stmt = this.#db.prepare(sqlText);
    const prepared = { stmt, reader: stmt.columns().length > 0, writes: !READ_ONLY_SQL.test(sqlText) };
    this.#cache.set(sqlText, prepared);
    if (this.#cache.size > STATEMENT_CACHE_SIZE) {
      // node:sqlite finalizes a statement once nothing references it (and all of them when the database closes).
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    return prepared;
  }

  /** Drops every cached statement (the driver calls it before closing the database). */
  clearStatements(): void {
    this.#cache.clear();
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    try {
      // A statement runs to completion (all/run) before the next one starts: node:sqlite is synchronous and the
      // connection is Kysely's only one, so a cached statement is never in use twice at once.
      const { stmt, reader, writes } = this.#prepare(compiledQuery.sql);
      const params = compiledQuery.parameters.map(toSqlite);
      try {
        if (reader) {
          return Promise.resolve({ rows: stmt.all(...params) as R[] });
        }
        const { changes, lastInsertRowid } = stmt.run(...params);
        return Promise.resolve({
          rows: [],
          numAffectedRows: BigInt(changes),
          insertId: BigInt(lastInsertRowid),
        });
      } finally {
        // After the statement, never before: a reader that takes the version between the two would see the old
        // data under the new version. (node:sqlite is synchronous, so nothing runs in between here.)
        if (writes) this.#watch?.wrote();
      }
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  // node:sqlite is synchronous; Kysely's interface is an async iterator.
  // eslint-disable-next-line @typescript-eslint/require-await
  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiledQuery.query)) {
      throw new Error("node:sqlite driver only supports streaming of select queries");
    }
    // Not from the cache: an unfinished iteration would be reset by the next query using the same text.
    const stmt = this.#db.prepare(compiledQuery.sql);
    for (const row of stmt.iterate(...compiledQuery.parameters.map(toSqlite))) {
      yield { rows: [row as R] };
    }
  }
}

// node:sqlite binds only null, numbers, bigints, strings and byte arrays; Kysely passes booleans and dates
// through as the application gave them, so map those the way better-sqlite3 users store them.
function toSqlite(value: unknown): SQLInputValue {
  if (value === undefined || value === null) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  if (
    typeof value === "number" ||
    typeof value === "bigint" ||
    typeof value === "string" ||
    ArrayBuffer.isView(value)
  ) {
    return value as SQLInputValue;
  }
  throw new TypeError(`node:sqlite cannot bind a value of type ${typeof value}`);
}
