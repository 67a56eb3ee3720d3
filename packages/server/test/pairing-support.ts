// Shared pieces of the pairing suites: the two devices' keys and messages, made with core's pairing computations
// exactly as the CLI makes them.
import {
  generatePairingKeyPair,
  pairingCommitment,
  randomBytes,
  randomKey,
  sealPairingKey,
  toBase64,
  PAIRING_NONCE_BYTES,
  type PairingKeyPair,
} from "@latchkey/core";

/** The new device N: its key pair, its nonce and the commitment it creates the pairing with. */
export interface NewDevice {
  keys: PairingKeyPair;
  nonce: Uint8Array;
  /** base64 of SHA-256(pubN || r). */
  commitment: string;
  /** The reveal body. */
  reveal: { publicKey: string; nonce: string };
}

/** A fresh new device. */
export async function newDevice(): Promise<NewDevice> {
  const keys = await generatePairingKeyPair();
  const nonce = randomBytes(PAIRING_NONCE_BYTES);
  return {
    keys,
    nonce,
    commitment: toBase64(await pairingCommitment(keys.publicKey, nonce)),
    reveal: { publicKey: toBase64(keys.publicKey), nonce: toBase64(nonce) },
  };
}

/** An approving machine's ephemeral key pair and the base64 of its public key (the join body's). */
export async function approverKeys(): Promise<{ keys: PairingKeyPair; publicKey: string }> {
  const keys = await generatePairingKeyPair();
  return { keys, publicKey: toBase64(keys.publicKey) };
}

/**
 * A sealed key as the approving machine sends it (base64), and the keys it holds: the wrapping key, and a sharing
 * key when `withSharingKey` (an approver whose account has one).
 */
export async function sealedWrappingKey(
  approver: PairingKeyPair,
  device: NewDevice,
  label: string,
  code: string,
  options: { withSharingKey?: boolean } = {},
): Promise<{ sealedKey: string; wrappingKey: Uint8Array; sharingKey: Uint8Array | null }> {
  const keys = { wrappingKey: randomKey(), sharingKey: options.withSharingKey === true ? randomKey() : null };
  const sealed = await sealPairingKey(
    approver,
    { label, code, newDeviceKey: device.keys.publicKey, approverKey: approver.publicKey },
    keys,
  );
  return { sealedKey: toBase64(sealed), ...keys };
}
