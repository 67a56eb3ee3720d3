/**
 * The pairing this browser is waiting on, kept in IndexedDB so that a reload during the wait continues the same
 * pairing (docs/dashboard.md "Pairing a browser"): its id and code, the nonce N committed with, and N's ECDH key
 * pair, whose private key is a non-extractable CryptoKey (IndexedDB stores a CryptoKey as such: page script gets
 * it back usable, never readable). Only this: the keys a pairing hands over are never written here (unlock.ts). A
 * record lives until the pairing is consumed, revoked or expired, or the user forgets this browser.
 */

/** One waiting pairing, per signed-in account. */
export interface PendingPairing {
  /** The account (the ID token's `sub`) that created it: the key of the record. */
  readonly account: string;
  readonly pairingId: string;
  /** The code, normalized. */
  readonly code: string;
  /** When the server expires it (ISO-8601). */
  readonly expiresAt: string;
  /** The label it was created with. */
  readonly label: string;
  /** N's ECDH P-256 private key: non-extractable. */
  readonly privateKey: CryptoKey;
  /** N's public key, the 65-byte uncompressed point. */
  readonly publicKey: Uint8Array;
  /** The 32-byte nonce of the commitment. */
  readonly nonce: Uint8Array;
  /** A's key as seen when A joined, before N revealed; null until then. */
  readonly approverKey: Uint8Array | null;
}

/** Where waiting pairings are kept. */
export interface PendingStore {
  load(account: string): Promise<PendingPairing | null>;
  save(pairing: PendingPairing): Promise<void>;
  remove(account: string): Promise<void>;
  /** Deletes everything this dashboard keeps in the browser (forget this browser). */
  forgetAll(): Promise<void>;
}

/** The IndexedDB database of the dashboard, and its one store. */
export const PENDING_DATABASE = "latchkey-dashboard";
const STORE = "pending-pairings";

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function isPendingPairing(value: unknown): value is PendingPairing {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.account === "string" &&
    typeof v.pairingId === "string" &&
    typeof v.code === "string" &&
    typeof v.expiresAt === "string" &&
    typeof v.label === "string" &&
    v.privateKey instanceof CryptoKey &&
    v.publicKey instanceof Uint8Array &&
    v.nonce instanceof Uint8Array &&
    (v.approverKey === null || v.approverKey instanceof Uint8Array)
  );
}

/** The store in the browser's IndexedDB (`factory`: the global one). */
export function indexedDbPendingStore(factory: IDBFactory = indexedDB): PendingStore {
  const open = (): Promise<IDBDatabase> => {
    const req = factory.open(PENDING_DATABASE, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(STORE, { keyPath: "account" });
    };
    return request(req);
  };
  const withStore = async <T>(mode: IDBTransactionMode, body: (store: IDBObjectStore) => IDBRequest<T>) => {
    const db = await open();
    try {
      const tx = db.transaction(STORE, mode);
      const result = await request(body(tx.objectStore(STORE)));
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
        tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
      });
      return result;
    } finally {
      db.close();
    }
  };
  return {
    load: async (account) => {
      const found: unknown = await withStore("readonly", (store) => store.get(account));
      // Anything else (an older layout, a damaged record) is no pairing to continue.
      return isPendingPairing(found) ? found : null;
    },
    save: async (pairing) => {
      await withStore("readwrite", (store) => store.put(pairing));
    },
    remove: async (account) => {
      await withStore("readwrite", (store) => store.delete(account));
    },
    forgetAll: async () => {
      await request(factory.deleteDatabase(PENDING_DATABASE));
    },
  };
}
