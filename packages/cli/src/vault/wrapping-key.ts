import { LatchkeyError, fromBase64, toBase64 } from "@latchkey/core";
import { join } from "node:path";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import type { Random } from "../context.js";
import type { Keystore } from "../keystore/types.js";

/** Keystore account of the machine wrapping key (DESIGN.md, keychain layout). */
export const WRAPPING_KEY_ACCOUNT = "wrapping-key";

function decode(value: string): Uint8Array {
  const key = fromBase64(value);
  if (key.length !== 32) {
    throw new LatchkeyError("LK_STORE_CORRUPT", {
      message: `The keystore entry ${WRAPPING_KEY_ACCOUNT} is not a 256-bit key.`,
    });
  }
  return key;
}

/**
 * Keystore account of the key `latchkey env rotate-key` is rotating to. While it exists, vault keys may be
 * wrapped by it or by the current key (a rotation re-wraps them one by one), so readers try both.
 */
export const PENDING_WRAPPING_KEY_ACCOUNT = "wrapping-key-pending";

/** The machine wrapping key, or null when this machine has none yet. */
export async function readWrappingKey(keystore: Keystore): Promise<Uint8Array | null> {
  const value = await keystore.get(WRAPPING_KEY_ACCOUNT);
  return value === null ? null : decode(value);
}

/** The key a rotation in progress is moving to, or null when no rotation is under way. */
export async function readPendingWrappingKey(keystore: Keystore): Promise<Uint8Array | null> {
  const value = await keystore.get(PENDING_WRAPPING_KEY_ACCOUNT);
  return value === null ? null : decode(value);
}

/**
 * The machine wrapping key, created on first use. Creation holds a lock under LATCHKEY_HOME: two first uses at
 * once must agree on one key, or vault keys wrapped by the loser's key would be lost with it.
 */
export async function getOrCreateWrappingKey(
  keystore: Keystore,
  home: string,
  random: Random,
): Promise<Uint8Array> {
  const existing = await readWrappingKey(keystore);
  if (existing) return existing;
  await ensurePrivateDir(home);
  return withFileLock(join(home, WRAPPING_KEY_ACCOUNT), async () => {
    const again = await readWrappingKey(keystore);
    if (again) return again;
    const key = random.bytes(32);
    await keystore.set(WRAPPING_KEY_ACCOUNT, toBase64(key));
    return key;
  });
}
