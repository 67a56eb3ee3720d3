/**
 * Data access of the identity slice: SQL only, no rules. Every function takes the database or a transaction, so
 * the service decides what runs atomically; failures come out as DatabaseError (db/query.ts), whose message names
 * the operation and never a value. oidc-provider's own rows go through its adapter (adapter.ts); the audit rows
 * through audit/data.ts.
 */
import { sql, SqliteAdapter, type Kysely } from "kysely";
import { precompile } from "../db/precompiled.js";
import { runQuery } from "../db/query.js";
import type { Database } from "../db/schema.js";
import type { UserCredentialColumns, UserCredentials } from "./migration.js";

/** The database or a transaction on it. */
export type Db = Kysely<Database>;

/** An account as the identity slice reads it. */
export type Account = UserCredentialColumns;

// Other slices never read credentials: only this module sees the credential columns of `users`.
function credentials(db: Db): Kysely<Database & UserCredentials> {
  return db.withTables<UserCredentials>();
}

/** The account with this (normalized) email, or undefined. */
export function findAccountByEmail(db: Db, email: string): Promise<Account | undefined> {
  return runQuery("find account by email", () =>
    credentials(db).selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst(),
  );
}

/** The account with this id, or undefined. */
export function findAccountById(db: Db, id: string): Promise<Account | undefined> {
  return runQuery("find account by id", () =>
    credentials(db).selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst(),
  );
}

/** Whether an account has this (normalized) email. */
export function emailTaken(db: Db, email: string): Promise<boolean> {
  return runQuery("look up account email", async () => {
    const row = await credentials(db)
      .selectFrom("users")
      .select("id")
      .where("email", "=", email)
      .executeTakeFirst();
    return row !== undefined;
  });
}

/** A new account's row. */
export interface NewAccount {
  id: string;
  email: string;
  createdAt: string;
  passwordHash: string;
}

/** Inserts an account without TOTP; the unique index on email refuses a second account with the same email. */
export function insertAccount(db: Db, account: NewAccount): Promise<void> {
  return runQuery("insert account", async () => {
    await credentials(db)
      .insertInto("users")
      .values({
        id: account.id,
        email: account.email,
        created_at: account.createdAt,
        password_hash: account.passwordHash,
        totp_secret: null,
        totp_enabled: 0,
      })
      .execute();
  });
}

/** Stores a sealed TOTP secret and turns TOTP on, forgetting the last step a code was accepted for. */
export function setTotpSecret(db: Db, userId: string, sealedSecret: string): Promise<void> {
  return runQuery("set totp secret", async () => {
    await credentials(db)
      .updateTable("users")
      .set({ totp_secret: sealedSecret, totp_enabled: 1, totp_last_step: null })
      .where("id", "=", userId)
      .execute();
  });
}

/**
 * Records `step` as the account's last accepted TOTP step unless it already is at or past it; true when it
 * moved. A compare-and-set: of two requests with the same step, one moves it and the other finds it moved.
 */
export function advanceTotpStep(db: Db, userId: string, step: number): Promise<boolean> {
  return runQuery("advance totp step", async () => {
    const updated = await credentials(db)
      .updateTable("users")
      .set({ totp_last_step: step })
      .where("id", "=", userId)
      .where((eb) => eb.or([eb("totp_last_step", "is", null), eb("totp_last_step", "<", step)]))
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  });
}

/** An access token's row, its grant's row and its account, as authenticate reads them. */
export interface TokenGrantAccount {
  token: { payload: string; grant_id: string | null; expires_at: number | null; consumed_at: number | null };
  grant: { id: string; payload: string; expires_at: number | null; consumed_at: number | null } | undefined;
  account: { id: string; email: string } | undefined;
}

/**
 * The AccessToken row `id`, the Grant row its grant_id column names, and the user its payload's accountId
 * names, in one statement. The account id is only in the JSON payload, and the two databases spell "field of a
 * JSON text" differently: SQLite (3.38+) takes `->>` on text, PostgreSQL needs the text cast to json first.
 */
const tokenGrantAccount = precompile(1, (db, [id]) => {
  const accountId =
    db.getExecutor().adapter instanceof SqliteAdapter
      ? sql<string>`${sql.ref("t.payload")} ->> 'accountId'`
      : sql<string>`cast(${sql.ref("t.payload")} as json) ->> 'accountId'`;
  return db
    .selectFrom("oidc_models as t")
    .leftJoin("oidc_models as g", (join) => join.on("g.kind", "=", "Grant").onRef("g.id", "=", "t.grant_id"))
    .leftJoin("users as u", (join) => join.on(sql.ref("u.id"), "=", accountId))
    .select([
      "t.payload as t_payload",
      "t.grant_id as t_grant_id",
      "t.expires_at as t_expires_at",
      "t.consumed_at as t_consumed_at",
      "g.id as g_id",
      "g.payload as g_payload",
      "g.expires_at as g_expires_at",
      "g.consumed_at as g_consumed_at",
      "u.id as u_id",
      "u.email as u_email",
    ])
    .where("t.kind", "=", "AccessToken")
    .where("t.id", "=", id!);
});

