import {
  LatchkeyError,
  associatedData,
  canonicalVaultId,
  fromBase64,
  isLatchkeyError,
  toBase64,
  utf8Decode,
  utf8Encode,
  vaultKeyContext,
  type VaultDocument,
} from "@latchkey/core";
import { join } from "node:path";
import type { Random } from "../context.js";
import { openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";
import { readVaultDocument } from "../fast-readers.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import type { Keystore } from "../keystore/types.js";
import { getOrCreateWrappingKey, readPendingWrappingKey, readWrappingKey } from "./wrapping-key.js";

/** A vault's plaintext: environment name -> secret name -> value (core's vaultDocumentSchema). */
export type { VaultDocument };

/** What the vault store touches. */
export interface VaultStoreDeps {
  readonly keystore: Keystore;
  readonly home: string;
  readonly vaultsDir: string;
  readonly random: Random;
}

/** Keystore account holding a vault's key, wrapped by the machine wrapping key. */
export function vaultKeyAccount(vaultId: string): string {
  return `vault-key:${vaultId}`;
}

/** The local blob of a vault. The id must already be validated (project/vault-id.ts). */
export function vaultFile(vaultsDir: string, vaultId: string): string {
  return join(vaultsDir, `${vaultId}.enc`);
}

// Associated data binds each ciphertext to its vault, so a blob or wrapped key copied under another vault's
// name fails to decrypt instead of being read as that vault. It takes the id's one spelling: the wrapped key
// travels through the server to machines whose latchkey.json may spell the id otherwise.
const blobContext = (vaultId: string) =>
  associatedData({ purpose: "latchkey-vault", vault: canonicalVaultId(vaultId) });
const keyContext = vaultKeyContext;

/** Wraps a vault key with a machine wrapping key: the text kept under `vault-key:<id>` and pushed as `wrappedKey`. */
export function wrapVaultKey(
  wrappingKey: Uint8Array,
  vaultId: string,
  key: Uint8Array,
  random: Random,
): string {
  return toBase64(sealEnvelopeSync(wrappingKey, key, keyContext(vaultId), (n) => random.bytes(n)));
}

/**
 * Unwraps a wrapped vault key with this machine's wrapping key, or with the key a rotation in progress is moving
 * to (`env rotate-key` re-wraps vault keys one at a time, and a crash may stop it anywhere). Null when no key
 * of this machine opens it (wrapped for another machine, or this machine has no wrapping key).
 */
export async function tryUnwrapVaultKey(
  keystore: Keystore,
  vaultId: string,
  wrapped: string,
): Promise<Uint8Array | null> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(wrapped);
  } catch {
    return null;
  }
  const open = async (wrappingKey: Uint8Array | null): Promise<Uint8Array | null> => {
    if (wrappingKey === null) return null;
    try {
      return await openEnvelopeCli(wrappingKey, bytes, keyContext(vaultId));
    } catch (error) {
      if (!isLatchkeyError(error)) throw error;
      return null;
    }
  };
  // The pending key is read only when the current one fails: `run` and `env get` sit on this path, and outside a
  // rotation a second keystore read would be pure start-up cost.
  return (await open(await readWrappingKey(keystore))) ?? open(await readPendingWrappingKey(keystore));
}

async function unwrapVaultKey(deps: VaultStoreDeps, vaultId: string, wrapped: string): Promise<Uint8Array> {
  const key = await tryUnwrapVaultKey(deps.keystore, vaultId, wrapped);
  if (key !== null) return key;
  if ((await readWrappingKey(deps.keystore)) === null) {
    throw new LatchkeyError("LK_VAULT_KEY_MISSING", {
      message: `This machine has no wrapping key, so the key of vault ${vaultId} cannot be opened.`,
    });
  }
  throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
    message: `The key of vault ${vaultId} could not be unwrapped with this machine's wrapping key.`,
  });
}

