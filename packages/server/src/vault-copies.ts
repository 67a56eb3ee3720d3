/**
 * What every kind of vault copy shares — a user's personal copy (sync/) and an organisation's (orgs/): the
 * versioned push, and reading a stored envSchema. The versioned push, once for both: A copy moves from version N to N + 1 only through one conditional statement on
 * its head row — an UPDATE that requires version N, or for version 1 an INSERT that does nothing when the row
 * exists — so two pushes from one base can never both succeed; the acknowledged version gets its history row and
 * its audit row in the same transaction. The callers add what differs around it (who may push, what else the
 * transaction writes).
 */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { checkSchema, storedEnvSchemaSchema } from "@latchkey/core";
import { insertAudit } from "./audit/data.js";
import type { HeadWrite } from "./db/heads.js";
import type { Database } from "./db/schema.js";

/** One copy's head and history, as the push moves it (data access of its tables). */
export interface HeadStore {
  /** Moves the head from `baseVersion` to `baseVersion + 1` if it is at `baseVersion` (and allowed); else false. */
  advance(trx: Kysely<Database>, baseVersion: number, write: HeadWrite): Promise<boolean>;
  /** Creates the head at version 1; false, writing nothing, when it exists. */
  insertFirst(trx: Kysely<Database>, write: HeadWrite): Promise<boolean>;
  /** The head's version; 0 when there is none. */
  currentVersion(trx: Kysely<Database>): Promise<number>;
  /** The history row of an acknowledged version. */
  insertVersion(
    trx: Kysely<Database>,
    record: { version: number; blobSha256: string; blobSize: number; createdAt: string },
  ): Promise<void>;
}

/** A push that passed validation, as the versioned push takes it. */
export interface VersionedPush {
  encryptedBlob: string;
  /** What {@link blobDigest} says of the bytes encryptedBlob encodes. */
  digest: BlobDigest;
  schema: Record<string, unknown> | undefined;
  name: string;
  baseVersion: number;
}

/** What the push's audit row says besides its version, size and base. */
export interface PushAudit {
  id: string;
  userId: string;
  action: string;
  vaultId: string;
  orgId?: string;
  metadata: Record<string, unknown>;
}

/** The history row's record of a blob: its hex SHA-256 and size. */
export interface BlobDigest {
  sha256: string;
  size: number;
}

/** The digest of a pushed blob's bytes; computed before the push's transaction, which it need not hold up. */
export function blobDigest(bytes: Uint8Array): BlobDigest {
  return { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}

/**
 * Result of {@link pushVersion}: `stale` when the conditional update from a known base moved nothing (the caller
 * tells apart a conflict from a copy it may not push), `taken` when version 1 already exists (a conflict; the caller
 * rolls back what it wrote before).
 */
export type VersionedOutcome =
  | { kind: "pushed"; version: number; createdAt: string }
  | { kind: "stale" }
  | { kind: "taken"; currentVersion: number };

/**
 * Stores `push` as version baseVersion + 1 of the copy `heads` names, with its history row and its audit row, in
 * `trx`. `wrappedKey` is what the personal head stores beside the blob (an organisation's head stores none).
 */
export async function pushVersion(
  trx: Kysely<Database>,
  heads: HeadStore,
  push: VersionedPush,
  at: string,
  audit: PushAudit,
  wrappedKey = "",
): Promise<VersionedOutcome> {
  const write: HeadWrite = {
    encryptedBlob: push.encryptedBlob,
    wrappedKey,
    schemaJson: push.schema === undefined ? undefined : JSON.stringify(push.schema),
    name: push.name,
    updatedAt: at,
  };
  if (push.baseVersion !== 0) {
    if (!(await heads.advance(trx, push.baseVersion, write))) return { kind: "stale" };
  } else if (!(await heads.insertFirst(trx, write))) {
    return { kind: "taken", currentVersion: await heads.currentVersion(trx) };
  }
  const version = push.baseVersion + 1;
  const blobSize = push.digest.size;
  await heads.insertVersion(trx, { version, blobSha256: push.digest.sha256, blobSize, createdAt: at });
  await insertAudit(trx, {
    id: audit.id,
    userId: audit.userId,
    action: audit.action,
    vaultId: audit.vaultId,
    orgId: audit.orgId ?? null,
    version,
    createdAt: at,
    metadata: {
      blobSize,
      ...audit.metadata,
      baseVersion: push.baseVersion,
      schemaKeys: push.schema === undefined ? null : Object.keys(push.schema).length,
    },
  });
  return { kind: "pushed", version, createdAt: at };
}

/**
 * The envSchema a head row stores, which only a validated push ever wrote: one that is no JSON object is a fault
 * of the database, not of the caller. Read as a JSON object only (storedEnvSchemaSchema), not with the push's
 * stricter rules: a schema stored before them must still pull.
 */
export function storedEnvSchema(text: string): Record<string, unknown> {
  const checked = checkSchema(storedEnvSchemaSchema, JSON.parse(text));
  if (!checked.ok) throw new Error(`a stored envSchema does not read as one: ${checked.message}`);
  return checked.value;
}
