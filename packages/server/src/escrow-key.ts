/**
 * The escrow key (docs/ci.md "Escrow"): one X25519 key pair per server, for which a user who enables CI on a vault
 * copy wraps that copy's vault key, so that the server can open the copy for a verified CI job and for nothing
 * else. From LATCHKEY_ESCROW_KEY (standard base64 of the 32-byte private scalar) when set, else generated once as
 * `escrow.key` in the data directory, kept exactly as the server secret is (secret.ts).
 *
 * Every process on one database must hold the same key: an escrow made for one key cannot be opened with another,
 * so two processes with different keys would each refuse what the other accepted. The first process records the
 * key's fingerprint in the database (server_meta); a process with another key refuses to start
 * ({@link recordEscrowKey}).
 */
import {
  fromBase64,
  isLatchkeyError,
  LatchkeyError,
  openEnvelope,
  sharingKeyFingerprint,
  toBase64,
  unwrapKeyForRecipient,
  x25519PublicKey,
} from "@latchkey/core";
import type { Kysely } from "kysely";
import { runQuery } from "./db/query.js";
import type { Database } from "./db/schema.js";
import { loadPrivateValue, type PrivateValueSpec, type SecretDeps, type SecretSource } from "./secret.js";

/** File name of the generated escrow key inside the data directory. */
export const ESCROW_KEY_FILE = "escrow.key";
/** Environment variable that supplies the escrow key instead of the file. */
export const ESCROW_KEY_ENV = "LATCHKEY_ESCROW_KEY";
/** The server_meta row that holds the fingerprint of the escrow key every process must use. */
export const ESCROW_KEY_META = "escrow_key_fingerprint";

const KEY_BYTES = 32;

/** The server's escrow key pair. Plain data, so it crosses to the sync writer thread (sync/writer-thread.ts). */
export interface EscrowKey {
  /** The 32-byte X25519 private scalar. Never logged, never stored outside its file. */
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** Lower-case hex SHA-256 of the public key (core's sharingKeyFingerprint). */
  readonly fingerprint: string;
}

/** The escrow key's spec (admin backup reads it with readPrivateValue). */
export const ESCROW_KEY: PrivateValueSpec = {
  file: ESCROW_KEY_FILE,
  envName: ESCROW_KEY_ENV,
  what: "the escrow key",
  generate: (randomBytes) => toBase64(randomBytes(KEY_BYTES)),
  problem: (text) => (decodesToKey(text) ? null : `not the standard base64 of ${KEY_BYTES} bytes`),
  envHint: `Use 32 random bytes in standard base64, e.g. \`openssl rand -base64 32\`, the same in every process of the server, or unset ${ESCROW_KEY_ENV} to let the server generate one in its data directory.`,
  exposedHint:
    "anyone who read it together with the database can open the vaults with CI enabled: disable and enable CI on them again after replacing the key (docs/ci.md, Escrow)",
};

/** Whether `text` is the canonical standard base64 of 32 bytes (fromBase64 takes that form only). */
function decodesToKey(text: string): boolean {
  try {
    return fromBase64(text).length === KEY_BYTES;
  } catch {
    return false;
  }
}

/** The escrow key pair of a 32-byte private scalar. */
export async function escrowKeyFrom(privateKey: Uint8Array): Promise<EscrowKey> {
  const publicKey = await x25519PublicKey(privateKey);
  return { privateKey, publicKey, fingerprint: await sharingKeyFingerprint(publicKey) };
}

/** Reads the escrow key from LATCHKEY_ESCROW_KEY or the data directory's escrow.key (made now if absent). */
export async function loadEscrowKey(deps: SecretDeps): Promise<{ key: EscrowKey; source: SecretSource }> {
  const { value, source } = await loadPrivateValue(ESCROW_KEY, deps);
  return { key: await escrowKeyFrom(fromBase64(value)), source };
}

/**
 * Records `key` as the escrow key of the database `db`, or checks that it is the one recorded: the first process
 * writes its fingerprint, every later one must match it. Throws LK_CONFIG_INVALID otherwise, and the process then
 * refuses to start.
 */
export async function recordEscrowKey(db: Kysely<Database>, key: EscrowKey): Promise<void> {
  const recorded = await runQuery("record escrow key", async () => {
    // An insert that skips an existing row: two first starts at once both read the one that won.
    await db
      .insertInto("server_meta")
      .values({ key: ESCROW_KEY_META, value: key.fingerprint })
      .onConflict((oc) => oc.column("key").doNothing())
      .execute();
    const row = await db
      .selectFrom("server_meta")
      .select("value")
      .where("key", "=", ESCROW_KEY_META)
      .executeTakeFirstOrThrow();
    return row.value;
  });
  if (recorded !== key.fingerprint) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `This server's escrow key (fingerprint ${key.fingerprint.slice(0, 16)}…) is not the one its database was first used with (${recorded.slice(0, 16)}…): every process must use the same LATCHKEY_ESCROW_KEY.`,
      hint: `Give every process of the server the same ${ESCROW_KEY_ENV} (or the same data directory's ${ESCROW_KEY_FILE}). To replace the escrow key on purpose, follow docs/ci.md, "Replacing the escrow key".`,
    });
  }
}

/**
 * Unwraps a vault key escrowed for `key` (wrapKeyForRecipient). A malformed wire string is LK_FORMAT_INVALID, any
 * other failure the opaque LK_DECRYPT_FAILED; the caller turns either into its own answer.
 */
export function unwrapEscrowedKey(key: EscrowKey, escrowedKey: string): Promise<Uint8Array> {
  return unwrapKeyForRecipient(escrowedKey, key.privateKey, key.publicKey);
}

/**
 * Opens `blob` (a copy's sealed vault document, bound to `associatedData`) with the vault key escrowed in
 * `escrowedKey`: its plaintext, or null when the escrowed key does not unwrap or the blob does not open with it.
 * The unwrapped vault key is zeroed before this returns.
 */
export async function openWithEscrow(
  key: EscrowKey,
  escrowedKey: string,
  blob: Uint8Array,
  associatedData: Uint8Array,
): Promise<Uint8Array | null> {
  let vaultKey: Uint8Array | undefined;
  try {
    vaultKey = await unwrapEscrowedKey(key, escrowedKey);
    return await openEnvelope(vaultKey, blob, associatedData);
  } catch (error) {
    if (isLatchkeyError(error, "LK_DECRYPT_FAILED") || isLatchkeyError(error, "LK_FORMAT_INVALID"))
      return null;
    throw error;
  } finally {
    vaultKey?.fill(0);
  }
}

/** The escrow key's public half as `GET /api/v1/ci/config` sends it. */
export function escrowPublicKeyText(key: EscrowKey): string {
  return toBase64(key.publicKey);
}
