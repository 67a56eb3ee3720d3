/**
 * Sign-in to the dashboard through the server's own OpenID provider: authorization code + PKCE (S256) with
 * WebCrypto, as the public web client `latchkey-dashboard`. The verifier, state and nonce live in sessionStorage
 * only for the redirect round trip and are deleted at the callback; tokens are kept in memory only (session.ts), so
 * a reload signs in again with `prompt=none` while the provider's session lives. Sign-out ends the provider's
 * session through end_session, named by the client id alone so no token travels in a URL. docs/dashboard.md
 * "Sign-in".
 */
import {
  DASHBOARD_CLIENT_ID,
  DASHBOARD_PATH,
  OIDC_PATH,
  checkSchema,
  dashboardDiscoverySchema,
  dashboardTokenAnswerSchema,
  fromBase64,
  toBase64,
  utf8Decode,
  utf8Encode,
  type DashboardDiscovery,
} from "@latchkey/core";

/** What sign-in needs of the browser; tests hand in their own. */
export interface AuthEnv {
  /** The page's origin: the server's public URL. */
  origin: string;
  fetch: typeof fetch;
  /** sessionStorage: what must survive the redirect to the provider and back, and nothing longer. */
  storage: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  randomBytes: (n: number) => Uint8Array;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** A full-page navigation. */
  assign: (url: string) => void;
}

/** A signed-in dashboard: held in memory only. */
export interface Session {
  accessToken: string;
  /** When the access token expires, in ms since the epoch. */
  expiresAt: number;
}

/** The sessionStorage key of a sign-in under way. */
export const PENDING_KEY = "latchkey.dashboard.sign-in";

/** Where the provider sends the browser back. */
export const CALLBACK_PATH = `${DASHBOARD_PATH}/callback`;

/** What the callback needs from before the redirect. */
interface Pending {
  state: string;
  verifier: string;
  nonce: string;
  returnTo: string;
  silent: boolean;
}

/** How a callback ended. */
export type SignInOutcome =
  | { kind: "signed-in"; session: Session; returnTo: string }
  /** A silent sign-in found no provider session: show the sign-in button (never redirect again by itself). */
  | { kind: "signed-out"; returnTo: string }
  | { kind: "failed"; message: string; returnTo: string };

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  return fromBase64(standard + "=".repeat((4 - (standard.length % 4)) % 4));
}

/** A dashboard path to come back to: anything under the dashboard but the callback itself. */
export function safeReturnTo(path: string): string {
  const home = `${DASHBOARD_PATH}/`;
  if (!path.startsWith(home) || path.startsWith(CALLBACK_PATH) || /[\\\s]/.test(path)) return home;
  return path;
}

let discovered: Promise<DashboardDiscovery> | undefined;

/**
 * The provider's endpoints, from its discovery document: its issuer must be this origin's, and every endpoint on
 * this origin (the CSP would block anything else anyway). Fetched once per page.
 */
export function discover(env: AuthEnv): Promise<DashboardDiscovery> {
  discovered ??= (async () => {
    const issuer = `${env.origin}${OIDC_PATH}`;
    const response = await env.fetch(`${issuer}/.well-known/openid-configuration`, {
      headers: { accept: "application/json" },
    });
    if (!response.ok) throw new Error(`the identity provider answered ${response.status} to its discovery`);
    const checked = checkSchema(dashboardDiscoverySchema, await response.json());
    if (!checked.ok) throw new Error(`the identity provider's discovery document ${checked.message}`);
    const found = checked.value;
    const ours = (url: string): boolean => url.startsWith(`${env.origin}/`);
    if (
      found.issuer !== issuer ||
      !ours(found.authorization_endpoint) ||
      !ours(found.token_endpoint) ||
      !ours(found.end_session_endpoint)
    )
      throw new Error("the identity provider's discovery document names another server");
    return found;
  })();
  discovered.catch(() => (discovered = undefined));
  return discovered;
}

/** Forgets the discovery document (tests). */
export function forgetDiscovery(): void {
  discovered = undefined;
}

/**
 * Sends the browser to the provider's authorization endpoint. `silent`: prompt=none, which comes back at once,
 * signed in if the provider's session lives and with login_required otherwise.
 */
export async function beginSignIn(
  env: AuthEnv,
  options: { silent: boolean; returnTo: string },
): Promise<void> {
  const provider = await discover(env);
  const verifier = base64url(env.randomBytes(32));
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(utf8Encode(verifier)))),
  );
  const pending: Pending = {
    state: base64url(env.randomBytes(16)),
    verifier,
    nonce: base64url(env.randomBytes(16)),
    returnTo: safeReturnTo(options.returnTo),
    silent: options.silent,
  };
  env.storage.setItem(PENDING_KEY, JSON.stringify(pending));
  const params = new URLSearchParams({
    client_id: DASHBOARD_CLIENT_ID,
    response_type: "code",
    redirect_uri: `${env.origin}${CALLBACK_PATH}`,
    scope: "openid email",
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(options.silent ? { prompt: "none" } : {}),
  });
  env.assign(`${provider.authorization_endpoint}?${params.toString()}`);
}

