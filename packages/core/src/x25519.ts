/**
 * X25519 sharing keys (RFC 7748, https://www.rfc-editor.org/rfc/rfc7748) and wrapping a 32-byte key (a vault
 * key) for one recipient's public key, so the server only ever holds wrapped keys.
 *
 * Wrapping is ephemeral-static ECDH, in the spirit of ECIES / HPKE base mode:
 *
 * 1. a fresh ephemeral key pair; `shared = X25519(ephemeral_private, recipient_public)`, refused if all zero
 *    (a low-order recipient key, RFC 7748 §6.1);
 * 2. `kek = HKDF-SHA256(ikm = shared, salt = empty, info = "latchkey-wrap-v1" || ephemeral_public ||
 *    recipient_public, L = 32)`. The salt is empty (RFC 5869 §3.1: optional, HashLen zeros) because the
 *    shared secret is already uniformly unpredictable per wrap; the info carries the domain label and both
 *    public keys as sent, so a key derived for one (ephemeral, recipient) pair — or for a wire value with the
 *    ignored high bit of the ephemeral key flipped — never opens another;
 * 3. `AES-256-GCM(kek, iv = random 12 bytes, no additional data)` over the 32-byte key: 48 bytes with tag.
 *
 * Wire form, exactly: `base64(ephemeral_public 32B):base64(iv 12B):base64(ciphertext+tag 48B)`, standard
 * base64 with padding, nothing else.
 *
 * The authenticated form ({@link wrapKeyFromSender}), in the spirit of HPKE's auth mode (RFC 9180 §5.1.3), also
 * proves who wrapped: `ikm = X25519(ephemeral_private, recipient_public) || X25519(sender_private,
 * recipient_public)`, `info = "latchkey-wrap-auth-v1" || ephemeral_public || recipient_public || sender_public ||
 * context`. Only a holder of the sender's private key (or of the recipient's) can make a wrap that opens with the
 * sender's public key, so a server that stores wrapped keys cannot plant one of its own; the context (which vault,
 * which copy, which key version: the caller's bytes) keeps a genuine wrap from being replayed as another's. The
 * wire form is the same.
 */
import { concatBytes, fromBase64, toBase64, toBufferSource, utf8Encode } from "./bytes.js";
import { LatchkeyError } from "./errors.js";
import { randomBytes } from "./random.js";

const KEY_LENGTH = 32;
const IV_LENGTH = 12;
const WRAPPED_LENGTH = 48;
const WRAP_INFO_LABEL = utf8Encode("latchkey-wrap-v1");
const AUTH_WRAP_INFO_LABEL = utf8Encode("latchkey-wrap-auth-v1");

// RFC 8410 PKCS#8 prefix for an X25519 private key: SEQUENCE { version 0, AlgorithmIdentifier { 1.3.101.110 },
// OCTET STRING { OCTET STRING (32 bytes) } }. Prepending it to the raw scalar is how WebCrypto imports it.
const PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
// The u-coordinate 9, the X25519 base point (RFC 7748 §4.1), little-endian.
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** An X25519 key pair as raw bytes: the RFC 7748 32-byte public u-coordinate and 32-byte private scalar. */
export interface X25519KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

function invalid(message: string): LatchkeyError {
  return new LatchkeyError("LK_FORMAT_INVALID", { message });
}

function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw invalid(`${what} must be ${length} bytes.`);
  }
}

function fromBase64Url(text: string): Uint8Array {
  const standard = text.replaceAll("-", "+").replaceAll("_", "/");
  return fromBase64(standard + "=".repeat((4 - (standard.length % 4)) % 4));
}

/**
 * Generates an X25519 key pair with WebCrypto. The private key is exported from the JWK `d` member (the raw
 * 32-byte scalar; RFC 8037 §2) because every WebCrypto implementation exports JWK identically, whereas
 * PKCS#8 exports may differ in optional fields. Keys are imported back through PKCS#8, which, unlike JWK,
 * does not need the public half alongside.
 */
export async function generateX25519KeyPair(): Promise<X25519KeyPair> {
  const subtle = globalThis.crypto.subtle;
  const pair = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  const jwk = await subtle.exportKey("jwk", pair.privateKey);
  if (typeof jwk.d !== "string") throw new Error("X25519 JWK export has no private scalar");
  const privateKey = fromBase64Url(jwk.d);
  checkLength(privateKey, KEY_LENGTH, "An exported X25519 private key");
  return { publicKey, privateKey };
}

