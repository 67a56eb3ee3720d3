/**
 * The one UUID check: the hyphenated 8-4-4-4-12 hex form, any case, no braces or `urn:uuid:` prefix, version and
 * variant bits not checked (nil and max UUIDs pass). Vault ids on the sync API and envSchema's `uuid` format use it.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` is a UUID in its hyphenated text form. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A version 4 UUID from 16 random bytes (the caller's CSPRNG): the version and variant bits set, hyphenated. */
export function uuidV4(random: Uint8Array): string {
  if (random.length !== 16) throw new RangeError("a UUID takes 16 random bytes");
  const bytes = Uint8Array.from(random);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
