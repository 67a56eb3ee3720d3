/**
 * The AEAD envelope that encrypts vault blobs and other stored secrets: AES-256-GCM (NIST SP 800-38D) with a
 * random 96-bit nonce, a versioned header and caller-supplied associated data that binds the ciphertext to
 * its context (vault id, versions), so a blob cannot be replayed under another vault or version.
 *
 * Binary layout:
 *
 * ```
 * "LKE" 0x01 (4 bytes) | nonce (12 bytes) | ciphertext || tag (plaintext length + 16 bytes)
 * ```
 *
 * GCM additional data is `u32be(4) || header || u32be(len(ad)) || ad`, so the header is authenticated (a
 * version byte cannot be swapped without failing the tag) and the boundary between header and caller data
 * is fixed by the encoding rather than by convention.
 */
import { concatBytes, toBufferSource, uint32be, utf8Encode } from "./bytes.js";
import { LatchkeyError } from "./errors.js";
import { randomBytes } from "./random.js";

const HEADER = new Uint8Array([0x4c, 0x4b, 0x45, 0x01]); // "LKE", format version 1
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const KEY_LENGTH = 32;

/** Bytes an envelope adds to its plaintext: header, nonce and GCM tag. */
export const ENVELOPE_OVERHEAD = HEADER.length + NONCE_LENGTH + TAG_LENGTH;

/** Options for {@link sealEnvelope}. */
export interface SealEnvelopeOptions {
  /**
   * A fixed 12-byte nonce, only for reproducing test vectors. Reusing a nonce under one key breaks GCM's
   * confidentiality and integrity, so production code never passes this.
   */
  nonce?: Uint8Array;
}

/** Checks an envelope key's length: a wrong length is a caller bug, reported apart from decrypt failures. */
export function checkEnvelopeKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new LatchkeyError("LK_FORMAT_INVALID", { message: "An envelope key must be 32 bytes (AES-256)." });
  }
}

/**
 * The GCM additional data for caller associated data `associatedData`: the header is authenticated with it.
 * Exported with {@link splitEnvelope} and {@link joinEnvelope} so another AES-GCM implementation (the CLI's
 * synchronous node:crypto one, which starts faster than WebCrypto) produces and reads the same bytes.
 */
export function envelopeGcmAdditionalData(associatedData: Uint8Array): Uint8Array<ArrayBuffer> {
  return toBufferSource(
    concatBytes(uint32be(HEADER.length), HEADER, uint32be(associatedData.length), associatedData),
  );
}

/**
 * Splits an envelope into its nonce and its ciphertext-with-tag after checking the header and the minimum
 * length; throws a plain Error otherwise (callers turn every failure into the one opaque LK_DECRYPT_FAILED).
 */
export function splitEnvelope(envelope: Uint8Array): { nonce: Uint8Array; sealed: Uint8Array } {
  if (!(envelope instanceof Uint8Array) || envelope.length < ENVELOPE_OVERHEAD) throw new Error("short");
  for (let i = 0; i < HEADER.length; i++) if (envelope[i] !== HEADER[i]) throw new Error("header");
  return {
    nonce: envelope.subarray(HEADER.length, HEADER.length + NONCE_LENGTH),
    sealed: envelope.subarray(HEADER.length + NONCE_LENGTH),
  };
}

/** Assembles an envelope from its nonce and AES-GCM ciphertext with the 16-byte tag appended. */
export function joinEnvelope(nonce: Uint8Array, sealed: Uint8Array): Uint8Array {
  return concatBytes(HEADER, nonce, sealed);
}

/** Checks a caller-fixed nonce (test vectors only) and otherwise draws a fresh random one. */
export function envelopeNonce(
  fixed: Uint8Array | undefined,
  random: (length: number) => Uint8Array,
): Uint8Array {
  const nonce = fixed ?? random(NONCE_LENGTH);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) {
    throw new LatchkeyError("LK_FORMAT_INVALID", { message: "An envelope nonce must be 12 bytes." });
  }
  return nonce;
}

function importAesKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey("raw", toBufferSource(key), "AES-GCM", false, [usage]);
}

/**
 * A key {@link openEnvelope} takes: its 32 bytes, or the CryptoKey {@link importEnvelopeKey} made of them, which
 * page script can use but never read back (the browser dashboard keeps the wrapping key so).
 */
export type EnvelopeKey = Uint8Array | CryptoKey;

/**
 * A 32-byte envelope key as a non-extractable AES-256-GCM CryptoKey that can only open envelopes: nothing can
 * export its bytes again. The caller should overwrite its copy of the bytes afterwards.
 */
export async function importEnvelopeKey(key: Uint8Array): Promise<CryptoKey> {
  checkEnvelopeKey(key);
  return importAesKey(key, "decrypt");
}

/** Checks `key` as {@link checkEnvelopeKey} does, or a CryptoKey to be an AES-256-GCM key that may `usage`. */
function checkEnvelopeKeyFor(key: EnvelopeKey, usage: "decrypt"): void {
  if (key instanceof Uint8Array) return checkEnvelopeKey(key);
  const algorithm = key.algorithm as Partial<AesKeyAlgorithm>;
  if (algorithm.name !== "AES-GCM" || algorithm.length !== KEY_LENGTH * 8 || !key.usages.includes(usage)) {
    throw new LatchkeyError("LK_FORMAT_INVALID", {
      message: `An envelope CryptoKey must be an AES-256-GCM key that may ${usage}.`,
    });
  }
}

