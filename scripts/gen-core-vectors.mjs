// One-off generator for packages/core/test-vectors/*.json. Deliberately independent of the TypeScript
// implementation: node:crypto (OpenSSL) for AES-GCM, HKDF, HMAC and X25519, and its own encoders.
import {
  createCipheriv,
  createHmac,
  hkdfSync,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  randomBytes,
} from "node:crypto";
import { writeFileSync } from "node:fs";

const out = process.argv[2];
const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => Buffer.from(h, "hex");
const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const assertEq = (a, b, what) => {
  if (a !== b) throw new Error(`${what}: ${a} !== ${b}`);
};
const write = (name, obj) => writeFileSync(`${out}/${name}`, JSON.stringify(obj, null, 2) + "\n");

// ---------- HKDF: RFC 5869 Appendix A.1-A.3 (values typed from the RFC, confirmed against OpenSSL) ----------
const range = (a, b) => hex(Array.from({ length: b - a + 1 }, (_, i) => a + i));
const hkdfCases = [
  {
    name: "RFC 5869 A.1: basic test case with SHA-256",
    ikm: "0b".repeat(22),
    salt: "000102030405060708090a0b0c",
    info: "f0f1f2f3f4f5f6f7f8f9",
    length: 42,
    okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  },
  {
    name: "RFC 5869 A.2: longer inputs and outputs",
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
  },
  {
    name: "RFC 5869 A.3: zero-length salt and info",
    ikm: "0b".repeat(22),
    salt: "",
    info: "",
    length: 42,
    okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
  },
];
for (const c of hkdfCases)
  assertEq(hex(hkdfSync("sha256", unhex(c.ikm), unhex(c.salt), unhex(c.info), c.length)), c.okm, c.name);
write("hkdf.json", {
  description:
    "HKDF-SHA256 test vectors from RFC 5869 Appendix A (https://www.rfc-editor.org/rfc/rfc5869#appendix-A). All byte values are lowercase hex.",
  cases: hkdfCases,
});

// ---------- HMAC: RFC 4231 §4.2-4.8 ----------
const ascii = (s) => hex(Buffer.from(s, "ascii"));
const hmacCases = [
  {
    name: "RFC 4231 4.2: test case 1",
    key: "0b".repeat(20),
    data: ascii("Hi There"),
    mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  },
  {
    name: "RFC 4231 4.3: test case 2, key shorter than length of output",
    key: ascii("Jefe"),
    data: ascii("what do ya want for nothing?"),
    mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  },
  {
    name: "RFC 4231 4.4: test case 3, combined length of key and data larger than 64 bytes",
    key: "aa".repeat(20),
    data: "dd".repeat(50),
    mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  },
  {
    name: "RFC 4231 4.5: test case 4",
    key: range(0x01, 0x19),
    data: "cd".repeat(50),
    mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
  },
  {
    name: "RFC 4231 4.6: test case 5, truncation to 128 bits",
    key: "0c".repeat(20),
    data: ascii("Test With Truncation"),
    mac: "a3b6167473100ee06e0c796c2955552b",
    truncatedTo: 16,
  },
  {
    name: "RFC 4231 4.7: test case 6, key larger than block size",
    key: "aa".repeat(131),
    data: ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  },
  {
    name: "RFC 4231 4.8: test case 7, key and data larger than block size",
    key: "aa".repeat(131),
    data: ascii(
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
    ),
    mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
  },
];
for (const c of hmacCases) {
  const full = hex(createHmac("sha256", unhex(c.key)).update(unhex(c.data)).digest());
  assertEq(c.truncatedTo ? full.slice(0, c.truncatedTo * 2) : full, c.mac, c.name);
}
write("hmac.json", {
  description:
    "HMAC-SHA256 test vectors from RFC 4231 section 4 (https://www.rfc-editor.org/rfc/rfc4231#section-4). `truncatedTo` marks a tag truncated to that many bytes: it must NOT verify, since verifyHmacSha256 accepts only full tags. Lowercase hex.",
  cases: hmacCases,
});

