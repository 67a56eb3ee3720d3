/**
 * How every data-access module runs its SQL: a driver's failure comes out as a {@link DatabaseError} whose
 * message names the operation and never a value (driver errors can quote the failing row), with the driver's
 * error kept as `cause` for the failure log.
 */

/** A failed query; `cause` holds the driver's error (logged by name and message, never sent). */
export class DatabaseError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`database: ${operation} failed`, { cause });
    this.name = "DatabaseError";
  }
}

/** Runs `query`, turning any failure into a DatabaseError for `operation`. */
export async function runQuery<T>(operation: string, query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (err) {
    throw new DatabaseError(operation, err);
  }
}