function importPrivateKey(privateKey: Uint8Array): Promise<CryptoKey> {
  return globalThis.crypto.subtle.importKey(
    "pkcs8",
    toBufferSource(concatBytes(PKCS8_PREFIX, privateKey)),
    { name: "X25519" },
    false,
    ["deriveBits"],
  );
}

/**
 * A private key the key agreements here take: the raw 32-byte scalar, or the CryptoKey
 * {@link importX25519PrivateKey} made of it, which page script can use but never read back (the browser
 * dashboard keeps the account's sharing key so).
 */
export type X25519PrivateKey = Uint8Array | CryptoKey;

/**
 * An X25519 private scalar as a non-extractable CryptoKey for key agreement: nothing can export its bytes again.
 * The caller should overwrite its copy of the bytes afterwards.
 */
export async function importX25519PrivateKey(privateKey: Uint8Array): Promise<CryptoKey> {
  checkLength(privateKey, KEY_LENGTH, "An X25519 private key");
  return importPrivateKey(privateKey);
}

/** Checks a private key: 32 bytes, or a private X25519 CryptoKey that may derive bits. */
function checkPrivateKey(privateKey: X25519PrivateKey, what: string): void {
  if (privateKey instanceof Uint8Array) return checkLength(privateKey, KEY_LENGTH, what);
  if (
    privateKey.algorithm.name !== "X25519" ||
    privateKey.type !== "private" ||
    !privateKey.usages.includes("deriveBits")
  ) {
    throw invalid(`${what} must be 32 bytes or a private X25519 CryptoKey that may derive bits.`);
  }
}

async function rawX25519(privateKey: X25519PrivateKey, publicKey: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  const [priv, pub] = await Promise.all([
    privateKey instanceof Uint8Array ? importPrivateKey(privateKey) : privateKey,
    subtle.importKey("raw", toBufferSource(publicKey), { name: "X25519" }, false, []),
  ]);
  return new Uint8Array(await subtle.deriveBits({ name: "X25519", public: pub }, priv, 256));
}

function lowOrderError(): LatchkeyError {
  return invalid("The X25519 public key is a low-order point; it cannot be used for key agreement.");
}

/**
 * Computes the X25519 shared secret (RFC 7748 §6.1) of our private scalar and a peer's public key. An
 * all-zero result means the peer key is a low-order point that would fix the secret regardless of our key;
 * that is refused with `LK_FORMAT_INVALID`. The zero check is constant-time, and WebCrypto implementations
 * that refuse such keys themselves are mapped to the same error.
 */
export async function x25519SharedSecret(
  privateKey: X25519PrivateKey,
  publicKey: Uint8Array,
): Promise<Uint8Array> {
  checkPrivateKey(privateKey, "An X25519 private key");
  checkLength(publicKey, KEY_LENGTH, "An X25519 public key");
  let shared: Uint8Array;
  try {
    shared = await rawX25519(privateKey, publicKey);
  } catch (cause) {
    // Node (and the WebCrypto spec) reject an all-zero secret with OperationError; other failures are bugs.
    if (cause instanceof Error && cause.name === "OperationError") throw lowOrderError();
    throw cause;
  }
  let acc = 0;
  for (const byte of shared) acc |= byte;
  if (acc === 0) throw lowOrderError();
  return shared;
}

/** Derives the public key of an X25519 private key: X25519(private, 9) (RFC 7748 §6.1). */
export async function x25519PublicKey(privateKey: X25519PrivateKey): Promise<Uint8Array> {
  checkPrivateKey(privateKey, "An X25519 private key");
  return rawX25519(privateKey, BASE_POINT);
}

/** The three parts of a wrapped key, as raw bytes. */
export interface WrappedKeyParts {
  /** The sender's ephemeral X25519 public key, 32 bytes. */
  ephemeralPublic: Uint8Array;
  /** The AES-GCM IV, 12 bytes. */
  iv: Uint8Array;
  /** The wrapped 32-byte key followed by the 16-byte GCM tag, 48 bytes. */
  ciphertext: Uint8Array;
}

/**
 * Formats wrapped-key parts as the wire string `base64(ephemeral_public):base64(iv):base64(ciphertext)`.
 * Throws `LK_FORMAT_INVALID` if a part has the wrong length.
 */