/** The access token `id` with its grant and account (each undefined when absent); undefined without the token. */
export function findTokenGrantAccount(db: Db, id: string): Promise<TokenGrantAccount | undefined> {
  return runQuery("find access token", async () => {
    const row = (await tokenGrantAccount.run(db, [id])).rows[0];
    if (!row) return undefined;
    return {
      token: {
        payload: row.t_payload,
        grant_id: row.t_grant_id,
        expires_at: row.t_expires_at,
        consumed_at: row.t_consumed_at,
      },
      grant:
        row.g_id === null || row.g_payload === null
          ? undefined
          : {
              id: row.g_id,
              payload: row.g_payload,
              expires_at: row.g_expires_at,
              consumed_at: row.g_consumed_at,
            },
      account: row.u_id === null || row.u_email === null ? undefined : { id: row.u_id, email: row.u_email },
    };
  });
}

/** One sign-in attempt (rate-limit.ts); `at` in milliseconds since the epoch. */
export interface AttemptRow {
  id: string;
  address: string;
  /** The account had signed in from the address before. */
  known: boolean;
  at: number;
}

/** Whether `account` signed in from `address` after `since` (milliseconds). */
export function isKnownAddress(db: Db, account: string, address: string, since: number): Promise<boolean> {
  return runQuery("read sign-in address", async () => {
    const row = await db
      .selectFrom("sign_in_addresses")
      .select("last_at")
      .where("account", "=", account)
      .where("address", "=", address)
      .where("last_at", ">", since)
      .executeTakeFirst();
    return row !== undefined;
  });
}

/** Records an attempt of `account` (a normalized email). */
export function insertAttempt(db: Db, account: string, attempt: AttemptRow): Promise<void> {
  return runQuery("insert sign-in attempt", async () => {
    await db
      .insertInto("sign_in_attempts")
      .values({
        id: attempt.id,
        account,
        address: attempt.address,
        known: attempt.known ? 1 : 0,
        at: attempt.at,
      })
      .execute();
  });
}

/** Removes the attempt `id`. */
export function deleteAttempt(db: Db, id: string): Promise<void> {
  return runQuery("delete sign-in attempt", async () => {
    await db.deleteFrom("sign_in_attempts").where("id", "=", id).execute();
  });
}

/** The attempts of `account` after `since` (milliseconds), from every address. */
export function listAttempts(db: Db, account: string, since: number): Promise<AttemptRow[]> {
  return runQuery("list sign-in attempts", async () => {
    const rows = await db
      .selectFrom("sign_in_attempts")
      .select(["id", "address", "known", "at"])
      .where("account", "=", account)
      .where("at", ">", since)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      address: r.address,
      known: Number(r.known) === 1,
      at: Number(r.at),
    }));
  });
}

/** When each attempt from `address` after `since` was made, over accounts the address was not known to. */
export function unknownAttemptTimes(db: Db, address: string, since: number): Promise<number[]> {
  return runQuery("list sign-in attempts of an address", async () => {
    const rows = await db
      .selectFrom("sign_in_attempts")
      .select(["at"])
      .where("address", "=", address)
      .where("known", "=", 0)
      .where("at", ">", since)
      .execute();
    return rows.map((r) => Number(r.at));
  });
}

/** Records that `account` signed in from `address` at `at` (milliseconds). */
export function upsertAddress(db: Db, account: string, address: string, at: number): Promise<void> {
  return runQuery("record sign-in address", async () => {
    await db
      .insertInto("sign_in_addresses")
      .values({ account, address, last_at: at })
      .onConflict((oc) => oc.columns(["account", "address"]).doUpdateSet({ last_at: at }))
      .execute();
  });
}

/** Removes attempts made at or before `attemptsUntil` and addresses last used at or before `addressesUntil`. */
export function purgeSignInRows(db: Db, attemptsUntil: number, addressesUntil: number): Promise<void> {
  return runQuery("purge sign-in rows", async () => {
    await db.deleteFrom("sign_in_attempts").where("at", "<=", attemptsUntil).execute();
    await db.deleteFrom("sign_in_addresses").where("last_at", "<=", addressesUntil).execute();
  });
}