// ---------- Envelope ----------
const HEADER = Buffer.from([0x4c, 0x4b, 0x45, 0x01]);
function encodeAd(fields) {
  const entries = Object.entries(fields).map(([k, v]) => ({
    name: Buffer.from(k, "utf8"),
    type: typeof v === "string" ? 0x73 : 0x6e,
    value: Buffer.from(String(v), "utf8"),
  }));
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  return Buffer.concat([
    Buffer.from([0x4c, 0x4b, 0x41, 0x01]),
    u32(entries.length),
    ...entries.flatMap((e) => [
      u32(e.name.length),
      e.name,
      Buffer.from([e.type]),
      u32(e.value.length),
      e.value,
    ]),
  ]);
}
function seal(key, nonce, plaintext, ad) {
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.concat([u32(4), HEADER, u32(ad.length), ad]));
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([HEADER, nonce, ct, c.getAuthTag()]);
}
const envKey = unhex("6c61746368b3e8a1f0c5d2e4a7b9c1d3e5f70819a2b4c6d8eaf1032547698badc");
const envKey2 = unhex("f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff");
const adFields = { vault: "0f8c6a2e-5b7d-4c1e-9a3f-2d4b6c8e0a1b", env: "default", version: 7 };
const adBytes = encodeAd(adFields);
const envCases = [
  {
    name: "empty plaintext, empty associated data",
    key: hex(envKey),
    nonce: "000000000000000000000000",
    plaintext: "",
    associatedData: "",
  },
  {
    name: "UTF-8 text bound to vault/env/version via associatedData()",
    key: hex(envKey),
    nonce: "cafebabefacedbaddecaf888",
    plaintext: ascii('{"NPM_TOKEN":"npm_example","API_URL":"https://example.test"}'),
    associatedData: hex(adBytes),
    associatedDataFields: adFields,
  },
  {
    name: "100 binary bytes, raw associated data, second key",
    key: hex(envKey2),
    nonce: "9a8b7c6d5e4f30211203f4e5",
    plaintext: hex(Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff)),
    associatedData: "00ff00ff",
  },
].map((c) => ({
  ...c,
  envelope: hex(seal(unhex(c.key), unhex(c.nonce), unhex(c.plaintext), unhex(c.associatedData))),
}));
const good = envCases[1];
const flip = (h, byteIndex, mask = 0x01) => {
  const b = unhex(h);
  b[byteIndex] ^= mask;
  return hex(b);
};
const envLen = good.envelope.length / 2;
const wrongAd = hex(encodeAd({ ...adFields, version: 8 }));
const negatives = [
  { name: "header: version byte changed to 0x02", envelope: flip(good.envelope, 3, 0x03) },
  { name: "header: magic changed", envelope: flip(good.envelope, 0, 0x20) },
  { name: "nonce: one bit flipped", envelope: flip(good.envelope, 4) },
  { name: "ciphertext: one bit flipped", envelope: flip(good.envelope, 20) },
  { name: "tag: last bit flipped", envelope: flip(good.envelope, envLen - 1, 0x80) },
  { name: "truncated by one byte", envelope: good.envelope.slice(0, -2) },
  { name: "one byte appended", envelope: good.envelope + "00" },
  { name: "shorter than the 32-byte minimum", envelope: good.envelope.slice(0, 62) },
  { name: "empty", envelope: "" },
  { name: "associated data for version 8 instead of 7", envelope: good.envelope, associatedData: wrongAd },
  { name: "associated data empty", envelope: good.envelope, associatedData: "" },
  {
    name: "associated data passed raw, without the header framing",
    envelope: good.envelope,
    associatedData: hex(Buffer.concat([u32(4), HEADER, u32(adBytes.length), adBytes])),
  },
  { name: "wrong key", envelope: good.envelope, key: hex(envKey2) },
].map((n) => ({
  key: good.key,
  associatedData: good.associatedData,
  ...n,
  expectedError: "LK_DECRYPT_FAILED",
}));
const adSortFields = {
  z: 1,
  a: "",
  "\u00e9": "accent",
  "\uff5e": "fullwidth tilde",
  "\u{1f600}": "emoji",
  n: -42,
  s: "-42",
};
write("envelope.json", {
  description:
    'AEAD envelope vectors: "LKE" 0x01 | nonce(12) | AES-256-GCM ciphertext||tag, with GCM additional data u32be(4)||header||u32be(len ad)||ad. Lowercase hex. `valid`: sealing with key+nonce must reproduce `envelope` exactly and opening must give `plaintext`. `invalid`: opening must fail with `expectedError`. `associatedData`: associatedData(fields) must equal `encoded` (names sorted by UTF-8 bytes, not UTF-16).',
  valid: envCases,
  invalid: negatives,
  associatedData: [
    { name: "vault/env/version", fields: adFields, encoded: hex(adBytes) },
    { name: "empty", fields: {}, encoded: hex(encodeAd({})) },
    {
      name: "UTF-8 byte order, negative integer, number vs string",
      fields: adSortFields,
      encoded: hex(encodeAd(adSortFields)),
    },
  ],
});

