/**
 * The cryptography of pairing: how a new device N (a second machine, later a browser) receives the machine
 * wrapping key from an approving machine A through a server that must not learn it and may try to sit in the
 * middle. docs/pairing.md describes the whole protocol; this module holds every computation both ends make, on
 * WebCrypto, so the CLI and the dashboard run the same code.
 *
 * 1. N makes an ECDH P-256 key pair and a 32-byte nonce `r`, and commits to its key before it sees A's:
 *    `commitment = SHA-256(pubN || r)`.
 * 2. A joins with an ephemeral P-256 key `pubA`; only then does N reveal `pubN` and `r`, and A checks them
 *    against the commitment.
 * 3. Both show `comparisonValue = 6 digits of SHA-256("latchkey-pair-v1" || code || pubN || pubA || r)`. A relay
 *    that swaps in its own keys must commit to a `pubN'` before it sees `pubA`, so it gets one guess at a value
 *    the user compares (1 in 10^6), not a search.
 * 4. A seals its keys for N: `ECDH(privA, pubN)` -> HKDF-SHA256 (info: the label, both public keys and the code's
 *    hash) -> the AEAD envelope (envelope.ts) with associated data naming the purpose, over the wrapping key, or
 *    the wrapping key followed by the account's sharing key (its X25519 private scalar) when A has one.
 *
 * Public keys travel as the 65-byte uncompressed SEC1 point (`0x04 || x || y`); WebCrypto refuses a point that
 * is not on the curve when it imports one.
 */
import { concatBytes, toBufferSource, uint32be, utf8Encode, constantTimeEqual } from "./bytes.js";
import { associatedData, openEnvelope, sealEnvelope } from "./envelope.js";
import { LatchkeyError } from "./errors.js";
import { hkdfSha256 } from "./hkdf.js";
import { randomBytes } from "./random.js";

/** The characters of a pairing code: digits and capitals without 0, O, 1, I and L, which people misread. */
export const PAIRING_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/** Characters in a pairing code: 31^6 ≈ 8.9 × 10^8 codes, looked up only within the caller's own account. */
export const PAIRING_CODE_LENGTH = 6;
/** How long a pairing lives from its creation, whatever state it reached. */
export const PAIRING_TTL_SECONDS = 5 * 60;
/** Bytes of an uncompressed P-256 public key. */
export const PAIRING_PUBLIC_KEY_BYTES = 65;
/** Bytes of the nonce N commits with. */
export const PAIRING_NONCE_BYTES = 32;
/** Digits of the comparison value both devices show. */
export const PAIRING_COMPARISON_DIGITS = 6;
/** Longest device label, in characters. */
export const MAX_PAIRING_LABEL_LENGTH = 64;

/**
 * What a device label may not contain: control characters, line and paragraph separators, and the bidirectional
 * controls and byte order mark that would let a label display as something else on the approving machine (a
 * right-to-left override can make "evil-laptop" read as another name).
 */
export const PAIRING_LABEL_UNPRINTABLE =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

const DOMAIN = utf8Encode("latchkey-pair-v1");
const WRAP_INFO = utf8Encode("latchkey-pair-v1 wrap");
const CODE_SHAPE = new RegExp(`^[${PAIRING_CODE_ALPHABET}]{${PAIRING_CODE_LENGTH}}$`);
const ECDH = { name: "ECDH", namedCurve: "P-256" } as const;

function invalid(message: string): LatchkeyError {
  return new LatchkeyError("LK_FORMAT_INVALID", { message });
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  return new Uint8Array(
    await globalThis.crypto.subtle.digest("SHA-256", toBufferSource(concatBytes(...parts))),
  );
}

/**
 * A fresh pairing code from the CSPRNG, by rejection sampling (no bias towards the alphabet's first letters).
 * `random` is for tests that need a known code.
 */
export function generatePairingCode(random: (length: number) => Uint8Array = randomBytes): string {
  // The largest multiple of the alphabet's size below 256: bytes at or above it are drawn again.
  const limit = 256 - (256 % PAIRING_CODE_ALPHABET.length);
  let code = "";
  while (code.length < PAIRING_CODE_LENGTH) {
    for (const byte of random(PAIRING_CODE_LENGTH * 2)) {
      if (byte >= limit || code.length === PAIRING_CODE_LENGTH) continue;
      code += PAIRING_CODE_ALPHABET[byte % PAIRING_CODE_ALPHABET.length];
    }
  }
  return code;
}

/**
 * A code as typed, in its one spelling (upper case, spaces and dashes removed), or null when it cannot be a
 * pairing code. Letters people confuse are not mapped: a code with an O or a 1 is simply not a code.
 */
export function normalizePairingCode(typed: string): string | null {
  const code = typed.replace(/[\s-]+/g, "").toUpperCase();
  return CODE_SHAPE.test(code) ? code : null;
}

