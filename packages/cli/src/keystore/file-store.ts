import { LatchkeyError, concatBytes, isLatchkeyError, utf8Decode, utf8Encode } from "@latchkey/core";
import { readFileSync } from "node:fs";
import type { Random } from "../context.js";
import { hkdfSha256Sync, openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";
import { importExternal } from "../external.js";
import { readFileStoreBody } from "../fast-readers.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, removeFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import type { Keystore } from "./types.js";

// store.enc layout: "LKS" + format version, a KDF id, the KDF's parameters, then a core AEAD envelope whose
// associated data is everything before it, so neither the KDF choice nor its parameters can be swapped.
const MAGIC = [0x4c, 0x4b, 0x53, 0x01] as const;
const KDF_MACHINE = 0x01;
const KDF_ARGON2ID = 0x02;
const ARGON2_HEADER_LENGTH = 4 + 1 + 16 + 4 + 4 + 1;
const MACHINE_HEADER_LENGTH = 4 + 1;
const AAD_PREFIX = utf8Encode("latchkey file store\0");
const MACHINE_INFO = utf8Encode("latchkey file store v1: machine-bound key");

/** Argon2id cost; RFC 9106's second recommended setting (64 MiB, 3 passes). */
export interface Argon2Cost {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/** RFC 9106 §4, option 2: for machines where 2 GiB per derivation is too much. */
export const DEFAULT_ARGON2: Argon2Cost = { memoryCost: 65536, timeCost: 3, parallelism: 1 };

/** How the store's key is protected, as `doctor` reports it. */
export type FileStoreProtection = "passphrase" | "machine-key";

/** What `doctor` shows about the file store. */
export interface FileStoreInfo {
  readonly exists: boolean;
  readonly protection: FileStoreProtection | null;
}

/** Dependencies of the encrypted file store. */
export interface FileStoreOptions {
  readonly home: string;
  readonly store: string;
  readonly storeKey: string;
  /** From LATCHKEY_PASSPHRASE; when set, new writes use Argon2id over it instead of the machine-bound key. */
  readonly passphrase?: string | undefined;
  readonly machineIdPaths: readonly string[];
  readonly random: Random;
  readonly argon2?: Argon2Cost;
}

/** The file store plus the operations resolution and `doctor` need beyond the Keystore interface. */
export interface FileKeystore extends Keystore {
  readonly kind: "file";
  describe(): Promise<FileStoreInfo>;
  /** Every entry, for promotion into the OS keychain. */
  entries(): Promise<Map<string, string>>;
  /** Deletes store.enc and store.key, after their entries were promoted. */
  destroy(): Promise<void>;
}

type Header =
  | { kdf: "machine"; bytes: Uint8Array }
  | { kdf: "argon2id"; bytes: Uint8Array; salt: Uint8Array; cost: Argon2Cost };

function corrupt(path: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_STORE_CORRUPT", { message: `The file store ${path} is damaged: ${why}.` });
}

function parseHeader(path: string, bytes: Uint8Array): Header {
  if (bytes.length < MACHINE_HEADER_LENGTH || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw corrupt(path, "it does not start with a Latchkey store header");
  }
  if (bytes[4] === KDF_MACHINE) return { kdf: "machine", bytes: bytes.subarray(0, MACHINE_HEADER_LENGTH) };
  if (bytes[4] === KDF_ARGON2ID && bytes.length >= ARGON2_HEADER_LENGTH) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return {
      kdf: "argon2id",
      bytes: bytes.subarray(0, ARGON2_HEADER_LENGTH),
      salt: bytes.slice(5, 21),
      cost: { memoryCost: view.getUint32(21), timeCost: view.getUint32(25), parallelism: view.getUint8(29) },
    };
  }
  throw corrupt(path, "its key-derivation header is unknown or truncated");
}

function machineHeader(): Header {
  return { kdf: "machine", bytes: new Uint8Array([...MAGIC, KDF_MACHINE]) };
}

function argon2Header(salt: Uint8Array, cost: Argon2Cost): Header {
  const bytes = new Uint8Array(ARGON2_HEADER_LENGTH);
  bytes.set([...MAGIC, KDF_ARGON2ID]);
  bytes.set(salt, 5);
  const view = new DataView(bytes.buffer);
  view.setUint32(21, cost.memoryCost);
  view.setUint32(25, cost.timeCost);
  view.setUint8(29, cost.parallelism);
  return { kdf: "argon2id", bytes, salt, cost };
}

/** Reads the first non-empty machine id: binds the key file to this host (DESIGN.md, keystore resolution 3). */
export function readMachineId(paths: readonly string[]): string {
  for (const path of paths) {
    try {
      const id = readFileSync(path, "utf8").trim();
      if (id) return id;
    } catch {
      // Try the next location; containers often have only one of them.
    }
  }
  throw new LatchkeyError("LK_MACHINE_ID_MISSING", {
    message: `No machine id could be read from ${paths.join(" or ")}.`,
  });
}

/**
 * The encrypted file store (`store.enc`), used only where no OS keychain is reachable or when forced. AES-256-GCM
 * under a key from Argon2id over LATCHKEY_PASSPHRASE, or else from a random 256-bit key file mixed by HKDF with
 * the machine id. Writes take an inter-process lock and replace the file atomically, so a crash leaves either the
 * old or the new store, never a mix.
 */
export function createFileKeystore(options: FileStoreOptions): FileKeystore {
  const keys = new Map<string, Promise<Uint8Array>>();

  async function derive(header: Header, createKeyFile: boolean): Promise<Uint8Array> {
    if (header.kdf === "argon2id") {
      if (options.passphrase === undefined) {
        throw new LatchkeyError("LK_STORE_DECRYPT_FAILED", {
          message: `The file store ${options.store} is protected by a passphrase, and none was given.`,
          hint: "Set LATCHKEY_PASSPHRASE to the passphrase the store was created with.",
        });
      }
      const { hashRaw } = await importExternal("@node-rs/argon2");
      const raw = await hashRaw(options.passphrase, {
        algorithm: 2, // Argon2id; the package's Algorithm is a const enum, which isolated modules cannot import.
        salt: header.salt,
        outputLen: 32,
        ...header.cost,
      });
      return new Uint8Array(raw);
    }
    let keyFile = await readFileSafe(options.storeKey);
    if (keyFile === null) {
      if (!createKeyFile) {
        throw new LatchkeyError("LK_STORE_DECRYPT_FAILED", {
          message: `The file store's key file ${options.storeKey} is missing.`,
          hint: "Restore store.key from a backup; without it the store cannot be decrypted (it was left untouched).",
        });
      }
      keyFile = options.random.bytes(32);
      await writeFileAtomic(options.storeKey, keyFile);
    }
    if (keyFile.length !== 32) throw corrupt(options.storeKey, "the key file is not 32 bytes");
    const machineId = readMachineId(options.machineIdPaths);
    return hkdfSha256Sync(keyFile, utf8Encode(machineId), MACHINE_INFO, 32);
  }

  function keyFor(header: Header, createKeyFile = false): Promise<Uint8Array> {
    const id = Array.from(header.bytes).join(",");
    let key = keys.get(id);
    if (!key) {
      key = derive(header, createKeyFile);
      keys.set(id, key);
      // A failed derivation (say, no passphrase yet) must not be remembered.
      key.catch(() => keys.delete(id));
    }
    return key;
  }

  async function load(): Promise<{ header: Header; entries: Map<string, string> } | null> {
    const bytes = await readFileSafe(options.store);
    if (bytes === null) return null;
    const header = parseHeader(options.store, bytes);
    const key = await keyFor(header);
    let plaintext: Uint8Array;
    try {
      plaintext = await openEnvelopeCli(
        key,
        bytes.subarray(header.bytes.length),
        concatBytes(AAD_PREFIX, header.bytes),
      );
    } catch (error) {
      if (!isLatchkeyError(error, "LK_DECRYPT_FAILED")) throw error;
      throw new LatchkeyError("LK_STORE_DECRYPT_FAILED", {
        message: `The file store ${options.store} could not be decrypted.`,
        hint:
          header.kdf === "argon2id"
            ? "Check LATCHKEY_PASSPHRASE is the passphrase the store was created with. The file was left untouched."
            : "The store was written on another machine or with another store.key, or was modified. The file was left untouched.",
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8Decode(plaintext));
    } catch {
      throw corrupt(options.store, "its decrypted content is not JSON");
    }
    const body = readFileStoreBody(parsed);
    if (!body.ok) throw corrupt(options.store, body.message);
    return { header, entries: new Map(Object.entries(body.value.entries)) };
  }

  async function mutate<T>(
    change: (entries: Map<string, string>) => { result: T; changed: boolean },
  ): Promise<T> {
    await ensurePrivateDir(options.home);
    return withFileLock(options.store, async (lockLost) => {
      const current = await load();
      const entries = current?.entries ?? new Map<string, string>();
      const { result, changed } = change(entries);
      if (!changed) return result;
      let header = current?.header;
      if (options.passphrase !== undefined && header?.kdf !== "argon2id") {
        // A passphrase given now upgrades a machine-bound store on its next write.
        header = argon2Header(options.random.bytes(16), options.argon2 ?? DEFAULT_ARGON2);
      }
      header ??= machineHeader();
      const key = await keyFor(header, true);
      const body = utf8Encode(JSON.stringify({ entries: Object.fromEntries(entries) }));
      const sealed = sealEnvelopeSync(key, body, concatBytes(AAD_PREFIX, header.bytes), (n) =>
        options.random.bytes(n),
      );
      // Another process may have taken over a lock we held too long; writing now could undo its change.
      lockLost.throwIfAborted();
      await writeFileAtomic(options.store, concatBytes(header.bytes, sealed));
      return result;
    });
  }

  return {
    kind: "file",
    get: async (account) => (await load())?.entries.get(account) ?? null,
    set: (account, value) =>
      mutate((entries) => {
        entries.set(account, value);
        return { result: undefined, changed: true };
      }),
    delete: async (account) => {
      if (!(await load())?.entries.has(account)) return false;
      return mutate((entries) => {
        const removed = entries.delete(account);
        return { result: removed, changed: removed };
      });
    },
    list: async () => [...((await load())?.entries.keys() ?? [])].sort(),
    entries: async () => (await load())?.entries ?? new Map(),
    describe: async () => {
      const bytes = await readFileSafe(options.store);
      if (bytes === null) return { exists: false, protection: null };
      const header = parseHeader(options.store, bytes);
      return { exists: true, protection: header.kdf === "argon2id" ? "passphrase" : "machine-key" };
    },
    destroy: () =>
      withFileLock(options.store, async () => {
        await removeFileSafe(options.store);
        await removeFileSafe(options.storeKey);
      }),
  };
}
