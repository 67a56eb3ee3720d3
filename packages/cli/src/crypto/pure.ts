// HKDF-SHA256 and AES-256-GCM decryption in plain JavaScript, for the small envelopes the CLI's hot read paths
// open (the file store, a wrapped vault key, a small vault). Why not node:crypto there: loading it costs 6–8 ms,
// which alone is most of the start-up budget of `latchkey token` and `keystore get` (bench scenarios 2 and 7),
// while the work itself is a few dozen blocks. Decryption only: every key and nonce is still made by
// node:crypto, and native.ts hands large inputs to node:crypto, where AES-NI wins over the load cost.
//
// Side channels: the AES rounds use lookup tables, whose cache timing can depend on the key. The keys opened
// here sit in files or keychain items that any process able to mount such an attack (same user, same host) can
// read outright, so this adds no exposure; GHASH and the tag check are branch-free. pure.test.ts checks both
// functions against NIST/RFC vectors and against node:crypto on generated inputs, including tampered ones.

import { concatBytes } from "@latchkey/core";

const SHA256_K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

/** SHA-256 of `data` (FIPS 180-4). */
export function sha256(data: Uint8Array): Uint8Array {
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  // The message, the 0x80 terminator and the 64-bit bit length, padded to whole 64-byte blocks.
  const padded = new Uint8Array((((data.length + 8) >>> 6) + 1) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(data.length / 0x20000000));
  view.setUint32(padded.length - 4, (data.length << 3) >>> 0);
  const w = new Uint32Array(64);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h[0]!;
    let b = h[1]!;
    let c = h[2]!;
    let d = h[3]!;
    let e = h[4]!;
    let f = h[5]!;
    let g = h[6]!;
    let k = h[7]!;
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + s1 + ((e & f) ^ (~e & g)) + SHA256_K[i]! + w[i]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + b) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
    h[5] = (h[5]! + f) | 0;
    h[6] = (h[6]! + g) | 0;
    h[7] = (h[7]! + k) | 0;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i]!);
  return out;
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  const block = new Uint8Array(64);
  block.set(key.length > 64 ? sha256(key) : key);
  const inner = new Uint8Array(64);
  const outer = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i]! ^ 0x36;
    outer[i] = block[i]! ^ 0x5c;
  }
  return sha256(concatBytes(outer, sha256(concatBytes(inner, message))));
}

/** HKDF-SHA256 (RFC 5869), extract then expand; `length` at most 255 × 32 bytes. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) throw new RangeError("HKDF length");
  const prk = hmacSha256(salt.length > 0 ? salt : new Uint8Array(32), ikm);
  const okm = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < length; i++, offset += 32) {
    previous = hmacSha256(prk, concatBytes(previous, info, Uint8Array.of(i)));
    okm.set(previous.subarray(0, Math.min(32, length - offset)), offset);
  }
  return okm;
}

// AES forward tables, built on first use from the S-box (FIPS 197 §5.1.1): TE[x] is the MixColumns column of
// S[x]; the other three columns are byte rotations of it.
let SBOX: Uint8Array | undefined;
let TE: Uint32Array | undefined;

function aesTables(): { sbox: Uint8Array; te: Uint32Array } {
  if (SBOX === undefined || TE === undefined) {
    const sbox = new Uint8Array(256);
    const te = new Uint32Array(256);
    // Walks GF(2^8) with generator 3 (p) and its inverse (q), so q = p⁻¹ at every step.
    let p = 1;
    let q = 1;
    do {
      p = (p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0)) & 0xff;
      q ^= q << 1;
      q ^= q << 2;
      q ^= q << 4;
      q &= 0xff;
      if (q & 0x80) q ^= 0x09;
      const x =
        q ^ ((q << 1) | (q >>> 7)) ^ ((q << 2) | (q >>> 6)) ^ ((q << 3) | (q >>> 5)) ^ ((q << 4) | (q >>> 4));
      sbox[p] = (x ^ 0x63) & 0xff;
    } while (p !== 1);
    sbox[0] = 0x63;
    for (let i = 0; i < 256; i++) {
      const s = sbox[i]!;
      const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff;
      te[i] = ((s2 << 24) | (s << 16) | (s << 8) | (s2 ^ s)) >>> 0;
    }
    SBOX = sbox;
    TE = te;
  }
  return { sbox: SBOX, te: TE };
}

/** The AES-256 key schedule (FIPS 197 §5.2): 60 round-key words. */
function expandKey(key: Uint8Array, sbox: Uint8Array): Uint32Array {
  const w = new Uint32Array(60);
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  for (let i = 0; i < 8; i++) w[i] = view.getUint32(i * 4);
  let rcon = 1;
  for (let i = 8; i < 60; i++) {
    let t = w[i - 1]!;
    if (i % 8 === 0) {
      t = (t << 8) | (t >>> 24);
      t =
        (sbox[t >>> 24]! << 24) |
        (sbox[(t >>> 16) & 0xff]! << 16) |
        (sbox[(t >>> 8) & 0xff]! << 8) |
        sbox[t & 0xff]!;
      t ^= rcon << 24;
      rcon = (rcon << 1) ^ (rcon & 0x80 ? 0x11b : 0);
    } else if (i % 8 === 4) {
      t =
        (sbox[t >>> 24]! << 24) |
        (sbox[(t >>> 16) & 0xff]! << 16) |
        (sbox[(t >>> 8) & 0xff]! << 8) |
        sbox[t & 0xff]!;
    }
    w[i] = (w[i - 8]! ^ t) >>> 0;
  }
  return w;
}

