/**
 * The signed-in session of this tab, in memory only: never in localStorage, sessionStorage, IndexedDB, a cookie or
 * a URL. A reload loses it on purpose and signs in again (auth.ts). Views read the state through useAuth(); modules
 * that keep something of the account in the browser (the pairing's IndexedDB) register onSignOut to forget it.
 */
import { useEffect, useState } from "preact/hooks";
import type { Session } from "./auth.js";

/** Where the tab stands. */
export type AuthState =
  /** Finding out: at the callback, or on the way to a silent sign-in. */
  | { kind: "starting" }
  /** Nobody is signed in; `notice` says why, when there is something to say. */
  | { kind: "signed-out"; notice?: string; error?: string }
  | { kind: "signed-in"; session: Session; email: string };

let state: AuthState = { kind: "starting" };
const listeners = new Set<(next: AuthState) => void>();
const signOutHooks = new Set<() => void | Promise<void>>();

/** The current state. */
export function authState(): AuthState {
  return state;
}

/** Moves to `next` and tells every view. */
export function setAuthState(next: AuthState): void {
  state = next;
  for (const listener of listeners) listener(next);
}

/** The current access token, while signed in and unexpired. */
export function accessToken(now = Date.now()): string | undefined {
  return state.kind === "signed-in" && state.session.expiresAt > now ? state.session.accessToken : undefined;
}

/** The state, re-rendering on every change. */
export function useAuth(): AuthState {
  const [current, setCurrent] = useState(state);
  useEffect(() => {
    listeners.add(setCurrent);
    setCurrent(state);
    return () => void listeners.delete(setCurrent);
  }, []);
  return current;
}

/**
 * Runs `hook` whenever this tab signs out (sign out, sign out everywhere, a session the server no longer takes):
 * the place to forget what the browser keeps of the account. Returns the unregistration.
 */
export function onSignOut(hook: () => void | Promise<void>): () => void {
  signOutHooks.add(hook);
  return () => void signOutHooks.delete(hook);
}

/** Forgets the session and runs the sign-out hooks (a failing hook does not stop the others). */
export async function forgetSession(next: AuthState & { kind: "signed-out" }): Promise<void> {
  setAuthState(next);
  await Promise.allSettled([...signOutHooks].map(async (hook) => hook()));
}
