/** Tables of the sharing-keys slice (docs/teams.md, "Sharing keys"). Owned by the sharing-keys module. */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/**
 * An account's registered sharing key: the public half of its X25519 key pair, which members of its
 * organisations wrap vault keys for. One per account; only a rotation (with its own step-up proof) replaces it.
 */
export interface UserPublicKeysTable {
  user_id: string;
  /** Canonical standard base64 of the 32-byte public key. */
  public_key: string;
  /** Lowercase hex SHA-256 of the public key (core sharingKeyFingerprint). */
  fingerprint: string;
  created_at: string;
  /** When a rotation last replaced the key; null until then. */
  rotated_at: string | null;
}

/** The sharing-keys slice's tables as Kysely sees them (after its latest migration). */
export interface SharingKeyTables {
  user_public_keys: UserPublicKeysTable;
}

/** Migration 0010: the accounts' sharing public keys. */
export const sharingKeysMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable("user_public_keys")
      .addColumn("user_id", "text", (c) => c.primaryKey().references("users.id"))
      .addColumn("public_key", "text", (c) => c.notNull())
      .addColumn("fingerprint", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("rotated_at", "text")
      .execute();
  },
};