export function formatWrappedKey(parts: WrappedKeyParts): string {
  checkLength(parts.ephemeralPublic, KEY_LENGTH, "A wrapped key's ephemeral public key");
  checkLength(parts.iv, IV_LENGTH, "A wrapped key's IV");
  checkLength(parts.ciphertext, WRAPPED_LENGTH, "A wrapped key's ciphertext");
  return `${toBase64(parts.ephemeralPublic)}:${toBase64(parts.iv)}:${toBase64(parts.ciphertext)}`;
}

/**
 * Parses the wrapped-key wire string strictly: exactly three parts separated by two colons, each canonical
 * standard base64 (no whitespace, no URL-safe characters, exact padding, zero trailing bits) decoding to
 * exactly 32, 12 and 48 bytes. Anything else throws `LK_FORMAT_INVALID`, so each wrapped key has exactly
 * one accepted spelling: `formatWrappedKey(parseWrappedKey(s)) === s`.
 */
export function parseWrappedKey(wire: string): WrappedKeyParts {
  if (typeof wire !== "string") throw invalid("A wrapped key must be a string.");
  const fields = wire.split(":");
  if (fields.length !== 3) throw invalid("A wrapped key must have exactly three colon-separated parts.");
  const [ephemeralPublic, iv, ciphertext] = fields.map((field) => fromBase64(field)) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  checkLength(ephemeralPublic, KEY_LENGTH, "A wrapped key's ephemeral public key");
  checkLength(iv, IV_LENGTH, "A wrapped key's IV");
  checkLength(ciphertext, WRAPPED_LENGTH, "A wrapped key's ciphertext");
  return { ephemeralPublic, iv, ciphertext };
}

async function deriveWrappingKey(
  ikm: Uint8Array,
  info: Uint8Array,
  usage: "encrypt" | "decrypt",
): Promise<CryptoKey> {
  const subtle = globalThis.crypto.subtle;
  const material = await subtle.importKey("raw", toBufferSource(ikm), "HKDF", false, ["deriveKey"]);
  // The same computation as hkdfSha256(ikm, empty, info, 32), but deriveKey keeps the KEK inside
  // WebCrypto as a non-extractable key instead of handing its bytes to JavaScript.
  return subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: toBufferSource(info) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

/** The sender half of an authenticated wrap: whose key pair proves who wrapped, and what the wrap is for. */
interface SenderBinding {
  senderPrivate?: Uint8Array;
  senderPublic: Uint8Array;
  context: Uint8Array;
}

async function ephemeralPair(options: WrapKeyOptions): Promise<X25519KeyPair> {
  if (options.ephemeralPrivate) {
    return {
      privateKey: options.ephemeralPrivate,
      publicKey: await x25519PublicKey(options.ephemeralPrivate),
    };
  }
  return generateX25519KeyPair();
}

async function wrapWith(
  key: Uint8Array,
  recipientPublic: Uint8Array,
  options: WrapKeyOptions,
  sender: (SenderBinding & { senderPrivate: Uint8Array }) | undefined,
): Promise<string> {
  checkLength(key, KEY_LENGTH, "A key to wrap");
  checkLength(recipientPublic, KEY_LENGTH, "A recipient's X25519 public key");
  const iv = options.iv ?? randomBytes(IV_LENGTH);
  checkLength(iv, IV_LENGTH, "A wrapping IV");
  const ephemeral = await ephemeralPair(options);
  const shared = await x25519SharedSecret(ephemeral.privateKey, recipientPublic);
  let kek: CryptoKey;
  if (sender === undefined) {
    kek = await deriveWrappingKey(
      shared,
      concatBytes(WRAP_INFO_LABEL, ephemeral.publicKey, recipientPublic),
      "encrypt",
    );
  } else {
    const static_ = await x25519SharedSecret(sender.senderPrivate, recipientPublic);
    const info = concatBytes(
      AUTH_WRAP_INFO_LABEL,
      ephemeral.publicKey,
      recipientPublic,
      sender.senderPublic,
      sender.context,
    );
    kek = await deriveWrappingKey(concatBytes(shared, static_), info, "encrypt");
  }
  const ciphertext = new Uint8Array(
    await globalThis.crypto.subtle.encrypt(
      { name: "AES-GCM", iv: toBufferSource(iv) },
      kek,
      toBufferSource(key),
    ),
  );
  return formatWrappedKey({ ephemeralPublic: ephemeral.publicKey, iv, ciphertext });
}

async function unwrapWith(
  wire: string,
  recipientPrivate: X25519PrivateKey,
  recipientPublic: Uint8Array,
  sender: SenderBinding | undefined,
): Promise<Uint8Array> {
  checkPrivateKey(recipientPrivate, "A recipient's X25519 private key");
  checkLength(recipientPublic, KEY_LENGTH, "A recipient's X25519 public key");
  if (sender !== undefined) checkLength(sender.senderPublic, KEY_LENGTH, "A sender's X25519 public key");
  const { ephemeralPublic, iv, ciphertext } = parseWrappedKey(wire);
  try {
    const shared = await x25519SharedSecret(recipientPrivate, ephemeralPublic);
    let kek: CryptoKey;
    if (sender === undefined) {
      kek = await deriveWrappingKey(
        shared,
        concatBytes(WRAP_INFO_LABEL, ephemeralPublic, recipientPublic),
        "decrypt",
      );
    } else {
      const static_ = await x25519SharedSecret(recipientPrivate, sender.senderPublic);
      const info = concatBytes(
        AUTH_WRAP_INFO_LABEL,
        ephemeralPublic,
        recipientPublic,
        sender.senderPublic,
        sender.context,
      );
      kek = await deriveWrappingKey(concatBytes(shared, static_), info, "decrypt");
    }
    return new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: "AES-GCM", iv: toBufferSource(iv) },
        kek,
        toBufferSource(ciphertext),
      ),
    );
  } catch {
    // Deliberately no cause: it would say which step failed.
    throw new LatchkeyError("LK_DECRYPT_FAILED");
  }
}

