/**
 * Byte helpers shared by every format in core: UTF-8, strict base64, hex, concatenation and a
 * constant-time comparison. Hand-written rather than `atob`/`Buffer`, because core runs in the browser as
 * well as Node and because the platform decoders are lenient (they skip whitespace and tolerate missing
 * padding), which would let two different strings decode to the same key. {@link isCanonicalBase64} alone
 * uses `atob`, for its speed on megabytes, and refuses everything atob forgives.
 */
import { LatchkeyError } from "./errors.js";

const encoder = new TextEncoder();
// fatal: a malformed byte sequence is an error, never silently replaced by U+FFFD.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Encodes a string as UTF-8 bytes. */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Decodes UTF-8 bytes to a string. Strict: malformed UTF-8 throws `LK_FORMAT_INVALID` instead of being
 * patched with replacement characters, and a leading BOM is kept as data rather than dropped.
 */
export function utf8Decode(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new LatchkeyError("LK_FORMAT_INVALID", { message: "The data is not valid UTF-8.", cause });
  }
}

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// -1 marks characters outside the standard alphabet (including '=', handled separately).
const BASE64_VALUES = new Int16Array(128).fill(-1);
for (let i = 0; i < BASE64_ALPHABET.length; i++) BASE64_VALUES[BASE64_ALPHABET.charCodeAt(i)] = i;

/**
 * Encodes bytes as standard base64 with padding (RFC 4648 §4, https://www.rfc-editor.org/rfc/rfc4648#section-4).
 * The output is the one canonical form that {@link fromBase64} accepts.
 */
export function toBase64(bytes: Uint8Array): string {
  let out = "";
  const full = bytes.length - (bytes.length % 3);
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      BASE64_ALPHABET[n >>> 18]! +
      BASE64_ALPHABET[(n >>> 12) & 63]! +
      BASE64_ALPHABET[(n >>> 6) & 63]! +
      BASE64_ALPHABET[n & 63]!;
  }
  const rest = bytes.length - full;
  if (rest === 1) {
    const n = bytes[full]! << 16;
    out += BASE64_ALPHABET[n >>> 18]! + BASE64_ALPHABET[(n >>> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[full]! << 16) | (bytes[full + 1]! << 8);
    out +=
      BASE64_ALPHABET[n >>> 18]! + BASE64_ALPHABET[(n >>> 12) & 63]! + BASE64_ALPHABET[(n >>> 6) & 63]! + "=";
  }
  return out;
}

function invalidBase64(): LatchkeyError {
  // The input may be key material, so the message never quotes it.
  return new LatchkeyError("LK_FORMAT_INVALID", { message: "The data is not canonical standard base64." });
}

/**
 * Decodes standard base64 (RFC 4648 §4), accepting only the canonical form: the standard alphabet, length a
 * multiple of four, exactly the padding the length needs, and zero bits in the unused tail (RFC 4648 §3.5).
 * Whitespace, line breaks and the URL-safe alphabet are rejected. So `toBase64(fromBase64(s)) === s` for
 * every accepted `s`, and one byte string has exactly one accepted spelling. Throws `LK_FORMAT_INVALID`.
 */
export function fromBase64(text: string): Uint8Array {
  if (typeof text !== "string" || text.length % 4 !== 0) throw invalidBase64();
  let padding = 0;
  if (text.endsWith("==")) padding = 2;
  else if (text.endsWith("=")) padding = 1;
  const dataChars = text.length - padding;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < dataChars; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE64_VALUES[code]! : -1;
    if (value < 0) throw invalidBase64();
    acc = ((acc << 6) | value) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  // Non-zero leftover bits would give a second spelling of the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) throw invalidBase64();
  return out;
}

/**
 * True when `text` is what {@link fromBase64} accepts, checked without decoding in JavaScript: the platform's
 * `atob` reads a multi-megabyte blob several times faster, and what it forgives is refused around it. It skips
 * ASCII whitespace, which then leaves fewer bytes than the length promises; it tolerates missing padding, which
 * the length check refuses; it drops the unused bits of the last group, which are checked here to be zero.
 */
export function isCanonicalBase64(text: string): boolean {
  if (text.length % 4 !== 0) return false;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  let decoded: string;
  try {
    decoded = atob(text);
  } catch {
    return false;
  }
  if (decoded.length !== (text.length / 4) * 3 - padding) return false;
  if (padding === 0) return true;
  // atob accepted it, so the last character before the padding is in the alphabet.
  const last = BASE64_VALUES[text.charCodeAt(text.length - padding - 1)]!;
  return (last & (padding === 2 ? 0x0f : 0x03)) === 0;
}

/** Encodes bytes as lowercase hex; used by test vectors and diagnostics, never for wire formats. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Decodes lowercase hex (even length, `[0-9a-f]` only); throws `LK_FORMAT_INVALID` on anything else. */
export function fromHex(text: string): Uint8Array {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) {
    throw new LatchkeyError("LK_FORMAT_INVALID", { message: "The data is not lowercase hex." });
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Concatenates byte arrays into one new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, never on where they first differ, so
 * comparing a MAC or tag leaks nothing about how much of a guess was right. Lengths are treated as public:
 * arrays of different lengths are unequal at once.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Writes `value` as a 4-byte big-endian unsigned integer: the length prefix of every length-prefixed
 * encoding in core.
 * @internal
 */
export function uint32be(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError("uint32be: value out of range");
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

/**
 * Copies bytes into a fresh, ArrayBuffer-backed array for WebCrypto. The copy means a caller mutating its
 * array while a promise is pending cannot change what gets encrypted, and a SharedArrayBuffer-backed view
 * (which WebCrypto rejects) still works.
 * @internal
 */
export function toBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