// ---------- X25519 and key wrapping ----------
const PKCS8 = unhex("302e020100300506032b656e04220420");
const b64u = (b) => Buffer.from(b).toString("base64url");
const priv = (h) => createPrivateKey({ key: Buffer.concat([PKCS8, unhex(h)]), format: "der", type: "pkcs8" });
const pub = (h) => createPublicKey({ key: { kty: "OKP", crv: "X25519", x: b64u(unhex(h)) }, format: "jwk" });
const pubOf = (h) => hex(Buffer.from(priv(h).export({ format: "jwk" }).x, "base64url"));
const dh = (p, q) => hex(diffieHellman({ privateKey: priv(p), publicKey: pub(q) }));
// RFC 7748 §6.1 (Alice/Bob) and §5.2 (single scalar multiplications; the second u has its high bit set).
const alice = {
  privateKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
  publicKey: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
};
const bob = {
  privateKey: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
  publicKey: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
};
const x25519Cases = [
  {
    name: "RFC 7748 6.1: Alice's private, Bob's public",
    privateKey: alice.privateKey,
    publicKey: bob.publicKey,
    shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
  },
  {
    name: "RFC 7748 6.1: Bob's private, Alice's public",
    privateKey: bob.privateKey,
    publicKey: alice.publicKey,
    shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
  },
  {
    name: "RFC 7748 5.2: first scalar multiplication",
    privateKey: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    publicKey: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    shared: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
  },
  {
    name: "RFC 7748 5.2: second scalar multiplication (u with the high bit set)",
    privateKey: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
    publicKey: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
    shared: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
  },
];
for (const c of x25519Cases) assertEq(dh(c.privateKey, c.publicKey), c.shared, c.name);
assertEq(pubOf(alice.privateKey), alice.publicKey, "alice pub");
assertEq(pubOf(bob.privateKey), bob.publicKey, "bob pub");
const lowOrder = [
  ["zero", "00".repeat(32)],
  ["one", "01" + "00".repeat(31)],
  ["order-8 point", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"],
  ["order-8 point", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"],
  ["p - 1", "ec" + "ff".repeat(30) + "7f"],
  ["p", "ed" + "ff".repeat(30) + "7f"],
  ["p + 1", "ee" + "ff".repeat(30) + "7f"],
  ["zero with the high bit set", "00".repeat(31) + "80"],
];

function wrap(keyHex, recipientPub, ephPriv, ivHex) {
  const ephPub = pubOf(ephPriv);
  const shared = unhex(dh(ephPriv, recipientPub));
  const info = Buffer.concat([Buffer.from("latchkey-wrap-v1", "utf8"), unhex(ephPub), unhex(recipientPub)]);
  const kek = Buffer.from(hkdfSync("sha256", shared, Buffer.alloc(0), info, 32));
  const c = createCipheriv("aes-256-gcm", kek, unhex(ivHex));
  const ct = Buffer.concat([c.update(unhex(keyHex)), c.final(), c.getAuthTag()]);
  return {
    ephemeralPublic: ephPub,
    shared: hex(shared),
    kek: hex(kek),
    wire: `${unhex(ephPub).toString("base64")}:${unhex(ivHex).toString("base64")}:${ct.toString("base64")}`,
  };
}
const gen = () => {
  const p = hex(Buffer.from(generateKeyPairJwk().d, "base64url"));
  return { privateKey: p, publicKey: pubOf(p) };
};
import { generateKeyPairSync } from "node:crypto";
function generateKeyPairJwk() {
  return generateKeyPairSync("x25519").privateKey.export({ format: "jwk" });
}
const carol = gen();
const eph2 = gen();
const wrapCases = [
  {
    name: "RFC 7748 keys: Alice recipient, Bob's key as the ephemeral",
    key: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    recipientPrivate: alice.privateKey,
    recipientPublic: alice.publicKey,
    ephemeralPrivate: bob.privateKey,
    iv: "0f0e0d0c0b0a090807060504",
  },
  {
    name: "generated recipient and ephemeral keys",
    key: hex(randomBytes(32)),
    recipientPrivate: carol.privateKey,
    recipientPublic: carol.publicKey,
    ephemeralPrivate: eph2.privateKey,
    iv: hex(randomBytes(12)),
  },
].map((c) => ({ ...c, ...wrap(c.key, c.recipientPublic, c.ephemeralPrivate, c.iv) }));
const w = wrapCases[0];
const [p0, p1, p2] = w.wire.split(":");
const flipPart = (part, byteIndex, mask = 1) => {
  const b = Buffer.from(part, "base64");
  b[byteIndex] ^= mask;
  return b.toString("base64");
};
const decryptFailures = [
  { name: "ciphertext: one bit flipped", wire: `${p0}:${p1}:${flipPart(p2, 0)}` },
  { name: "tag: last bit flipped", wire: `${p0}:${p1}:${flipPart(p2, 47, 0x80)}` },
  { name: "iv: one bit flipped", wire: `${p0}:${flipPart(p1, 5)}:${p2}` },
  { name: "ephemeral public: one bit flipped", wire: `${flipPart(p0, 0, 2)}:${p1}:${p2}` },
  {
    name: "ephemeral public: ignored high bit flipped (same X25519 secret, different HKDF info)",
    wire: `${flipPart(p0, 31, 0x80)}:${p1}:${p2}`,
  },
  { name: "wrong recipient private key", wire: w.wire, recipientPrivate: carol.privateKey },
  { name: "recipient public key not the one wrapped for", wire: w.wire, recipientPublic: carol.publicKey },
  {
    name: "parts swapped from another wrapped key (ciphertext)",
    wire: `${p0}:${p1}:${wrapCases[1].wire.split(":")[2]}`,
  },
  ...lowOrder.map(([label, h]) => ({
    name: `low-order ephemeral public key: ${label}`,
    wire: `${unhex(h).toString("base64")}:${p1}:${p2}`,
  })),
].map((n) => ({
  recipientPrivate: w.recipientPrivate,
  recipientPublic: w.recipientPublic,
  ...n,
  expectedError: "LK_DECRYPT_FAILED",
}));
// Non-canonical trailing bits: the last data character of a 32-byte part carries 2 unused bits.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const last = p0[42];
const noncanon = p0.slice(0, 42) + alphabet[alphabet.indexOf(last) | 1] + "=";
if (noncanon === p0) throw new Error("trailing-bit mutation did nothing");
const formatFailures = [
  ["empty string", ""],
  ["trailing newline", w.wire + "\n"],
  ["trailing CRLF", w.wire + "\r\n"],
  ["leading space", " " + w.wire],
  ["space after a colon", `${p0}: ${p1}:${p2}`],
  ["line break inside the ciphertext", `${p0}:${p1}:${p2.slice(0, 32)}\n${p2.slice(32)}`],
  ["URL-safe alphabet", `${Buffer.from(p0, "base64").toString("base64url")}=:${p1}:${p2}`],
  ["ephemeral public without padding", `${p0.replace(/=+$/, "")}:${p1}:${p2}`],
  ["ephemeral public with extra padding", `${p0}=:${p1}:${p2}`],
  ["iv with padding appended", `${p0}:${p1}====:${p2}`],
  ["non-canonical trailing bits in the ephemeral public key", `${noncanon}:${p1}:${p2}`],
  ["three colons", `${w.wire}:`],
  ["leading colon", `:${w.wire}`],
  ["two parts", `${p0}:${p2}`],
  ["one part", p2],
  ["iv of 16 bytes", `${p0}:${Buffer.alloc(16).toString("base64")}:${p2}`],
  [
    "ephemeral public of 31 bytes",
    `${Buffer.from(p0, "base64").subarray(0, 31).toString("base64")}:${p1}:${p2}`,
  ],
  [
    "ciphertext of 47 bytes (tag cut)",
    `${p0}:${p1}:${Buffer.from(p2, "base64").subarray(0, 47).toString("base64")}`,
  ],
  [
    "ciphertext of 49 bytes",
    `${p0}:${p1}:${Buffer.concat([Buffer.from(p2, "base64"), Buffer.alloc(1)]).toString("base64")}`,
  ],
  ["hex instead of base64", `${Buffer.from(p0, "base64").toString("hex")}:${p1}:${p2}`],
  ["semicolon separators", w.wire.replaceAll(":", ";")],
  ["full-width characters", w.wire.replace("A", "\uff21")],
].map(([name, wire]) => ({
  name,
  wire,
  recipientPrivate: w.recipientPrivate,
  recipientPublic: w.recipientPublic,
  expectedError: "LK_FORMAT_INVALID",
}));
if (!formatFailures.some((f) => f.name === "URL-safe alphabet" && /[-_]/.test(f.wire)))
  console.warn("note: URL-safe vector has no - or _");
write("wrap.json", {
  description:
    'X25519 (RFC 7748) and key-wrapping vectors. Lowercase hex except `wire`. Wrap: shared = X25519(ephemeralPrivate, recipientPublic); kek = HKDF-SHA256(shared, salt = empty, info = "latchkey-wrap-v1" || ephemeralPublic || recipientPublic, 32); AES-256-GCM(kek, iv, no AAD) over key; wire = base64(ephemeralPublic):base64(iv):base64(ciphertext||tag). `valid`: wrapping with ephemeralPrivate+iv must give `wire` exactly, unwrapping must give `key`. `invalid`: unwrapping must fail with `expectedError`.',
  x25519: x25519Cases,
  lowOrderPublicKeys: lowOrder.map(([name, publicKey]) => ({ name, publicKey })),
  valid: wrapCases,
  invalid: [...formatFailures, ...decryptFailures],
});
console.log("wrote vectors to", out);