function readPending(env: AuthEnv): Pending | undefined {
  const text = env.storage.getItem(PENDING_KEY);
  // Deleted whatever happens next: a verifier is good for one callback only.
  env.storage.removeItem(PENDING_KEY);
  if (text === null) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const fields = value as Record<string, unknown>;
    const { state, verifier, nonce, returnTo, silent } = fields;
    if (
      typeof state !== "string" ||
      typeof verifier !== "string" ||
      typeof nonce !== "string" ||
      typeof returnTo !== "string" ||
      typeof silent !== "boolean"
    )
      return undefined;
    return { state, verifier, nonce, returnTo: safeReturnTo(returnTo), silent };
  } catch {
    return undefined;
  }
}

/** The errors of prompt=none that mean "nobody is signed in here", not that something broke. */
const NOT_SIGNED_IN = new Set(["login_required", "interaction_required", "consent_required"]);

/**
 * Finishes a sign-in at the callback: `search` is the callback URL's query. Checks the state against the one this
 * tab sent, trades the code for tokens with the verifier, and checks the ID token's issuer, audience, nonce and
 * expiry. The ID token came straight from the provider's token endpoint on this origin, so its signature adds
 * nothing the connection does not already guarantee (OpenID Connect Core §3.1.3.7).
 */
export async function finishSignIn(env: AuthEnv, search: string): Promise<SignInOutcome> {
  const pending = readPending(env);
  const params = new URLSearchParams(search);
  const home = `${DASHBOARD_PATH}/`;
  if (!pending || params.get("state") !== pending.state) {
    return {
      kind: "failed",
      message: "This sign-in was not started from this tab, or it was already used. Sign in again.",
      returnTo: home,
    };
  }
  const error = params.get("error");
  if (error !== null) {
    if (pending.silent && NOT_SIGNED_IN.has(error)) return { kind: "signed-out", returnTo: pending.returnTo };
    if (error === "access_denied") return { kind: "signed-out", returnTo: pending.returnTo };
    return {
      kind: "failed",
      message: `The sign-in failed (${error.replace(/[^a-z_]/g, "")}). Sign in again.`,
      returnTo: pending.returnTo,
    };
  }
  const code = params.get("code");
  if (code === null || code === "")
    return {
      kind: "failed",
      message: "The sign-in came back without a code. Sign in again.",
      returnTo: home,
    };

  const provider = await discover(env);
  const response = await env.fetch(provider.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${env.origin}${CALLBACK_PATH}`,
      client_id: DASHBOARD_CLIENT_ID,
      code_verifier: pending.verifier,
    }).toString(),
  });
  if (!response.ok) {
    return {
      kind: "failed",
      message: `The identity provider refused the sign-in (${response.status}). Sign in again.`,
      returnTo: pending.returnTo,
    };
  }
  const checked = checkSchema(dashboardTokenAnswerSchema, await response.json());
  if (!checked.ok || checked.value.token_type.toLowerCase() !== "bearer")
    return { kind: "failed", message: "The identity provider's answer was not usable.", returnTo: home };
  const tokens = checked.value;
  if (!idTokenFits(tokens.id_token, provider.issuer, pending.nonce, env.now()))
    return {
      kind: "failed",
      message: "The identity provider's ID token did not match this sign-in.",
      returnTo: home,
    };
  return {
    kind: "signed-in",
    session: {
      accessToken: tokens.access_token,
      expiresAt: env.now() + tokens.expires_in * 1000,
    },
    returnTo: pending.returnTo,
  };
}

/** Whether the ID token's claims are this sign-in's: issuer, audience (this client), nonce, unexpired. */
function idTokenFits(idToken: string, issuer: string, nonce: string, now: number): boolean {
  const payload = idToken.split(".")[1];
  if (payload === undefined) return false;
  let claims: unknown;
  try {
    claims = JSON.parse(utf8Decode(fromBase64url(payload)));
  } catch {
    return false;
  }
  if (typeof claims !== "object" || claims === null) return false;
  const { iss, aud, nonce: sent, exp } = claims as Record<string, unknown>;
  const audiences = Array.isArray(aud) ? aud : [aud];
  return (
    iss === issuer &&
    audiences.includes(DASHBOARD_CLIENT_ID) &&
    sent === nonce &&
    typeof exp === "number" &&
    exp * 1000 > now
  );
}

/**
 * Ends the provider's session (end_session, which revokes the dashboard's grant and so its access token) and comes
 * back to the dashboard signed out. No id_token_hint: it would put a token in the URL, and the provider's session
 * cookie already says who signs out. The provider asks the user to confirm, so no other site can sign them out.
 */
export async function endSession(env: AuthEnv): Promise<void> {
  const provider = await discover(env);
  const params = new URLSearchParams({
    client_id: DASHBOARD_CLIENT_ID,
    post_logout_redirect_uri: `${env.origin}${DASHBOARD_PATH}/`,
  });
  env.assign(`${provider.end_session_endpoint}?${params.toString()}`);
}

/** The browser's own AuthEnv. */
export function browserAuthEnv(): AuthEnv {
  return {
    origin: location.origin,
    fetch: (input, init) => fetch(input, init),
    storage: sessionStorage,
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
    now: () => Date.now(),
    assign: (url) => location.assign(url),
  };
}
