/**
 * A bounded cache of values read from the database, each kept under the version it was read at (dataVersionOf for
 * any data, identityVersionOf for what authentication reads): any later write that the version covers, by this
 * process or another one sharing the SQLite file, changes the version and so retires every entry at once. A hit is
 * therefore exactly what reading the database again would give. Where the database has no such version
 * (PostgreSQL) there is no cache: the version function is null, and so is the cache.
 */

/** A version taken before reading; pass it to `get` and `set` so a value is never filed under a newer one. */
export type ReadStamp = string;

/** See the module comment. */
export interface ReadCache<V> {
  /** The current data version; read it before the database, and use it for this request's get and set. */
  stamp(): ReadStamp | null;
  /** The value kept for `key` at exactly `stamp`, if any. */
  get(key: string, stamp: ReadStamp | null): V | undefined;
  /** Keeps `value` for `key` as read at `stamp` (which was taken before the read). */
  set(key: string, value: V, stamp: ReadStamp | null, bytes?: number): void;
}

/** Bounds of one cache. */
export interface ReadCacheLimits {
  /** Most entries kept; the least recently used goes first. */
  maxEntries: number;
  /** Most bytes kept, as the callers of `set` count them (default: no byte bound). */
  maxBytes?: number;
}

interface Entry<V> {
  value: V;
  stamp: ReadStamp;
  bytes: number;
}

/**
 * Hands out versions for requests, one `read` for all the requests that arrived together. A version vouches for a
 * request only if it was read after the request arrived; so instead of reading at once, the first caller of a turn
 * of the event loop schedules one read for the check phase, after every request whose bytes this turn's poll phase
 * read has been parsed and has asked. Under load many requests share one read (a SQLite read transaction: ~10 µs
 * of locking system calls on this machine) at the price of one turn of latency.
 */
export function createStampBatcher<T>(read: () => T): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= new Promise((resolve, reject) => {
      setImmediate(() => {
        pending = undefined;
        try {
          resolve(read());
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }));
}

/** A read cache under `version` (dataVersionOf, identityVersionOf), or null where there is none. */
export function createReadCache<V>(
  version: (() => ReadStamp | null) | null,
  limits: ReadCacheLimits,
): ReadCache<V> | null {
  if (version === null) return null;
  const maxBytes = limits.maxBytes ?? Number.POSITIVE_INFINITY;
  // A Map iterates in insertion order: re-inserting on each hit keeps the least recently used first.
  const entries = new Map<string, Entry<V>>();
  let totalBytes = 0;
  const drop = (key: string, entry: Entry<V>): void => {
    entries.delete(key);
    totalBytes -= entry.bytes;
  };
  return {
    stamp: version,
    get(key, stamp) {
      const entry = entries.get(key);
      if (entry === undefined || stamp === null) return undefined;
      if (entry.stamp !== stamp) {
        // Read before something was written since (or, for a request still holding an older stamp, after): either
        // way not this request's answer. Versions are not ordered, so the entry goes rather than being compared.
        drop(key, entry);
        return undefined;
      }
      entries.delete(key);
      entries.set(key, entry);
      return entry.value;
    },
    set(key, value, stamp, bytes = 0) {
      if (stamp === null || bytes > maxBytes) return;
      const old = entries.get(key);
      if (old !== undefined) drop(key, old);
      entries.set(key, { value, stamp, bytes });
      totalBytes += bytes;
      for (const [oldest, entry] of entries) {
        if (entries.size <= limits.maxEntries && totalBytes <= maxBytes) break;
        drop(oldest, entry);
      }
    },
  };
}
