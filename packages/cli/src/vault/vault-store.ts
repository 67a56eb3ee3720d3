import {
  LatchkeyError,
  associatedData,
  fromBase64,
  isLatchkeyError,
  toBase64,
  utf8Decode,
  utf8Encode,
} from "@latchkey/core";
import { join } from "node:path";
import type { Random } from "../context.js";
import { openEnvelopeSync, sealEnvelopeSync } from "../crypto/native.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import type { Keystore } from "../keystore/types.js";
import { getOrCreateWrappingKey, readWrappingKey } from "./wrapping-key.js";

/** A vault's plaintext: environment name -> secret name -> value. */
export type VaultDocument = Record<string, Record<string, string>>;

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
// name fails to decrypt instead of being read as that vault.
const blobContext = (vaultId: string) => associatedData({ purpose: "latchkey-vault", vault: vaultId });
const keyContext = (vaultId: string) => associatedData({ purpose: "latchkey-vault-key", vault: vaultId });

async function unwrapVaultKey(deps: VaultStoreDeps, vaultId: string, wrapped: string): Promise<Uint8Array> {
  const wrappingKey = await readWrappingKey(deps.keystore);
  if (wrappingKey === null) {
    throw new LatchkeyError("LK_VAULT_KEY_MISSING", {
      message: `This machine has no wrapping key, so the key of vault ${vaultId} cannot be opened.`,
    });
  }
  try {
    return openEnvelopeSync(wrappingKey, fromBase64(wrapped), keyContext(vaultId));
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The key of vault ${vaultId} could not be unwrapped with this machine's wrapping key.`,
    });
  }
}

async function loadVaultKey(deps: VaultStoreDeps, vaultId: string): Promise<Uint8Array | null> {
  const wrapped = await deps.keystore.get(vaultKeyAccount(vaultId));
  return wrapped === null ? null : unwrapVaultKey(deps, vaultId, wrapped);
}

// Called only under the vault's lock, so two first writers cannot each create a different key.
async function loadOrCreateVaultKey(deps: VaultStoreDeps, vaultId: string): Promise<Uint8Array> {
  const existing = await loadVaultKey(deps, vaultId);
  if (existing) return existing;
  const wrappingKey = await getOrCreateWrappingKey(deps.keystore, deps.home, deps.random);
  const key = deps.random.bytes(32);
  const wrapped = sealEnvelopeSync(wrappingKey, key, keyContext(vaultId), (n) => deps.random.bytes(n));
  await deps.keystore.set(vaultKeyAccount(vaultId), toBase64(wrapped));
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
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw corrupt();
  const document: VaultDocument = {};
  for (const [environment, entries] of Object.entries(parsed)) {
    if (typeof entries !== "object" || entries === null || Array.isArray(entries)) throw corrupt();
    const target: Record<string, string> = {};
    for (const [key, value] of Object.entries(entries as Record<string, unknown>)) {
      if (typeof value !== "string") throw corrupt();
      target[key] = value;
    }
    document[environment] = target;
  }
  return document;
}

/**
 * Reads and decrypts a vault. A vault with no local file is empty. A file this machine cannot open is an error
 * (never treated as empty), and the file is left as it is.
 */
export async function readVault(deps: VaultStoreDeps, vaultId: string): Promise<VaultDocument> {
  const path = vaultFile(deps.vaultsDir, vaultId);
  const bytes = await readFileSafe(path);
  if (bytes === null) return {};
  const key = await loadVaultKey(deps, vaultId);
  if (key === null) {
    throw new LatchkeyError("LK_VAULT_KEY_MISSING", {
      message: `The vault file ${path} exists, but this machine's keystore has no key for vault ${vaultId}.`,
    });
  }
  let plaintext: Uint8Array;
  try {
    plaintext = openEnvelopeSync(key, bytes, blobContext(vaultId));
  } catch (error) {
    if (!isLatchkeyError(error, "LK_DECRYPT_FAILED")) throw error;
    throw new LatchkeyError("LK_VAULT_DECRYPT_FAILED", {
      message: `The vault file ${path} could not be decrypted.`,
    });
  }
  return parseDocument(path, plaintext);
}

/**
 * Changes a vault under its lock: read (failing, and writing nothing, if it cannot be read), apply `change`,
 * seal and replace the file atomically. `change` mutates the document and says whether anything changed.
 */
export async function updateVault<T>(
  deps: VaultStoreDeps,
  vaultId: string,
  change: (document: VaultDocument) => { result: T; changed: boolean },
): Promise<T> {
  await ensurePrivateDir(deps.home);
  await ensurePrivateDir(deps.vaultsDir);
  const path = vaultFile(deps.vaultsDir, vaultId);
  return withFileLock(path, async (lockLost) => {
    const document = await readVault(deps, vaultId);
    const { result, changed } = change(document);
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