/** Options for {@link wrapKeyForRecipient}; only for reproducing test vectors. */
export interface WrapKeyOptions {
  /** A fixed ephemeral private scalar instead of a fresh one. Reuse would link wraps; never in production. */
  ephemeralPrivate?: Uint8Array;
  /** A fixed 12-byte IV instead of a random one. */
  iv?: Uint8Array;
}

/**
 * Wraps a 32-byte key for the holder of `recipientPublic` (an X25519 sharing key) and returns the wire
 * string. A low-order recipient key is refused with `LK_FORMAT_INVALID`; a wrong-length input likewise.
 */
export async function wrapKeyForRecipient(
  key: Uint8Array,
  recipientPublic: Uint8Array,
  options: WrapKeyOptions = {},
): Promise<string> {
  return wrapWith(key, recipientPublic, options, undefined);
}

/**
 * Unwraps a key wrapped by {@link wrapKeyForRecipient} with the recipient's key pair. A malformed wire
 * string or wrong-length key throws `LK_FORMAT_INVALID` (checked before any decryption); every failure after
 * that — wrong key pair, any changed byte, a low-order ephemeral key — throws the same opaque
 * `LK_DECRYPT_FAILED`.
 */
export async function unwrapKeyForRecipient(
  wire: string,
  recipientPrivate: X25519PrivateKey,
  recipientPublic: Uint8Array,
): Promise<Uint8Array> {
  return unwrapWith(wire, recipientPrivate, recipientPublic, undefined);
}

/**
 * Wraps a 32-byte key for `recipientPublic` so that it opens only with `sender`'s public key and the same
 * `context` (the authenticated form in this module's header): the recipient learns that the holder of the
 * sender's private key wrapped this key, for this purpose. The sender's key must not be low-order
 * (`LK_FORMAT_INVALID`).
 */
export async function wrapKeyFromSender(
  key: Uint8Array,
  recipientPublic: Uint8Array,
  sender: X25519KeyPair,
  context: Uint8Array,
  options: WrapKeyOptions = {},
): Promise<string> {
  checkLength(sender.privateKey, KEY_LENGTH, "A sender's X25519 private key");
  checkLength(sender.publicKey, KEY_LENGTH, "A sender's X25519 public key");
  return wrapWith(key, recipientPublic, options, {
    senderPrivate: sender.privateKey,
    senderPublic: sender.publicKey,
    context,
  });
}

/**
 * Unwraps a key wrapped by {@link wrapKeyFromSender}. It opens only when `senderPublic` is the key it was
 * wrapped with and `context` is the same bytes; a malformed wire string or wrong-length key is
 * `LK_FORMAT_INVALID`, and every other failure (another sender, another context, a base-mode wrap, any changed
 * byte) the same opaque `LK_DECRYPT_FAILED`.
 */
export async function unwrapKeyFromSender(
  wire: string,
  recipientPrivate: X25519PrivateKey,
  recipientPublic: Uint8Array,
  senderPublic: Uint8Array,
  context: Uint8Array,
): Promise<Uint8Array> {
  return unwrapWith(wire, recipientPrivate, recipientPublic, { senderPublic, context });
}
