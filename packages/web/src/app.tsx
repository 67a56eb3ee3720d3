/**
 * The app shell: the header (navigation, the account, sign out and sign out everywhere), the sign-in states, and
 * the view the router picks from routes.tsx once signed in.
 */
import { meResponseSchema, REVOKE_ALL_SESSIONS_PATH, revokeAllSessionsResponseSchema } from "@latchkey/core";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.js";
import {
  beginSignIn,
  browserAuthEnv,
  CALLBACK_PATH,
  endSession,
  finishSignIn,
  type AuthEnv,
} from "./auth.js";
import { ROUTES, type Route } from "./routes.js";
import { BASE, Link, matchPath, navigate, usePathname, type RouteParams } from "./router.js";
import { authState, forgetSession, setAuthState, useAuth } from "./session.js";

/** The row of `pathname` in the table, or undefined (not found). */
export function routeFor(pathname: string): { route: Route; params: RouteParams } | undefined {
  for (const route of ROUTES) {
    const params = matchPath(route.path, pathname);
    if (params) return { route, params };
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What the page does on load: at the callback, finish the sign-in and go back where it started; anywhere else, try
 * a silent sign-in (a full-page round trip to the provider, which answers at once either way).
 */
export async function startSignIn(env: AuthEnv): Promise<void> {
  if (location.pathname !== CALLBACK_PATH) {
    await beginSignIn(env, { silent: true, returnTo: `${location.pathname}${location.search}` });
    return;
  }
  const outcome = await finishSignIn(env, location.search);
  // The code and state leave the address bar (and so the history) at once.
  navigate(outcome.returnTo, { replace: true });
  if (outcome.kind === "signed-out") return setAuthState({ kind: "signed-out" });
  if (outcome.kind === "failed") return setAuthState({ kind: "signed-out", error: outcome.message });
  setAuthState({ kind: "signed-in", session: outcome.session, email: "" });
  const me = await api().call({ method: "GET", path: "/api/v1/me", answer: meResponseSchema });
  const now = authState();
  if (now.kind === "signed-in" && now.session === outcome.session) setAuthState({ ...now, email: me.email });
}

function SignIn(props: { notice?: string | undefined; error?: string | undefined }) {
  const [busy, setBusy] = useState(false);
  const [failed, setFailed] = useState<string>();
  const signIn = () => {
    setBusy(true);
    beginSignIn(browserAuthEnv(), {
      silent: false,
      returnTo: `${location.pathname}${location.search}`,
    }).catch((error: unknown) => {
      setBusy(false);
      setFailed(`The sign-in could not start: ${messageOf(error)}`);
    });
  };
  const error = failed ?? props.error;
  return (
    <section aria-labelledby="sign-in-heading" class="sign-in">
      <h1 id="sign-in-heading">Latchkey dashboard</h1>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p>Sign in with your Latchkey account to see your vaults, their audit log and who can read them.</p>
      <button type="button" class="primary" onClick={signIn} disabled={busy}>
        Sign in
      </button>
    </section>
  );
}

function Account(props: { email: string }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);

  const signOut = async () => {
    setBusy(true);
    await forgetSession({ kind: "signed-out", notice: "Signing out…" });
    await endSession(browserAuthEnv());
  };
  const signOutEverywhere = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const ended = await api().call({
        method: "POST",
        path: REVOKE_ALL_SESSIONS_PATH,
        answer: revokeAllSessionsResponseSchema,
      });
      const sessions = ended.grants === 1 ? "1 sign-in" : `${ended.grants} sign-ins`;
      navigate(BASE, { replace: true });
      await forgetSession({
        kind: "signed-out",
        notice: `Signed out everywhere: ${sessions} ended, on every machine and browser. The command line must sign in again too.`,
      });
    } catch (failure) {
      setBusy(false);
      setError(messageOf(failure));
    }
  };

  return (
    <div class="account">
      <span class="email">{props.email}</span>
      <button type="button" onClick={() => void signOut()} disabled={busy}>
        Sign out
      </button>
      {!confirming ? (
        <button type="button" class="danger" onClick={() => setConfirming(true)} disabled={busy}>
          Sign out everywhere
        </button>
      ) : (
        <div class="confirm" role="group" aria-labelledby="everywhere-question">
          <span id="everywhere-question">
            End every session of this account, in every browser and on every machine?
          </span>
          <button
            type="button"
            class="danger"
            ref={confirmRef}
            onClick={() => void signOutEverywhere()}
            disabled={busy}
          >
            Yes, sign out everywhere
          </button>
          <button type="button" onClick={() => setConfirming(false)} disabled={busy}>
            Cancel
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function NotFound() {
  return (
    <section aria-labelledby="not-found-heading">
      <h1 id="not-found-heading">Page not found</h1>
      <p>
        There is no dashboard page here. <Link href={BASE}>Go to your vaults</Link>.
      </p>
    </section>
  );
}

/** The whole dashboard. */
export function App(props: { env?: AuthEnv }) {
  const auth = useAuth();
  const pathname = usePathname();
  useEffect(() => {
    startSignIn(props.env ?? browserAuthEnv()).catch((error: unknown) => {
      setAuthState({ kind: "signed-out", error: `The sign-in did not finish: ${messageOf(error)}` });
    });
  }, []);

  const found = auth.kind === "signed-in" ? routeFor(pathname) : undefined;
  const title = auth.kind === "signed-in" ? (found?.route.title ?? "Not found") : "Sign in";
  useEffect(() => {
    document.title = `${title} · Latchkey`;
  }, [title]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={BASE}>
          Latchkey
        </a>
        {auth.kind === "signed-in" && (
          <nav aria-label="Dashboard">
            <ul>
              {ROUTES.filter((r) => r.nav !== undefined).map((r) => (
                <li key={r.path}>
                  <Link href={r.path} aria-current={r === found?.route ? "page" : undefined}>
                    {r.nav}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {auth.kind === "signed-in" && <Account email={auth.email} />}
      </header>
      <main id="main" tabIndex={-1}>
        {auth.kind === "starting" && (
          <p role="status" class="muted">
            Signing in…
          </p>
        )}
        {auth.kind === "signed-out" && <SignIn notice={auth.notice} error={auth.error} />}
        {auth.kind === "signed-in" && (found ? found.route.render(found.params) : <NotFound />)}
      </main>
    </>
  );
}
