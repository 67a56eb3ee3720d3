/** Tables of the accounts and identity slice. Owned by the identity module. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * The credential columns migration 0002 adds to `users`. They are not part of schema.ts's UsersTable (other
 * slices never read credentials); the identity module sees them through `db.withTables<UserCredentials>()`.
 */
export interface UserCredentialColumns {
  id: string;
  email: string;
  created_at: string;
  /** Argon2id PHC string; null for an account that cannot sign in with a password. */
  password_hash: string | null;
  /** The TOTP secret sealed with a key derived from the server secret (totp.ts); null when not enrolled. */
  totp_secret: string | null;
  /** 1 once enrolled: the login then asks for a code. */
  totp_enabled: number;
  /** The last TOTP time step accepted, so a code cannot be replayed within its window. */
  totp_last_step: number | null;
}

/** `users` as the identity module sees it. */
export type UserCredentials = {
  users: UserCredentialColumns;
};

/**
 * One object of the OpenID provider (grant, session, interaction, code, token, device code…): the payload as
 * JSON plus the fields it is looked up by. Shared by every server process on one database.
 */
export interface OidcModelsTable {
  /** The model name (oidc-provider's `name`, e.g. "AccessToken"). */
  kind: string;
  id: string;
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  /** Seconds since the epoch; null for objects that never expire. */
  expires_at: number | null;
  /** Seconds since the epoch when consumed (codes, rotated refresh tokens). */
  consumed_at: number | null;
}

/**
 * One failed or in-flight sign-in attempt (rate-limit.ts), counted per account and address, per account and per
 * address over the last hour. In the database so the limits hold across server processes.
 */
export interface SignInAttemptsTable {
  id: string;
  /** The normalized email typed, whether or not it has an account. */
  account: string;
  /** The client's address (request.ip). */
  address: string;
  /** 1 when the account had signed in from this address before (sign_in_addresses), 0 otherwise. */
  known: number;
  /** Milliseconds since the epoch. */
  at: number;
}

/** An address an account signed in from (password and, when enrolled, TOTP), and when it last did. */
export interface SignInAddressesTable {
  account: string;
  address: string;
  /** Milliseconds since the epoch. */
  last_at: number;
}

/** The identity slice's tables as Kysely sees them (after its latest migration). */
export interface IdentityTables {
  oidc_models: OidcModelsTable;
  sign_in_attempts: SignInAttemptsTable;
  sign_in_addresses: SignInAddressesTable;
}

/** Migration 0002: accounts' credentials, the OpenID provider's storage, login rate limits. */
export const identityMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("users").addColumn("password_hash", "text").execute();
    await db.schema.alterTable("users").addColumn("totp_secret", "text").execute();
    await db.schema
      .alterTable("users")
      .addColumn("totp_enabled", "integer", (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.alterTable("users").addColumn("totp_last_step", "bigint").execute();

    await db.schema
      .createTable("oidc_models")
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("id", "text", (c) => c.notNull())
      .addColumn("payload", "text", (c) => c.notNull())
      .addColumn("grant_id", "text")
      .addColumn("user_code", "text")
      .addColumn("uid", "text")
      .addColumn("expires_at", "bigint")
      .addColumn("consumed_at", "bigint")
      .addPrimaryKeyConstraint("oidc_models_pk", ["kind", "id"])
      .execute();
    // revokeByGrantId, findByUserCode and findByUid look objects up by these.
    await db.schema.createIndex("oidc_models_grant").on("oidc_models").column("grant_id").execute();
    await db.schema
      .createIndex("oidc_models_user_code")
      .on("oidc_models")
      .columns(["kind", "user_code"])
      .execute();
    await db.schema.createIndex("oidc_models_uid").on("oidc_models").columns(["kind", "uid"]).execute();
    await db.schema.createIndex("oidc_models_expiry").on("oidc_models").column("expires_at").execute();

    await db.schema
      .createTable("auth_attempts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("subject", "text", (c) => c.notNull())
      .addColumn("at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("auth_attempts_subject_at")
      .on("auth_attempts")
      .columns(["subject", "at"])
      .execute();
  },
};

/**
 * Migration 0005: sign-in limits per account and address with growing delays (rate-limit.ts) replace the flat
 * per-account and per-address counts of auth_attempts, whose rows only ever mattered for an hour.
 */
export const signInLimitsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable("auth_attempts").execute();
    await db.schema
      .createTable("sign_in_attempts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("account", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("known", "integer", (c) => c.notNull())
      .addColumn("at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("sign_in_attempts_account_at")
      .on("sign_in_attempts")
      .columns(["account", "at"])
      .execute();
    await db.schema
      .createIndex("sign_in_attempts_address_at")
      .on("sign_in_attempts")
      .columns(["address", "at"])
      .execute();
    await db.schema
      .createTable("sign_in_addresses")
      .addColumn("account", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("last_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("sign_in_addresses_pk", ["account", "address"])
      .execute();
    await db.schema
      .createIndex("sign_in_addresses_last_at")
      .on("sign_in_addresses")
      .column("last_at")
      .execute();
  },
};
