/** The keychain service name every Latchkey item lives under. */
export const KEYSTORE_SERVICE = "latchkey";

/** Which backend holds the secrets. */
export type KeystoreKind = "keyring" | "file" | "memory";

/**
 * One secret store: string values under account names, all under service `latchkey`.
 * Implementations throw LatchkeyError (LK_KEYRING_*, LK_STORE_*, LK_FILE_*) and never include values in errors.
 */
export interface Keystore {
  readonly kind: KeystoreKind;
  /** The value stored under `account`, or null when there is none. */
  get(account: string): Promise<string | null>;
  /** Creates or overwrites `account`. */
  set(account: string, value: string): Promise<void>;
  /** Removes `account`; true when something was removed. */
  delete(account: string): Promise<boolean>;
  /** Every account name under the service, sorted. */
  list(): Promise<string[]>;
}
