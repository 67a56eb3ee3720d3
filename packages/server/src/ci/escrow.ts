/**
 * The one place the server opens a vault copy with its CI escrow (docs/ci.md "Escrow"): the escrowed vault key is
 * unwrapped with the server's escrow key and opens the copy's head blob, bound to the copy and its version. Enabling
 * CI checks an escrow with it before storing it; a CI pull reads the environment it releases through it. The
 * plaintext it answers goes to the caller only: never to a log line, an error or the database.
 */
import { checkSchema, utf8Decode, vaultDocumentSchema, type VaultDocument } from "@latchkey/core";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { openWithEscrow, type EscrowKey } from "../escrow-key.js";
import { copyBlobContext, storedEnvSchema, type CopyRef } from "../vault-copies.js";
import { findCopyHead, type CiPolicyRecord, type CopyHeadRecord } from "./policies-data.js";

/** A copy's head as its escrow opened it. */
export interface OpenedCopy {
  kind: "opened";
  document: VaultDocument;
  version: number;
  /** The copy's stored envSchema, or null. */
  schema: Record<string, unknown> | null;
}

/**
 * Opens `head` of `copy` with `escrowedKey`: the vault document it holds, or `escrow-stale` when the escrowed key is
 * for another escrow key than the server's, does not unwrap, or does not open the blob as a vault document of this
 * copy and version.
 */
export async function openCopyHead(
  escrowKey: EscrowKey,
  escrow: { escrowedKey: string; escrowKeyFingerprint: string },
  copy: CopyRef,
  head: CopyHeadRecord,
): Promise<OpenedCopy | { kind: "escrow-stale" }> {
  if (escrow.escrowKeyFingerprint !== escrowKey.fingerprint) return { kind: "escrow-stale" };
  const plaintext = await openWithEscrow(
    escrowKey,
    escrow.escrowedKey,
    Buffer.from(head.encryptedBlob, "base64"),
    copyBlobContext(copy, head.version),
  );
  if (plaintext === null) return { kind: "escrow-stale" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(plaintext));
  } catch {
    return { kind: "escrow-stale" };
  } finally {
    plaintext.fill(0);
  }
  const document = checkSchema(vaultDocumentSchema, parsed);
  if (!document.ok) return { kind: "escrow-stale" };
  return {
    kind: "opened",
    document: document.value,
    version: head.version,
    schema: head.schemaJson === null ? null : storedEnvSchema(head.schemaJson),
  };
}

/**
 * The decrypted head of the copy `policy` is for (the CI pull): `copy-not-found` when the copy is gone, and
 * `escrow-stale` when its escrow no longer opens it (the server's escrow key was replaced).
 */
export async function openEscrowedCopy(
  db: Kysely<Database>,
  escrowKey: EscrowKey,
  policy: Pick<CiPolicyRecord, "copy" | "escrowedKey" | "escrowKeyFingerprint">,
): Promise<OpenedCopy | { kind: "copy-not-found" } | { kind: "escrow-stale" }> {
  const head = await findCopyHead(db, policy.copy);
  if (head === undefined) return { kind: "copy-not-found" };
  return openCopyHead(escrowKey, policy, policy.copy, head);
}
