/**
 * A vault copy as every slice names it — a personal copy `(vault, user)` or an organisation's `(vault, org)` — and
 * the read of its head. They live here, outside the slices, because the sync push, the CI escrow and the platform
 * connections all address copies and no slice may import another.
 */
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