const rotr8 = (x: number): number => (x >>> 8) | (x << 24);

/** Encrypts one block, given and returned as four big-endian words in `block` (in place). */
function encryptBlock(rk: Uint32Array, sbox: Uint8Array, te: Uint32Array, block: Uint32Array): void {
  let s0 = block[0]! ^ rk[0]!;
  let s1 = block[1]! ^ rk[1]!;
  let s2 = block[2]! ^ rk[2]!;
  let s3 = block[3]! ^ rk[3]!;
  for (let round = 1; round < 14; round++) {
    const r = round * 4;
    const t0 =
      te[s0 >>> 24]! ^
      rotr8(te[(s1 >>> 16) & 0xff]!) ^
      rotr8(rotr8(te[(s2 >>> 8) & 0xff]!)) ^
      rotr8(rotr8(rotr8(te[s3 & 0xff]!)));
    const t1 =
      te[s1 >>> 24]! ^
      rotr8(te[(s2 >>> 16) & 0xff]!) ^
      rotr8(rotr8(te[(s3 >>> 8) & 0xff]!)) ^
      rotr8(rotr8(rotr8(te[s0 & 0xff]!)));
    const t2 =
      te[s2 >>> 24]! ^
      rotr8(te[(s3 >>> 16) & 0xff]!) ^
      rotr8(rotr8(te[(s0 >>> 8) & 0xff]!)) ^
      rotr8(rotr8(rotr8(te[s1 & 0xff]!)));
    const t3 =
      te[s3 >>> 24]! ^
      rotr8(te[(s0 >>> 16) & 0xff]!) ^
      rotr8(rotr8(te[(s1 >>> 8) & 0xff]!)) ^
      rotr8(rotr8(rotr8(te[s2 & 0xff]!)));
    s0 = t0 ^ rk[r]!;
    s1 = t1 ^ rk[r + 1]!;
    s2 = t2 ^ rk[r + 2]!;
    s3 = t3 ^ rk[r + 3]!;
  }
  // The last round has no MixColumns: S-box bytes only.
  const last = (a: number, b: number, c: number, d: number, k: number): number =>
    ((sbox[a >>> 24]! << 24) |
      (sbox[(b >>> 16) & 0xff]! << 16) |
      (sbox[(c >>> 8) & 0xff]! << 8) |
      sbox[d & 0xff]!) ^
    k;
  block[0] = last(s0, s1, s2, s3, rk[56]!) >>> 0;
  block[1] = last(s1, s2, s3, s0, rk[57]!) >>> 0;
  block[2] = last(s2, s3, s0, s1, rk[58]!) >>> 0;
  block[3] = last(s3, s0, s1, s2, rk[59]!) >>> 0;
}

