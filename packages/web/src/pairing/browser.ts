/**
 * The pairing's ties to this page: the IndexedDB store of the waiting pairing, the flow's dependencies on the
 * page's API client and clock, and what a sign-out and "forget this browser" do. Every sign-out of the tab drops
 * the held keys and deletes the dashboard's IndexedDB database (session.ts runs onSignOut hooks).
 */
import { LatchkeyError } from "@latchkey/core";
import { api } from "../api.js";
import { onSignOut } from "../session.js";
import { abandon, type PairingDeps } from "./flow.js";
import { indexedDbPendingStore, type PendingStore } from "./pending-store.js";
import { pairingRequests } from "./requests.js";
import { dropKeys } from "./unlock.js";

let store: PendingStore | undefined;

/** The page's pending-pairing store (IndexedDB). */
export function pendingStore(): PendingStore {
  store ??= indexedDbPendingStore();
  return store;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = () => new LatchkeyError("LK_CANCELLED", { message: "Pairing cancelled." });
    if (signal.aborted) return reject(cancelled());
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    signal.addEventListener("abort", stop, { once: true });
  });
}

/** The flow's dependencies in this page. */
export function pairingDeps(): PairingDeps {
  return { api: pairingRequests(api()), store: pendingStore(), now: () => Date.now(), sleep };
}

/**
 * Forget this browser: revokes the pairing `account` is waiting on (while the session still can), drops the held
 * keys and deletes everything the dashboard keeps in IndexedDB.
 */
export async function forgetThisBrowser(account: string | null): Promise<void> {
  dropKeys();
  if (account !== null) await abandon(pairingDeps(), account).catch(() => undefined);
  await pendingStore().forgetAll();
}

onSignOut(async () => {
  dropKeys();
  // The session is over, so nothing can be revoked from here: a sign-out everywhere revoked the pairings on the
  // server, and any other expires within 5 minutes.
  await pendingStore().forgetAll();
});
