/**
 * The identity provider's rows of one account in oidc_models (identity/adapter.ts stores them): its grants, with
 * every token and code issued under them, and its browser sessions. The payload is oidc-provider's JSON; rows are
 * found by a LIKE on the serialized accountId (the same on SQLite and PostgreSQL) and confirmed by parsing.
 */
import { sql, type Kysely } from "kysely";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** The models that belong to an account by their payload's accountId (tokens and codes go with their grant). */
type AccountModel = "Grant" | "Session" | "Interaction";

/** Rows deleted per statement: well below SQLite's and PostgreSQL's limits on bound parameters. */
const CHUNK = 500;

function likeAccount(userId: string): string {
  return `%${JSON.stringify({ accountId: userId })
    .slice(1, -1)
    .replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Whether a stored payload names `userId` as its account, at its top level or in its session (interactions). */
function ownedBy(payload: string, userId: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return false;
  }
  if (typeof value !== "object" || value === null) return false;
  const record = value as { accountId?: unknown; session?: { accountId?: unknown } | null };
  return record.accountId === userId || record.session?.accountId === userId;
}

/** The ids of `kind` rows that belong to `userId`. */
export function accountModelIds(db: Db, kind: AccountModel, userId: string): Promise<string[]> {
  return runQuery(`find the account's ${kind} rows`, async () => {
    const rows = await db
      .selectFrom("oidc_models")
      .select(["id", "payload"])
      .where("kind", "=", kind)
      .where(sql<boolean>`payload like ${likeAccount(userId)} escape '\\'`)
      .execute();
    return rows.filter((row) => ownedBy(row.payload, userId)).map((row) => row.id);
  });
}

/** Deletes the grants `grantIds` and everything issued under them (tokens, codes); how many grants. */
export function deleteGrants(db: Db, grantIds: readonly string[]): Promise<number> {
  return runQuery("delete the account's grants", async () => {
    let deleted = 0;
    for (let i = 0; i < grantIds.length; i += CHUNK) {
      const chunk = grantIds.slice(i, i + CHUNK);
      await db.deleteFrom("oidc_models").where("grant_id", "in", chunk).execute();
      const grants = await db
        .deleteFrom("oidc_models")
        .where("kind", "=", "Grant")
        .where("id", "in", chunk)
        .executeTakeFirst();
      deleted += Number(grants.numDeletedRows);
    }
    return deleted;
  });
}

/** Deletes the `kind` rows `ids`; how many. */
export function deleteModels(db: Db, kind: AccountModel, ids: readonly string[]): Promise<number> {
  return runQuery(`delete the account's ${kind} rows`, async () => {
    let deleted = 0;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const result = await db
        .deleteFrom("oidc_models")
        .where("kind", "=", kind)
        .where("id", "in", ids.slice(i, i + CHUNK))
        .executeTakeFirst();
      deleted += Number(result.numDeletedRows);
    }
    return deleted;
  });
}
