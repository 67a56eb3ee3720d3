/**
 * A service's refusal from inside a transaction: throwing an Abort rolls back what the transaction wrote, and
 * `abortable` turns it back into the outcome the caller returns. The one way every slice refuses mid-transaction.
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Thrown inside a transaction to roll it back with `outcome`; caught by `abortable` (or the caller's own catch). */
export class Abort<T = unknown> extends Error {
  constructor(readonly outcome: T) {
    super("transaction aborted");
  }
}

/** Runs `transaction`; an Abort thrown in it (after the rollback) becomes its result instead of an error. */
export async function abortable<T>(transaction: () => Promise<T>): Promise<T> {
  try {
    return await transaction();
  } catch (err) {
    if (err instanceof Abort) return err.outcome as T;
    throw err;
  }
}

/** `body` in a transaction on `db`, which an Abort rolls back with its outcome. */
export function abortableTransaction<T>(
  db: Kysely<Database>,
  body: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return abortable(() => db.transaction().execute(body));
}