/** How a code is stored and bound: SHA-256 of its normalized ASCII. */
export function pairingCodeHash(code: string): Promise<Uint8Array> {
  const normalized = normalizePairingCode(code);
  if (normalized === null) throw invalid("A pairing code must be 6 characters of its alphabet.");
  return sha256(utf8Encode(normalized));
}

/** One side's ECDH key pair: the private key stays a (non-extractable) CryptoKey, the public one travels. */
export interface PairingKeyPair {
  privateKey: CryptoKey;
  /** The uncompressed SEC1 point, {@link PAIRING_PUBLIC_KEY_BYTES} bytes. */
  publicKey: Uint8Array;
}

/** A fresh P-256 key pair whose private key cannot be exported (the browser keeps it so in IndexedDB). */
export async function generatePairingKeyPair(): Promise<PairingKeyPair> {
  const pair = await globalThis.crypto.subtle.generateKey(ECDH, false, ["deriveBits"]);
  const publicKey = new Uint8Array(await globalThis.crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey };
}

/**
 * A P-256 key pair from a private JWK, only for reproducing test vectors: a production key pair is made by
 * {@link generatePairingKeyPair} and never leaves the process.
 */
export async function importPairingKeyPair(jwk: JsonWebKey): Promise<PairingKeyPair> {
  const privateKey = await globalThis.crypto.subtle.importKey("jwk", jwk, ECDH, false, ["deriveBits"]);
  const { d: _d, key_ops: _ops, ...publicJwk } = jwk;
  const publicCryptoKey = await globalThis.crypto.subtle.importKey("jwk", publicJwk, ECDH, true, []);
  const publicKey = new Uint8Array(await globalThis.crypto.subtle.exportKey("raw", publicCryptoKey));
  return { privateKey, publicKey };
}

/** Imports a peer's public key, refusing anything but an uncompressed point on P-256. */
async function importPublicKey(publicKey: Uint8Array, whose: string): Promise<CryptoKey> {
  if (
    !(publicKey instanceof Uint8Array) ||
    publicKey.length !== PAIRING_PUBLIC_KEY_BYTES ||
    publicKey[0] !== 4
  ) {
    throw invalid(`${whose} must be an uncompressed P-256 point of ${PAIRING_PUBLIC_KEY_BYTES} bytes.`);
  }
  try {
    return await globalThis.crypto.subtle.importKey("raw", toBufferSource(publicKey), ECDH, false, []);
  } catch {
    throw invalid(`${whose} is not a point on P-256.`);
  }
}

/** Checks that `publicKey` is a P-256 public key a pairing can use; throws `LK_FORMAT_INVALID` otherwise. */
export async function checkPairingPublicKey(publicKey: Uint8Array): Promise<void> {
  await importPublicKey(publicKey, "A pairing public key");
}

function checkNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== PAIRING_NONCE_BYTES) {
    throw invalid(`A pairing nonce must be ${PAIRING_NONCE_BYTES} bytes.`);
  }
}

/** N's commitment to its key: SHA-256(pubN || r). */
export function pairingCommitment(newDeviceKey: Uint8Array, nonce: Uint8Array): Promise<Uint8Array> {
  checkNonce(nonce);
  return sha256(newDeviceKey, nonce);
}

/** True when `newDeviceKey` and `nonce` are what `commitment` committed to (compared in constant time). */
export async function pairingCommitmentMatches(
  commitment: Uint8Array,
  newDeviceKey: Uint8Array,
  nonce: Uint8Array,
): Promise<boolean> {
  if (nonce.length !== PAIRING_NONCE_BYTES) return false;
  return constantTimeEqual(commitment, await sha256(newDeviceKey, nonce));
}

/** What the comparison value is computed over. */
export interface PairingTranscript {
  /** The pairing code, normalized. */
  code: string;
  /** N's public key. */
  newDeviceKey: Uint8Array;
  /** A's ephemeral public key. */
  approverKey: Uint8Array;
  /** N's nonce. */
  nonce: Uint8Array;
}

/**
 * The 6 digits both devices show: the first 8 bytes of SHA-256("latchkey-pair-v1" || code || pubN || pubA || r)
 * as an unsigned integer modulo 10^6 (the bias of a 64-bit value reduced so is below 10^-13), zero-padded. Every
 * input has a fixed length, so the concatenation has one reading.
 */
export async function pairingComparisonValue(transcript: PairingTranscript): Promise<string> {
  const code = normalizePairingCode(transcript.code);
  if (code === null) throw invalid("A pairing code must be 6 characters of its alphabet.");
  checkNonce(transcript.nonce);
  const digest = await sha256(
    DOMAIN,
    utf8Encode(code),
    transcript.newDeviceKey,
    transcript.approverKey,
    transcript.nonce,
  );
  const value = new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0) % 1_000_000n;
  return value.toString().padStart(PAIRING_COMPARISON_DIGITS, "0");
}

