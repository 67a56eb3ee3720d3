/**
 * PostgreSQL for the server: Kysely's PostgresDialect over a `pg` Pool, used when DATABASE_URL is a
 * postgres:// URL (db/index.ts loads this module only then). Several server processes may share one database,
 * so every limit here is per process.
 */
import { LatchkeyError } from "@latchkey/core";
import { PostgresDialect, type PostgresPool, type PostgresPoolClient } from "kysely";
import pg from "pg";
import { statementNameOf } from "./precompiled.js";

/** Tuning for one process's pool; the defaults suit a single server behind a small PostgreSQL. */
export interface PostgresPoolOptions {
  /** Connections this process may hold (default 10; PostgreSQL's own default limit is 100 for all clients). */
  max?: number;
  /** Server-side limit for one statement, in milliseconds (default 30 000). */
  statementTimeoutMs?: number;
  /** How long to wait for a free connection or a new one, in milliseconds (default 10 000). */
  connectionTimeoutMs?: number;
}

/** A pool's counts at one moment (metrics.ts): its limit, connections open, idle ones, and queries waiting. */
export interface PoolStats {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

// Kept beside the dialect rather than returned with it: Kysely takes the dialect, and the metrics ask for the pool.
const pools = new WeakMap<PostgresDialect, pg.Pool>();

/** The counts of the pool behind `dialect` (one createPostgresDialect made), read afresh at each call. */
export function poolStatsOf(dialect: PostgresDialect): (() => PoolStats) | null {
  const pool = pools.get(dialect);
  if (pool === undefined) return null;
  const max = pool.options.max;
  return () => ({ max, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
}

/** pg's type id for int8/bigint (COUNT(*), SUM of integers, bigint columns). */
const INT8_OID = 20;

/**
 * bigint comes back from pg as a string by default, where node:sqlite gives a number; the server's counters
 * (versions, counts) stay far below 2^53, so parse to a number and refuse rather than round beyond that.
 * A throw here fails the query (pg catches row-parse errors), which beats a silently wrong version number.
 */
function parseInt8(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed))
    throw new RangeError(`bigint value ${value} does not fit a JavaScript number`);
  return parsed;
}

const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): unknown =>
    oid === INT8_OID && format !== "binary"
      ? parseInt8
      : (pg.types.getTypeParser(oid, format ?? "text") as unknown)) as typeof pg.types.getTypeParser,
};

/**
 * The dialect for `url` (`postgres://user:password@host:port/db`, libpq-style `?sslmode=` and friends as `pg`
 * understands them). The pool connects lazily, on the first query.
 */
export function createPostgresDialect(url: string, options: PostgresPoolOptions = {}): PostgresDialect {
  checkUrl(url);
  const statementTimeout = options.statementTimeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    // Idle connections go back to PostgreSQL after a while, so an idle server does not pin connection slots
    // other processes could use.
    idleTimeoutMillis: 30_000,
    // Enforced by PostgreSQL, so a stuck statement also releases its locks; the client-side limit is a little
    // longer and covers a server that stopped answering at all.
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 5_000,
    // A transaction left open by a bug must not hold row locks (and block every other writer) forever.
    idle_in_transaction_session_timeout: 60_000,
    lock_timeout: statementTimeout,
    application_name: "latchkey-server",
    types,
  });
  // An idle connection that breaks (PostgreSQL restarted, network cut) is reported on the pool; unhandled, that
  // event would crash the server. pg has already dropped the connection, the next query opens a fresh one, and a
  // database that stays down shows up as failing queries and a 503 from /readyz.
  pool.on("error", () => undefined);
  const dialect = new PostgresDialect({ pool: preparingPool(pool) });
  pools.set(dialect, pool);
  return dialect;
}

/**
 * `pool` as Kysely uses it, sending the precompiled statements (precompiled.ts: the token lookup, the pull, the
 * push's) as named statements, which each connection parses and plans once instead of on every request: PostgreSQL's
 * CPU per pull measured at about a third of what the same statements cost unnamed. Any other SQL goes unnamed, as pg
 * sends it by default: its texts are not a bounded set, and each name costs memory on every connection.
 */
function preparingPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    query: ((text: string, values?: unknown[]) => {
      const name = statementNameOf(text);
      return name === undefined
        ? client.query(text, values)
        : client.query({ name, text, values: values ?? [] });
    }) as unknown as PostgresPoolClient["query"],
    release: (destroy) => client.release(destroy),
    // Kysely reads the backend's process id (to cancel a query) from the client it is given.
    get processID() {
      return (client as pg.PoolClient & { processID?: number }).processID;
    },
  });
  return {
    // The client class Kysely opens a connection of when it cancels a query (pg's Pool uses the same one).
    Client: pg.Client,
    options: pool.options,
    async connect() {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (wrapped === undefined) {
        wrapped = wrap(client);
        clients.set(client, wrapped);
      }
      return wrapped;
    },
    end: () => pool.end(),
  };
}

/**
 * The pool parses the URL only when it first connects, so a malformed DATABASE_URL would surface as a bare
 * "Invalid URL" from the first migration. A Client parses it in its constructor, with pg's own rules, without
 * connecting; the message never repeats the URL, which carries the password.
 */
function checkUrl(url: string): void {
  try {
    new pg.Client({ connectionString: url });
  } catch {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: "DATABASE_URL is not a valid PostgreSQL URL.",
      hint: "Use postgres://USER:PASSWORD@HOST:PORT/DATABASE, with special characters in the password percent-encoded (@ as %40, / as %2F).",
    });
  }
}