/**
 * Encrypts `plaintext` under a 32-byte key, binding `associatedData` (build it with {@link associatedData}).
 * Each call draws a fresh random nonce; at 96 bits, keep one key below 2^32 envelopes (SP 800-38D §8.3).
 * Returns the complete envelope bytes.
 */
export async function sealEnvelope(
  key: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
  options: SealEnvelopeOptions = {},
): Promise<Uint8Array> {
  checkEnvelopeKey(key);
  const nonce = envelopeNonce(options.nonce, randomBytes);
  const cryptoKey = await importAesKey(key, "encrypt");
  const sealed = await globalThis.crypto.subtle.encrypt(
    {
      name: "AES-GCM",
      iv: toBufferSource(nonce),
      additionalData: envelopeGcmAdditionalData(associatedData),
      tagLength: TAG_LENGTH * 8,
    },
    cryptoKey,
    toBufferSource(plaintext),
  );
  return joinEnvelope(nonce, new Uint8Array(sealed));
}

/**
 * Decrypts an envelope made by {@link sealEnvelope} with the same key (its bytes, or {@link importEnvelopeKey}'s
 * CryptoKey of them) and associated data. Every failure — wrong key, different associated data, a changed byte
 * anywhere, truncation, an unknown header or version — throws the same `LK_DECRYPT_FAILED` with the same message
 * and no cause, so the error tells an attacker nothing about which check failed. Only a wrong-length key or a
 * CryptoKey of another kind (a caller bug) is `LK_FORMAT_INVALID`.
 */
export async function openEnvelope(
  key: EnvelopeKey,
  envelope: Uint8Array,
  associatedData: Uint8Array,
): Promise<Uint8Array> {
  checkEnvelopeKeyFor(key, "decrypt");
  try {
    const { nonce, sealed } = splitEnvelope(envelope);
    const cryptoKey = key instanceof Uint8Array ? await importAesKey(key, "decrypt") : key;
    const plaintext = await globalThis.crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: toBufferSource(nonce),
        additionalData: envelopeGcmAdditionalData(associatedData),
        tagLength: TAG_LENGTH * 8,
      },
      cryptoKey,
      toBufferSource(sealed),
    );
    return new Uint8Array(plaintext);
  } catch {
    // Deliberately no cause: it would say which check failed.
    throw new LatchkeyError("LK_DECRYPT_FAILED");
  }
}

/** A value {@link associatedData} can bind: a string, or a safe integer such as a version number. */
export type AssociatedDataValue = string | number;

// Domain tag: "LKA" + encoding version 1. Keeps these bytes distinct from any raw associated data.
const AD_TAG = new Uint8Array([0x4c, 0x4b, 0x41, 0x01]);
const TYPE_STRING = 0x73; // "s"
const TYPE_NUMBER = 0x6e; // "n"

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

// A lone surrogate would UTF-8-encode to U+FFFD, so two different strings could give the same bytes.
function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function invalidField(message: string): LatchkeyError {
  return new LatchkeyError("LK_FORMAT_INVALID", { message });
}

/**
 * Encodes named context fields (e.g. `{ vault: id, env: "default", version: 7 }`) as canonical associated
 * data, so every caller binding the same context produces the same bytes and different contexts can never
 * collide. Layout: `"LKA" 0x01 | u32be(count) | per field, sorted by the UTF-8 bytes of its name:
 * u32be(len name) name type len-prefixed value`, where type is `s` (UTF-8 string) or `n` (safe integer as
 * decimal ASCII). Strings and numbers are distinct (`7` is not `"7"`). Throws `LK_FORMAT_INVALID` for a
 * non-integer number or a string with lone surrogates.
 */
export function associatedData(fields: Record<string, AssociatedDataValue>): Uint8Array {
  const entries: Array<{ name: Uint8Array; type: number; value: Uint8Array }> = [];
  for (const [name, value] of Object.entries(fields)) {
    if (!isWellFormed(name)) throw invalidField("An associated-data field name is not well-formed Unicode.");
    let type: number;
    let encoded: Uint8Array;
    if (typeof value === "string") {
      if (!isWellFormed(value))
        throw invalidField(`Associated-data field "${name}" is not well-formed Unicode.`);
      type = TYPE_STRING;
      encoded = utf8Encode(value);
    } else if (typeof value === "number" && Number.isSafeInteger(value)) {
      type = TYPE_NUMBER;
      encoded = utf8Encode(String(value)); // String(-0) is "0": one spelling per integer.
    } else {
      throw invalidField(`Associated-data field "${name}" must be a string or a safe integer.`);
    }
    entries.push({ name: utf8Encode(name), type, value: encoded });
  }
  // Sorting by UTF-8 bytes rather than UTF-16 code units keeps the order the same in any language.
  entries.sort((a, b) => compareBytes(a.name, b.name));
  const parts: Uint8Array[] = [AD_TAG, uint32be(entries.length)];
  for (const entry of entries) {
    parts.push(
      uint32be(entry.name.length),
      entry.name,
      new Uint8Array([entry.type]),
      uint32be(entry.value.length),
      entry.value,
    );
  }
  return concatBytes(...parts);
}
