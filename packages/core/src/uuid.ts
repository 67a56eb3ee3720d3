/**
 * The one UUID check: the hyphenated 8-4-4-4-12 hex form, any case, no braces or `urn:uuid:` prefix, version and
 * variant bits not checked (nil and max UUIDs pass). Vault ids on the sync API and envSchema's `uuid` format use it.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` is a UUID in its hyphenated text form. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
