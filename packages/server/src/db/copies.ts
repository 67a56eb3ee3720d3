/**
 * A vault copy as every slice names it — a personal copy `(vault, user)` or an organisation's `(vault, org)` — and
 * the read of its head. They live here, outside the slices, because the sync push, the CI escrow and the platform
 * connections all address copies and no slice may import another.
 */
import { PERSONAL_COPY_KEY_VERSION } from "@latchkey/core";
import type { Kysely } from "kysely";
import { runQuery } from "./query.js";
import type { Database } from "./schema.js";

/** One copy of a vault: a user's personal copy, or an organisation's (with its slug, which its blobs bind). */
export type CopyRef =
  | { readonly vaultId: string; readonly userId: string }
  | { readonly vaultId: string; readonly orgId: string; readonly slug: string };

/** A copy's head as the readers of this module need it. */
export interface CopyHeadRecord {
  version: number;
  /** Standard base64 of the sealed vault document. */
  encryptedBlob: string;
  /** The stored envSchema (JSON), or null. */
  schemaJson: string | null;
}

/** The head of `copy` (version, blob, stored schema), or undefined when the copy does not exist. */
export function findCopyHead(db: Kysely<Database>, copy: CopyRef): Promise<CopyHeadRecord | undefined> {
  return runQuery("read copy head", async () => {
    const row =
      "orgId" in copy
        ? await db
            .selectFrom("org_vault_heads")
            .select(["version", "encrypted_blob", "schema_json"])
            .where("vault_id", "=", copy.vaultId)
            .where("org_id", "=", copy.orgId)
            .executeTakeFirst()
        : await db
            .selectFrom("vault_heads")
            .select(["version", "encrypted_blob", "schema_json"])
            .where("vault_id", "=", copy.vaultId)
            .where("user_id", "=", copy.userId)
            .executeTakeFirst();
    return row === undefined
      ? undefined
      : { version: Number(row.version), encryptedBlob: row.encrypted_blob, schemaJson: row.schema_json };
  });
}

/**
 * The version of the vault key `copy` is sealed with now, as the copy's clients name it: for an organisation's copy,
 * the key version its wrapped keys record (each share replaces them all, at its own version); null when none does
 * (rows written before the server recorded sharers, which no client opens). A personal copy's vault key never
 * changes: always PERSONAL_COPY_KEY_VERSION.
 */
export function findCopyKeyVersion(db: Kysely<Database>, copy: CopyRef): Promise<number | null> {
  if (!("orgId" in copy)) return Promise.resolve(PERSONAL_COPY_KEY_VERSION);
  return runQuery("read copy key version", async () => {
    const row = await db
      .selectFrom("vault_org_keys")
      .select((eb) => eb.fn.max("key_version").as("key_version"))
      .where("vault_id", "=", copy.vaultId)
      .where("org_id", "=", copy.orgId)
      .executeTakeFirst();
    return row?.key_version == null ? null : Number(row.key_version);
  });
}
