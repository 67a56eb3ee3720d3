/**
 * Write transactions of the sync service, with group commit where the database has a single connection.
 *
 * SQLite runs with synchronous=FULL (an acknowledged push survives power loss), so every COMMIT waits for an
 * fsync — about 2 ms on ordinary disks, which would cap pushes at a few hundred per second. node:sqlite gives a
 * process one connection, so its writes are serialised anyway: the writer lets concurrent writes share one
 * transaction and one fsync, each inside its own SAVEPOINT so a write that fails (a conflict) is rolled back
 * alone, and settles every write only after the shared COMMIT has returned — no client hears "stored" before it
 * is on disk, and a failed COMMIT fails every write of the batch. Each write sees the ones before it in the
 * batch, exactly as if they had run one after another.
 *
 * On PostgreSQL (a pool of connections) every write is its own transaction; the database groups WAL flushes of
 * concurrent commits itself.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/schema.js";

/** Runs `body` atomically: all of it is committed or none. Rejects with what `body` threw. */
export interface Writer {
  run<T>(body: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Transactions committed so far (a batch counts once). */
  readonly commits: number;
}

/** Most writes sharing one transaction; bounds how long the connection is held. */
export const MAX_BATCH = 128;

interface Job {
  body: (trx: Kysely<Database>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A writer for `db`: grouped when the dialect has a single connection (SQLite), one transaction each otherwise. */
export function createWriter(db: Kysely<Database>): Writer {
  return db.getExecutor().adapter.supportsMultipleConnections === false ? groupWriter(db) : plainWriter(db);
}

function plainWriter(db: Kysely<Database>): Writer {
  let commits = 0;
  return {
    async run(body) {
      const value = await db.transaction().execute(body);
      commits++;
      return value;
    },
    get commits() {
      return commits;
    },
  };
}

/** The grouping writer (exported for its tests; createWriter picks it for single-connection databases). */
export function groupWriter(db: Kysely<Database>): Writer {
  const queue: Job[] = [];
  let draining = false;
  let commits = 0;

  async function runBatch(batch: Job[]): Promise<void> {
    const results: Settled[] = [];
    try {
      await db.transaction().execute(async (trx) => {
        for (const job of batch) {
          await sql`savepoint lk_write`.execute(trx);
          try {
            const value = await job.body(trx);
            await sql`release lk_write`.execute(trx);
            results.push({ ok: true, value });
          } catch (error) {
            // Undo this write only; if even that fails the transaction is unusable and the whole batch fails.
            await sql`rollback to lk_write`.execute(trx);
            await sql`release lk_write`.execute(trx);
            results.push({ ok: false, error });
          }
        }
      });
      commits++;
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    batch.forEach((job, i) => {
      const result = results[i]!;
      if (result.ok) job.resolve(result.value);
      else job.reject(result.error);
    });
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      await runBatch(queue.splice(0, MAX_BATCH));
      // The COMMIT's fsync blocked the event loop; let the requests that arrived meanwhile reach the queue so
      // they share the next commit.
      await new Promise((resolve) => setImmediate(resolve));
    }
    draining = false;
  }

  return {
    run<T>(body: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ body, resolve: resolve as (value: unknown) => void, reject });
        if (!draining) {
          draining = true;
          setImmediate(() => void drain());
        }
      });
    },
    get commits() {
      return commits;
    },
  };
}