/** X ← X·H in GF(2^128) with GCM's bit order (SP 800-38D §6.3), branch-free. */
function gfMultiply(x: Uint32Array, h: Uint32Array): void {
  let z0 = 0;
  let z1 = 0;
  let z2 = 0;
  let z3 = 0;
  let v0 = h[0]!;
  let v1 = h[1]!;
  let v2 = h[2]!;
  let v3 = h[3]!;
  for (let i = 0; i < 128; i++) {
    const bit = -((x[i >>> 5]! >>> (31 - (i & 31))) & 1);
    z0 ^= v0 & bit;
    z1 ^= v1 & bit;
    z2 ^= v2 & bit;
    z3 ^= v3 & bit;
    const carry = -(v3 & 1);
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ (0xe1000000 & carry);
  }
  x[0] = z0;
  x[1] = z1;
  x[2] = z2;
  x[3] = z3;
}

/** Folds `data` (zero-padded to whole blocks) into the GHASH state `x`. */
function ghash(x: Uint32Array, h: Uint32Array, data: Uint8Array): void {
  for (let offset = 0; offset < data.length; offset += 16) {
    for (let j = 0; j < 4; j++) {
      const at = offset + j * 4;
      // Past the end reads as zero: the last block is zero-padded.
      const word =
        ((data[at] ?? 0) << 24) |
        ((data[at + 1] ?? 0) << 16) |
        ((data[at + 2] ?? 0) << 8) |
        (data[at + 3] ?? 0);
      x[j] = x[j]! ^ word;
    }
    gfMultiply(x, h);
  }
}

/**
 * AES-256-GCM decryption with a 12-byte nonce and a 16-byte tag appended to `sealed` (SP 800-38D). Returns the
 * plaintext, or null when the tag does not verify (no plaintext is released then).
 */
export function aes256GcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  additionalData: Uint8Array,
): Uint8Array | null {
  if (key.length !== 32 || nonce.length !== 12 || sealed.length < 16) return null;
  const { sbox, te } = aesTables();
  const rk = expandKey(key, sbox);
  const h = new Uint32Array(4);
  encryptBlock(rk, sbox, te, h);
  const nonceView = new DataView(nonce.buffer, nonce.byteOffset, 12);
  const n0 = nonceView.getUint32(0);
  const n1 = nonceView.getUint32(4);
  const n2 = nonceView.getUint32(8);
  const ciphertext = sealed.subarray(0, sealed.length - 16);

  const x = new Uint32Array(4);
  ghash(x, h, additionalData);
  ghash(x, h, ciphertext);
  const lengths = new Uint32Array([
    Math.floor(additionalData.length / 0x20000000),
    (additionalData.length << 3) >>> 0,
    Math.floor(ciphertext.length / 0x20000000),
    (ciphertext.length << 3) >>> 0,
  ]);
  for (let j = 0; j < 4; j++) x[j] = x[j]! ^ lengths[j]!;
  gfMultiply(x, h);

  // The tag is GHASH XOR E(K, J0), where J0 is the nonce with a 32-bit counter of 1.
  const block = new Uint32Array([n0, n1, n2, 1]);
  encryptBlock(rk, sbox, te, block);
  const tag = sealed.subarray(sealed.length - 16);
  let difference = 0;
  for (let i = 0; i < 16; i++) {
    const expected = (x[i >>> 2]! ^ block[i >>> 2]!) >>> (24 - (i & 3) * 8);
    difference |= (expected ^ tag[i]!) & 0xff;
  }
  if (difference !== 0) return null;

  const plaintext = new Uint8Array(ciphertext.length);
  for (let offset = 0, counter = 2; offset < ciphertext.length; offset += 16, counter++) {
    block[0] = n0;
    block[1] = n1;
    block[2] = n2;
    block[3] = counter;
    encryptBlock(rk, sbox, te, block);
    const end = Math.min(16, ciphertext.length - offset);
    for (let i = 0; i < end; i++) {
      plaintext[offset + i] = ciphertext[offset + i]! ^ ((block[i >>> 2]! >>> (24 - (i & 3) * 8)) & 0xff);
    }
  }
  return plaintext;
}
