/**
 * What every kind of vault copy shares — a user's personal copy (sync/) and an organisation's (orgs/): the
 * versioned push, and reading a stored envSchema. The versioned push, once for both: A copy moves from version N to N + 1 only through one conditional statement on
 * its head row — an UPDATE that requires version N, or for version 1 an INSERT that does nothing when the row
 * exists — so two pushes from one base can never both succeed; the acknowledged version gets its history row and
 * its audit row in the same transaction. The callers add what differs around it (who may push, what else the
 * transaction writes).
 *
 * The push also keeps a CI escrow true (docs/ci.md "Escrow"): on a copy with a CI policy, the new version must open
 * with the escrowed vault key, or with the one the push carries when the caller may replace it — else the push is
 * refused and the caller rolls it back, so the server never holds a version its escrow cannot open.
 */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { checkSchema, storedEnvSchemaSchema, syncBlobContext, type CiEscrow } from "@latchkey/core";
import { insertAudit } from "./audit/data.js";
import { findCopyEscrow, updateEscrow } from "./ci/policies-data.js";
import { findCopyHead, type CopyHeadRecord, type CopyRef } from "./db/copies.js";
import type { HeadWrite } from "./db/heads.js";
import type { Database } from "./db/schema.js";
import { openWithEscrow, type EscrowKey } from "./escrow-key.js";

/** A copy of a vault (db/copies.ts), re-exported for the slices that name copies through this module. */
export type { CopyRef };

/** The associated data `copy`'s blob of `version` is sealed under (core syncBlobContext). */
export function copyBlobContext(copy: CopyRef, version: number): Uint8Array {
  return "orgId" in copy
    ? syncBlobContext(copy.vaultId, version, copy.slug)
    : syncBlobContext(copy.vaultId, version);
}

/** One copy's head and history, as the push moves it (data access of its tables). */
export interface HeadStore {
  /** The copy it moves. */
  readonly copy: CopyRef;
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
  /** The vault key escrowed anew, for a copy with CI whose vault key changed; ignored on a copy without. */
  escrow?: CiEscrow | undefined;
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
 * rolls back what it wrote before), `escrow-stale` when the copy has CI and neither its escrow nor the push's opens
 * the new version (the head has moved: the caller must roll back).
 */
export type VersionedOutcome =
  | { kind: "pushed"; version: number; createdAt: string }
  | { kind: "stale" }
  | { kind: "taken"; currentVersion: number }
  | { kind: "escrow-stale" };

/** What the push needs besides the copy and the request. */
export interface PushOptions {
  /**
   * The server's escrow key, to open the new version with a CI escrow. Absent (an app without CI, in tests): a push
   * to a copy with a CI policy is refused, as no escrow can be checked.
   */
  escrowKey?: EscrowKey | undefined;
  /** What the personal head stores beside the blob (an organisation's head stores none). */
  wrappedKey?: string;
  /**
   * When the push's own escrow may replace the copy's ({@link EscrowReplacement}); default `escrow-key-change`.
   */
  escrowReplacement?: EscrowReplacement;
}

/**
 * Which escrow a push may swap in. An escrow decides what CI jobs receive, so a push that may replace it with the
 * escrow of any key could hand them values sealed under a key of its own (a stolen token, an organisation's plain
 * member). `new-key`: an organisation's share (maintainer or stronger), which gives the copy a new key.
 * `escrow-key-change`: every other push, whose copy keeps its key: only in place of an escrow for an older escrow
 * key of the server, and only with the key that opens the copy's previous version too.
 */
export type EscrowReplacement = "new-key" | "escrow-key-change";

/**
 * Stores `push` as version baseVersion + 1 of the copy `heads` names, with its history row and its audit row, in
 * `trx`, and keeps the copy's CI escrow true ({@link checkEscrow}).
 */
