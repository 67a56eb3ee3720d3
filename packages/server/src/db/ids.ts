/**
 * Row ids for append-mostly tables (the audit log): UUID version 7 (RFC 9562 §5.7), a 48-bit millisecond
 * timestamp followed by 74 random bits. A random (version 4) primary key puts every insert on a random leaf of
 * the key's index, so each push of a group commit dirtied a page of its own that the COMMIT then wrote and
 * fsynced; time-ordered keys land on the same few rightmost pages.
 */
import { randomFillSync } from "node:crypto";

// randomFillSync is a system call however few bytes it fills: draw 10 bytes per id from a block filled at once
// (crypto.randomUUID keeps such a cache too).
const POOL_SIZE = 10 * 512;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

function randomTen(): Buffer {
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 10;
  return pool.subarray(poolOffset - 10, poolOffset);
}

/** A new UUIDv7 in the usual hyphenated lower-case form; `now` in milliseconds since the epoch. */
export function timeOrderedId(now: number = Date.now(), random?: Uint8Array): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(Math.floor(now) % 2 ** 48, 0, 6);
  bytes.set((random ?? randomTen()).subarray(0, 10), 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