/** A short fingerprint of a public key for people to read: 16 hex digits of its SHA-256, in groups of four. */
export async function pairingKeyFingerprint(publicKey: Uint8Array): Promise<string> {
  const digest = await sha256(publicKey);
  const hex = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return hex.match(/.{4}/g)!.join(" ");
}

/** What the wrapping key is sealed to: both keys, the label N gave and the code's hash. */
export interface PairingBinding {
  /** The label N created the pairing with, as the server relayed it. */
  label: string;
  code: string;
  newDeviceKey: Uint8Array;
  approverKey: Uint8Array;
}

async function sealingKey(
  ownPrivate: CryptoKey,
  peerPublic: Uint8Array,
  binding: PairingBinding,
): Promise<Uint8Array> {
  const peer = await importPublicKey(peerPublic, "The other device's public key");
  const shared = new Uint8Array(
    await globalThis.crypto.subtle.deriveBits({ name: "ECDH", public: peer }, ownPrivate, 256),
  );
  const label = utf8Encode(binding.label);
  const info = concatBytes(
    WRAP_INFO,
    uint32be(label.length),
    label,
    binding.newDeviceKey,
    binding.approverKey,
    await pairingCodeHash(binding.code),
  );
  return hkdfSha256(shared, new Uint8Array(0), info, 32);
}

const PAIRING_AD = associatedData({ purpose: "latchkey-pair-key", version: 1 });

/** Bytes of each key a pairing hands over: the machine wrapping key, and the sharing key's private scalar. */
export const PAIRING_HANDED_KEY_BYTES = 32;

/**
 * What A hands over: its machine wrapping key, and the account's sharing key when A has one (null otherwise). The
 * sealed plaintext is the wrapping key alone or the two keys concatenated; both lengths are fixed, so the length
 * says which, and the AEAD authenticates it.
 */
export interface PairingKeys {
  wrappingKey: Uint8Array;
  /** The X25519 private scalar of the account's sharing key (docs/teams.md), or null. */
  sharingKey: Uint8Array | null;
}

/** Options of {@link sealPairingKey}; only for reproducing test vectors. */
export interface SealPairingKeyOptions {
  /** A fixed 12-byte envelope nonce. */
  nonce?: Uint8Array;
}

/** A seals `keys` for N; the result is an envelope (envelope.ts) of 32 or 64 bytes of plaintext. */
export async function sealPairingKey(
  approver: PairingKeyPair,
  binding: PairingBinding,
  keys: PairingKeys,
  options: SealPairingKeyOptions = {},
): Promise<Uint8Array> {
  if (!constantTimeEqual(approver.publicKey, binding.approverKey)) {
    throw new Error("sealPairingKey: the binding's approver key is not this key pair's");
  }
  if (
    keys.wrappingKey.length !== PAIRING_HANDED_KEY_BYTES ||
    (keys.sharingKey !== null && keys.sharingKey.length !== PAIRING_HANDED_KEY_BYTES)
  ) {
    throw new Error(`sealPairingKey: each key handed over is ${PAIRING_HANDED_KEY_BYTES} bytes`);
  }
  const plaintext =
    keys.sharingKey === null ? keys.wrappingKey : concatBytes(keys.wrappingKey, keys.sharingKey);
  const kek = await sealingKey(approver.privateKey, binding.newDeviceKey, binding);
  return sealEnvelope(
    kek,
    plaintext,
    PAIRING_AD,
    options.nonce === undefined ? {} : { nonce: options.nonce },
  );
}

/**
 * N opens what A sealed: the wrapping key, and the sharing key when A sent one. Any failure after the inputs'
 * shapes are checked (another key, another label or code, a changed byte, a plaintext of another length) is the
 * one opaque `LK_DECRYPT_FAILED`.
 */
export async function openPairingKey(
  newDevice: PairingKeyPair,
  binding: PairingBinding,
  sealed: Uint8Array,
): Promise<PairingKeys> {
  if (!constantTimeEqual(newDevice.publicKey, binding.newDeviceKey)) {
    throw new Error("openPairingKey: the binding's new-device key is not this key pair's");
  }
  const kek = await sealingKey(newDevice.privateKey, binding.approverKey, binding);
  const plaintext = await openEnvelope(kek, sealed, PAIRING_AD);
  if (plaintext.length === PAIRING_HANDED_KEY_BYTES) return { wrappingKey: plaintext, sharingKey: null };
  if (plaintext.length === 2 * PAIRING_HANDED_KEY_BYTES) {
    return {
      wrappingKey: plaintext.slice(0, PAIRING_HANDED_KEY_BYTES),
      sharingKey: plaintext.slice(PAIRING_HANDED_KEY_BYTES),
    };
  }
  throw new LatchkeyError("LK_DECRYPT_FAILED");
}