export async function pushVersion(
  trx: Kysely<Database>,
  heads: HeadStore,
  push: VersionedPush,
  at: string,
  audit: PushAudit,
  options: PushOptions,
): Promise<VersionedOutcome> {
  const wrappedKey = options.wrappedKey ?? "";
  const write: HeadWrite = {
    encryptedBlob: push.encryptedBlob,
    wrappedKey,
    schemaJson: push.schema === undefined ? undefined : JSON.stringify(push.schema),
    name: push.name,
    updatedAt: at,
  };
  const replacement = options.escrowReplacement ?? "escrow-key-change";
  // Read before the head moves: the version an escrow-key change must prove the same key opens.
  const previous =
    push.escrow !== undefined && replacement === "escrow-key-change" && push.baseVersion !== 0
      ? await findCopyHead(trx, heads.copy)
      : undefined;
  if (push.baseVersion !== 0) {
    if (!(await heads.advance(trx, push.baseVersion, write))) return { kind: "stale" };
  } else if (!(await heads.insertFirst(trx, write))) {
    return { kind: "taken", currentVersion: await heads.currentVersion(trx) };
  }
  const version = push.baseVersion + 1;
  const escrow = await checkEscrow(trx, heads.copy, push, version, at, options.escrowKey, {
    replacement,
    previous: previous?.version === push.baseVersion ? previous : undefined,
  });
  if (escrow === "stale") return { kind: "escrow-stale" };
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
      ...(escrow === "none" ? {} : { ciEscrow: escrow }),
    },
  });
  return { kind: "pushed", version, createdAt: at };
}

/**
 * On a copy with a CI policy, whether `version` (the push's blob) opens with the escrowed vault key: `verified`
 * (the policy now names this version), else `replaced` when the push's own escrow is for the current escrow key,
 * opens it and may replace the old one ({@link EscrowReplacement}; for an escrow-key change, `previous` is the
 * copy's head before the push), else `stale`. `none` for a copy without a policy, whose push's escrow is ignored.
 */
async function checkEscrow(
  trx: Kysely<Database>,
  copy: CopyRef,
  push: VersionedPush,
  version: number,
  at: string,
  key: EscrowKey | undefined,
  may: { replacement: EscrowReplacement; previous: CopyHeadRecord | undefined },
): Promise<"none" | "verified" | "replaced" | "stale"> {
  const current = await findCopyEscrow(trx, copy);
  if (current === undefined) return "none";
  if (key === undefined) return "stale";
  const blob = Buffer.from(push.encryptedBlob, "base64");
  const context = copyBlobContext(copy, version);
  const opens = async (
    escrowedKey: string,
    fingerprint: string,
    sealed: Uint8Array = blob,
    sealedContext: Uint8Array = context,
  ): Promise<boolean> => {
    if (fingerprint !== key.fingerprint) return false;
    const plaintext = await openWithEscrow(key, escrowedKey, sealed, sealedContext);
    plaintext?.fill(0);
    return plaintext !== null;
  };
  if (await opens(current.escrowedKey, current.escrowKeyFingerprint)) {
    await updateEscrow(trx, current.id, version, at);
    return "verified";
  }
  const offered = push.escrow;
  if (offered === undefined || !(await opens(offered.escrowedKey, offered.escrowKeyFingerprint)))
    return "stale";
  if (may.replacement === "escrow-key-change") {
    // Only the server's escrow key changed: the stored escrow is for an older one, and the offered key is the one
    // the copy was already sealed with (it opens the previous version), so CI jobs get the same copy as before.
    const { previous } = may;
    if (current.escrowKeyFingerprint === key.fingerprint || previous === undefined) return "stale";
    const before = Buffer.from(previous.encryptedBlob, "base64");
    const beforeContext = copyBlobContext(copy, previous.version);
    if (!(await opens(offered.escrowedKey, offered.escrowKeyFingerprint, before, beforeContext)))
      return "stale";
  }
  await updateEscrow(trx, current.id, version, at, offered);
  return "replaced";
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