/** The vault's key from this machine's keystore, or null when the keystore has none for it. */
export async function loadVaultKey(deps: VaultStoreDeps, vaultId: string): Promise<Uint8Array | null> {
  const wrapped = await deps.keystore.get(vaultKeyAccount(vaultId));
  return wrapped === null ? null : unwrapVaultKey(deps, vaultId, wrapped);
}

// Called only under the vault's lock, so two first writers cannot each create a different key. During a
// rotation a new key is wrapped by the pending key, which is the one that survives the rotation.
async function loadOrCreateVaultKey(deps: VaultStoreDeps, vaultId: string): Promise<Uint8Array> {
  const existing = await loadVaultKey(deps, vaultId);
  if (existing) return existing;
  const wrappingKey =
    (await readPendingWrappingKey(deps.keystore)) ??
    (await getOrCreateWrappingKey(deps.keystore, deps.home, deps.random));
  const key = deps.random.bytes(32);
  await deps.keystore.set(vaultKeyAccount(vaultId), wrapVaultKey(wrappingKey, vaultId, key, deps.random));
  return key;
}

function parseDocument(path: string, plaintext: Uint8Array): VaultDocument {
  const corrupt = () =>
    new LatchkeyError("LK_STORE_CORRUPT", { message: `The vault ${path} decrypted to an unexpected shape.` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(plaintext));
  } catch {
    throw corrupt();
  }
  const document = readVaultDocument(parsed);
  if (!document.ok) throw corrupt();
  return document.value;
}

/**
 * Reads and decrypts a vault. A vault with no local file is empty. A file this machine cannot open is an error
 * (never treated as empty), and the file is left as it is.
 */
export async function readVault(deps: VaultStoreDeps, vaultId: string): Promise<VaultDocument> {
  return (await readVaultWithPresence(deps, vaultId)).document;
}

/** Like `readVault`, and says whether the vault has a local file at all (an absent vault reads as empty). */
export async function readVaultWithPresence(
  deps: VaultStoreDeps,
  vaultId: string,
): Promise<{ document: VaultDocument; exists: boolean }> {
  const path = vaultFile(deps.vaultsDir, vaultId);
  const bytes = await readFileSafe(path);
  if (bytes === null) return { document: {}, exists: false };
  const key = await loadVaultKey(deps, vaultId);
  if (key === null) {
    throw new LatchkeyError("LK_VAULT_KEY_MISSING", {
      message: `The vault file ${path} exists, but this machine's keystore has no key for vault ${vaultId}.`,
    });
  }
  let plaintext: Uint8Array;
  try {
    plaintext = await openEnvelopeCli(key, bytes, blobContext(vaultId));
  } catch (error) {
    if (!isLatchkeyError(error, "LK_DECRYPT_FAILED")) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The vault file ${path} could not be decrypted.`,
    });
  }
  return { document: parseDocument(path, plaintext), exists: true };
}

/**
 * Changes a vault under its lock: read (failing, and writing nothing, if it cannot be read), apply `change`,
 * seal and replace the file atomically. `change` mutates the document and says whether anything changed;
 * `exists` tells it whether the vault had a local file (absent reads as empty).
 */
export async function updateVault<T>(
  deps: VaultStoreDeps,
  vaultId: string,
  change: (document: VaultDocument, exists: boolean) => { result: T; changed: boolean },
): Promise<T> {
  await ensurePrivateDir(deps.home);
  await ensurePrivateDir(deps.vaultsDir);
  const path = vaultFile(deps.vaultsDir, vaultId);
  return withFileLock(path, async (lockLost) => {
    const { document, exists } = await readVaultWithPresence(deps, vaultId);
    const { result, changed } = change(document, exists);
    if (!changed) return result;
    const key = await loadOrCreateVaultKey(deps, vaultId);
    const sealed = sealEnvelopeSync(key, utf8Encode(JSON.stringify(document)), blobContext(vaultId), (n) =>
      deps.random.bytes(n),
    );
    lockLost.throwIfAborted();
    await writeFileAtomic(path, sealed);
    return result;
  });
}
