// The pairing computations against committed vectors, and each against an independent computation with
// node:crypto (its own ECDH, HKDF, SHA-256 and AES-GCM), so a change to any formula fails here before it can
// strand a device whose peer computes the old one.
import { createCipheriv, createDecipheriv, createECDH, createHash, hkdfSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fromHex, toHex, utf8Encode } from "./bytes.js";
import { associatedData, envelopeGcmAdditionalData, sealEnvelope } from "./envelope.js";
import {
  PAIRING_CODE_ALPHABET,
  generatePairingCode,
  generatePairingKeyPair,
  importPairingKeyPair,
  normalizePairingCode,
  openPairingKey,
  pairingCodeHash,
  pairingCommitment,
  pairingCommitmentMatches,
  pairingComparisonValue,
  pairingKeyFingerprint,
  sealPairingKey,
  checkPairingPublicKey,
  type PairingBinding,
} from "./pairing.js";

const NEW_DEVICE_JWK = {
  kty: "EC",
  crv: "P-256",
  x: "3OLmD78WQ_u55WIYgjs6zEXwQp53U-V6547QZbqp1Fo",
  y: "BJRuFZpr9UEUNMLOpjNmF5mPG1zyPGArWf9J4AePCjw",
  d: "ZEAvvrFIvO_cI6mI802iTyJSPJOmoSxZ34Ke1S_mMpI",
};
const APPROVER_JWK = {
  kty: "EC",
  crv: "P-256",
  x: "bzNVDyLiPjrCaK0_YrDEHzn4koEPwk-dzQ_YMxOe-6E",
  y: "mExo-uiPQDE2espJxJBlTyLy0qisujD7YtemM-qrzMc",
  d: "0KNlMh-PziLj3_3PDzNywglCVonRPFkIuGpN08pNKiQ",
};
const CODE = "7KQ2WX";
const NONCE = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const WRAPPING_KEY = fromHex("a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
const ENVELOPE_NONCE = fromHex("c0c1c2c3c4c5c6c7c8c9cacb");
const SHARING_KEY = fromHex("e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
const SHARING_ENVELOPE_NONCE = fromHex("d0d1d2d3d4d5d6d7d8d9dadb");
const LABEL = "laptop (büro)";

const VECTOR = {
  newDeviceKey:
    "04dce2e60fbf1643fbb9e56218823b3acc45f0429e7753e57ae78ed065baa9d45a04946e159a6bf5411434c2cea6336617998f1b5cf23c602b59ff49e0078f0a3c",
  approverKey:
    "046f33550f22e23e3ac268ad3f62b0c41f39f892810fc24f9dcd0fd833139efba1984c68fae88f4031367aca49c490654f22f2d2a8acba30fb62d7a633eaabccc7",
  codeHash: "622a4957b41464c184b0d2e52e5e934807dfe85acef6a07b65e92dcd11194bc7",
  commitment: "47568070b4b73021c7969d36daae496f4981ca9c9b47dd368cb15ced4ca0668a",
  comparison: "550888",
  fingerprint: "3acc c9b7 c017 ac73",
  /** The wrapping key alone (an approver without a sharing key). */
  sealed:
    "4c4b4501c0c1c2c3c4c5c6c7c8c9cacbb620cca94fc792c64b0a4219835fa51a8986b207cadfe41817d2801670e14e199caa339796c4deca47d1c60ab6c1b7ee",
  /** The wrapping key and the sharing key. */
  sealedWithSharingKey:
    "4c4b4501d0d1d2d3d4d5d6d7d8d9dadb9966a70e5ae6eb8746e78a8d37c2dbad5b4f8e4aa370b6513b5bfdf76e4d5278a31a19ee3b97ed5b0f9effb6d0061cbc238e71146e8b4e6e5e66136ea897f8f3ab2db56619f92d397dfd3bddb7ada96f",
};

function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** The key the envelope is sealed under, computed with node:crypto from the documented inputs. */
function nodeSealingKey(binding: PairingBinding): Buffer {
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(Buffer.from(NEW_DEVICE_JWK.d, "base64url"));
  const shared = ecdh.computeSecret(Buffer.from(binding.approverKey));
  const label = utf8Encode(LABEL);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(label.length);
  const info = Buffer.concat([
    utf8Encode("latchkey-pair-v1 wrap"),
    length,
    label,
    binding.newDeviceKey,
    binding.approverKey,
    sha256(utf8Encode(CODE)),
  ]);
  return Buffer.from(hkdfSync("sha256", shared, Buffer.alloc(0), info, 32));
}

async function fixture() {
  const newDevice = await importPairingKeyPair(NEW_DEVICE_JWK);
  const approver = await importPairingKeyPair(APPROVER_JWK);
  const binding: PairingBinding = {
    label: LABEL,
    code: CODE,
    newDeviceKey: newDevice.publicKey,
    approverKey: approver.publicKey,
  };
  return { newDevice, approver, binding };
}

describe("pairing vectors", () => {
  it("imports the vector keys to their committed public points", async () => {
    const { newDevice, approver } = await fixture();
    expect(toHex(newDevice.publicKey)).toBe(VECTOR.newDeviceKey);
    expect(toHex(approver.publicKey)).toBe(VECTOR.approverKey);
  });

  it("computes the committed code hash, commitment, comparison value and fingerprint", async () => {
    const { newDevice, approver } = await fixture();
    expect(toHex(await pairingCodeHash(CODE))).toBe(VECTOR.codeHash);
    expect(toHex(await pairingCommitment(newDevice.publicKey, NONCE))).toBe(VECTOR.commitment);
    const transcript = {
      code: CODE,
      newDeviceKey: newDevice.publicKey,
      approverKey: approver.publicKey,
      nonce: NONCE,
    };
    expect(await pairingComparisonValue(transcript)).toBe(VECTOR.comparison);
    expect(await pairingKeyFingerprint(newDevice.publicKey)).toBe(VECTOR.fingerprint);
  });

  it("seals the committed envelope of the wrapping key alone, and the new device opens it", async () => {
    const { newDevice, approver, binding } = await fixture();
    const keys = { wrappingKey: WRAPPING_KEY, sharingKey: null };
    const sealed = await sealPairingKey(approver, binding, keys, { nonce: ENVELOPE_NONCE });
    expect(toHex(sealed)).toBe(VECTOR.sealed);
    expect(await openPairingKey(newDevice, binding, sealed)).toEqual(keys);
  });

  it("seals the committed envelope of the wrapping key and the sharing key, and the new device opens it", async () => {
    const { newDevice, approver, binding } = await fixture();
    const keys = { wrappingKey: WRAPPING_KEY, sharingKey: SHARING_KEY };
    const sealed = await sealPairingKey(approver, binding, keys, { nonce: SHARING_ENVELOPE_NONCE });
    expect(sealed).toHaveLength(96);
    expect(toHex(sealed)).toBe(VECTOR.sealedWithSharingKey);
    expect(await openPairingKey(newDevice, binding, sealed)).toEqual(keys);
  });
});

describe("pairing against node:crypto", () => {
  it("the commitment, comparison value and fingerprint are the documented hashes", async () => {
    const { newDevice, approver } = await fixture();
    expect(toHex(await pairingCodeHash("7kq2-wx"))).toBe(toHex(sha256(utf8Encode(CODE))));
    expect(toHex(await pairingCommitment(newDevice.publicKey, NONCE))).toBe(
      toHex(sha256(newDevice.publicKey, NONCE)),
    );
    const digest = sha256(
      utf8Encode("latchkey-pair-v1"),
      utf8Encode(CODE),
      newDevice.publicKey,
      approver.publicKey,
      NONCE,
    );
    const expected = (Buffer.from(digest).readBigUInt64BE(0) % 1_000_000n).toString().padStart(6, "0");
    const transcript = {
      code: CODE,
      newDeviceKey: newDevice.publicKey,
      approverKey: approver.publicKey,
      nonce: NONCE,
    };
    expect(await pairingComparisonValue(transcript)).toBe(expected);
    const fingerprint = toHex(sha256(newDevice.publicKey).subarray(0, 8));
    expect((await pairingKeyFingerprint(newDevice.publicKey)).replaceAll(" ", "")).toBe(fingerprint);
  });

  it.each([
    ["the wrapping key alone", null],
    ["the wrapping key and the sharing key", SHARING_KEY],
  ])(
    "the envelope of %s opens with node's ECDH, HKDF and AES-GCM over the documented inputs",
    async (_, sharingKey) => {
      const { approver, binding } = await fixture();
      const sealed = await sealPairingKey(approver, binding, { wrappingKey: WRAPPING_KEY, sharingKey });
      const kek = nodeSealingKey(binding);
      // The envelope: "LKE" 0x01 | nonce 12 | ciphertext || tag 16.
      expect(toHex(sealed.subarray(0, 4))).toBe("4c4b4501");
      const decipher = createDecipheriv("aes-256-gcm", kek, sealed.subarray(4, 16));
      decipher.setAAD(
        envelopeGcmAdditionalData(associatedData({ purpose: "latchkey-pair-key", version: 1 })),
      );
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const opened = Buffer.concat([
        decipher.update(sealed.subarray(16, sealed.length - 16)),
        decipher.final(),
      ]);
      // The plaintext: the wrapping key, then the sharing key's private scalar when there is one.
      expect(toHex(opened)).toBe(toHex(WRAPPING_KEY) + (sharingKey === null ? "" : toHex(sharingKey)));
    },
  );

  it("node's AES-GCM over the documented inputs seals exactly the committed envelopes", async () => {
    const { binding } = await fixture();
    const cases = [
      { nonce: ENVELOPE_NONCE, plaintext: WRAPPING_KEY, sealed: VECTOR.sealed },
      {
        nonce: SHARING_ENVELOPE_NONCE,
        plaintext: Buffer.concat([WRAPPING_KEY, SHARING_KEY]),
        sealed: VECTOR.sealedWithSharingKey,
      },
    ];
    for (const { nonce, plaintext, sealed } of cases) {
      const cipher = createCipheriv("aes-256-gcm", nodeSealingKey(binding), nonce);
      cipher.setAAD(envelopeGcmAdditionalData(associatedData({ purpose: "latchkey-pair-key", version: 1 })));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      expect(toHex(Buffer.concat([Buffer.from("4c4b4501", "hex"), nonce, body]))).toBe(sealed);
    }
  });
});

describe("pairing refusals", () => {
  it("an envelope opened under another label, code or key is LK_DECRYPT_FAILED", async () => {
    const { newDevice, approver, binding } = await fixture();
    const sealed = await sealPairingKey(approver, binding, {
      wrappingKey: WRAPPING_KEY,
      sharingKey: SHARING_KEY,
    });
    const stranger = await generatePairingKeyPair();
    const cases: PairingBinding[] = [
      { ...binding, label: "laptop" },
      { ...binding, code: "7KQ2WY" },
      { ...binding, approverKey: stranger.publicKey },
    ];
    for (const other of cases) {
      await expect(openPairingKey(newDevice, other, sealed)).rejects.toMatchObject({
        code: "LK_DECRYPT_FAILED",
      });
    }
    const flipped = sealed.slice();
    flipped[20]! ^= 1;
    await expect(openPairingKey(newDevice, binding, flipped)).rejects.toMatchObject({
      code: "LK_DECRYPT_FAILED",
    });
  });

  it("a well-sealed plaintext of neither length is LK_DECRYPT_FAILED; keys of another size are not sealed", async () => {
    const { newDevice, approver, binding } = await fixture();
    const ad = associatedData({ purpose: "latchkey-pair-key", version: 1 });
    for (const length of [0, 31, 33, 48, 63, 65, 96]) {
      const sealed = await sealEnvelope(new Uint8Array(nodeSealingKey(binding)), new Uint8Array(length), ad);
      await expect(openPairingKey(newDevice, binding, sealed), `${length} bytes`).rejects.toMatchObject({
        code: "LK_DECRYPT_FAILED",
      });
    }
    for (const keys of [
      { wrappingKey: WRAPPING_KEY.subarray(1), sharingKey: null },
      { wrappingKey: WRAPPING_KEY, sharingKey: SHARING_KEY.subarray(1) },
      { wrappingKey: WRAPPING_KEY, sharingKey: new Uint8Array(64) },
    ]) {
      await expect(sealPairingKey(approver, binding, keys)).rejects.toThrow("32 bytes");
    }
  });

  it("refuses public keys that are not uncompressed points on P-256", async () => {
    const { newDevice } = await fixture();
    await expect(checkPairingPublicKey(newDevice.publicKey)).resolves.toBeUndefined();
    const offCurve = newDevice.publicKey.slice();
    offCurve[64]! ^= 1;
    for (const bad of [offCurve, newDevice.publicKey.subarray(0, 33), new Uint8Array(65)]) {
      await expect(checkPairingPublicKey(bad)).rejects.toMatchObject({ code: "LK_FORMAT_INVALID" });
    }
  });

  it("a commitment matches only its own key and nonce", async () => {
    const { newDevice, approver } = await fixture();
    const commitment = await pairingCommitment(newDevice.publicKey, NONCE);
    expect(await pairingCommitmentMatches(commitment, newDevice.publicKey, NONCE)).toBe(true);
    expect(await pairingCommitmentMatches(commitment, approver.publicKey, NONCE)).toBe(false);
    const otherNonce = NONCE.slice();
    otherNonce[0]! ^= 1;
    expect(await pairingCommitmentMatches(commitment, newDevice.publicKey, otherNonce)).toBe(false);
    expect(await pairingCommitmentMatches(commitment, newDevice.publicKey, NONCE.subarray(1))).toBe(false);
  });
});

describe("pairing codes", () => {
  it("are 6 characters of the alphabet, without the letters people misread", () => {
    expect(PAIRING_CODE_ALPHABET).not.toMatch(/[01OIL]/);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const code = generatePairingCode();
      expect(normalizePairingCode(code)).toBe(code);
      for (const c of code) seen.add(c);
    }
    expect(seen.size).toBe(PAIRING_CODE_ALPHABET.length);
  });

  it("rejection sampling skips the bytes that would bias the first letters", () => {
    // 248 = 8 × 31 is the first byte drawn again; 247 is the last letter.
    const bytes = [248, 255, 0, 1, 2, 3, 4, 247, 9, 9, 9, 9];
    expect(generatePairingCode(() => Uint8Array.from(bytes))).toBe("23456Z");
  });

  it("are read as typed, in one spelling", () => {
    expect(normalizePairingCode(" 7kq-2wx ")).toBe("7KQ2WX");
    for (const bad of ["7KQ2W", "7KQ2WXX", "7KQ2W0", "7KQ2WO", "7KQ2WI", "7KQ2W1", "7KQ2WL", ""]) {
      expect(normalizePairingCode(bad)).toBeNull();
    }
  });
});

describe("a relay that substitutes its own keys", () => {
  // Deterministic bytes (SHA-256 in counter mode over a seed), so the run is the same every time: a relay's
  // chance of matching is 10^-6 a try, and a seeded run cannot flake.
  function stream(seed: string): (length: number) => Uint8Array {
    let counter = 0;
    return (length) => {
      const out = new Uint8Array(length);
      for (let offset = 0; offset < length; offset += 32) {
        const block = sha256(utf8Encode(`${seed}:${counter++}`));
        out.set(block.subarray(0, Math.min(32, length - offset)), offset);
      }
      return out;
    };
  }
  const point = (bytes: (length: number) => Uint8Array) => Uint8Array.from([4, ...bytes(64)]);

  it("gets the two devices to show the same digits in none of 1,000 tries (chance: about 1 in 1,000 runs of 1,000)", async () => {
    const bytes = stream("latchkey-pair-relay-test");
    let matches = 0;
    for (let i = 0; i < 1000; i++) {
      const code = generatePairingCode(bytes);
      // Honest N and A.
      const newDeviceKey = point(bytes);
      const nonce = bytes(32);
      const approverKey = point(bytes);
      // The relay commits to its own key towards A before it sees pubA, and gives N its own "approver" key
      // before N reveals: neither choice can depend on what the other device will show.
      const relayKey = point(bytes);
      const relayNonce = bytes(32);
      const relayApproverKey = point(bytes);
      const shownByApprover = await pairingComparisonValue({
        code,
        newDeviceKey: relayKey,
        approverKey,
        nonce: relayNonce,
      });
      const shownByNewDevice = await pairingComparisonValue({
        code,
        newDeviceKey,
        approverKey: relayApproverKey,
        nonce,
      });
      expect(shownByApprover).toMatch(/^[0-9]{6}$/);
      if (shownByApprover === shownByNewDevice) matches++;
    }
    expect(matches).toBe(0);
  });

  it("the digits spread over all 10^6 values (no value is favoured a relay could aim at)", async () => {
    const bytes = stream("latchkey-pair-spread-test");
    const firstDigits = new Array<number>(10).fill(0);
    for (let i = 0; i < 2000; i++) {
      const value = await pairingComparisonValue({
        code: generatePairingCode(bytes),
        newDeviceKey: point(bytes),
        approverKey: point(bytes),
        nonce: bytes(32),
      });
      firstDigits[Number(value[0])]!++;
    }
    // 200 expected per leading digit; a reduction that favoured low values would push the first buckets far up.
    for (const count of firstDigits) expect(count).toBeGreaterThan(140);
    for (const count of firstDigits) expect(count).toBeLessThan(260);
  });
});
