/**
 * The signing keys of the trusted CI issuers (issuers.ts): each issuer's discovery document, then the JSON Web Key
 * Set it names, fetched through the injected fetch and cached per issuer. An unknown `kid` refetches, but at most
 * once a minute per issuer, and requests that miss at the same time share one fetch, so a flood of tokens with
 * made-up kids costs the issuer one request a minute. Every answer is capped in time and size and read through its
 * schema before anything in it is trusted.
 */
import { checkSchema, jsonWebKeySetSchema, LatchkeyError, oidcDiscoverySchema } from "@latchkey/core";
import { createLocalJWKSet, type LocalJWKSet } from "jose";
import { isLoopbackHost } from "../loopback.js";
import type { CiIssuer } from "./issuers.js";

/** The outbound fetch the server uses (globalThis.fetch in production; tests count or fake it). */
export type CiFetch = (url: string, init: RequestInit) => Promise<Response>;

/** How long a fetched key set is used before it is fetched again. */
export const JWKS_CACHE_MS = 60 * 60 * 1000;
/** The least time between two fetches of one issuer's keys that an unknown `kid` may cause. */
export const JWKS_REFETCH_INTERVAL_MS = 60 * 1000;
/** How long after a failed fetch the same failure is answered without asking the issuer again. */
export const ISSUER_RETRY_AFTER_FAILURE_MS = 10 * 1000;
/** Longest a discovery document or key set may take to arrive, body included. */
export const ISSUER_FETCH_TIMEOUT_MS = 5_000;
/**
 * Largest discovery document or key set read. GitHub's and GitLab's are a few KiB; the cap keeps a broken or hostile
 * issuer from filling the server's memory.
 */
export const ISSUER_DOCUMENT_MAX_BYTES = 64 * 1024;

/** What the key cache needs. */
export interface IssuerKeysDeps {
  fetch: CiFetch;
  now: () => Date;
  /** Default {@link ISSUER_FETCH_TIMEOUT_MS}. */
  fetchTimeoutMs?: number;
}

/** The cached keys of every trusted issuer. */
export interface IssuerKeys {
  /**
   * The issuer's key set when it holds a key with this `kid` (fetching, or refetching within the limits above, as
   * needed); null when it holds none. Throws LK_CI_ISSUER_FAILED when the keys could not be fetched or trusted.
   */
  forKid(issuer: CiIssuer, kid: string): Promise<LocalJWKSet | null>;
}

/** One issuer's keys as last fetched. */
interface KeySet {
  keys: LocalJWKSet;
  kids: ReadonlySet<string>;
  /** When the fetch that brought them started (ms). */
  fetchedAt: number;
}

interface IssuerState {
  current: KeySet | undefined;
  /** When the last fetch started, successful or not (ms); the unknown-kid limit counts from it. */
  lastFetchAt: number;
  failure: { at: number; error: LatchkeyError } | undefined;
  inFlight: Promise<KeySet> | undefined;
}

/** A cache of the issuers' signing keys; one per server process. */
export function createIssuerKeys(deps: IssuerKeysDeps): IssuerKeys {
  const states = new Map<string, IssuerState>();
  const timeoutMs = deps.fetchTimeoutMs ?? ISSUER_FETCH_TIMEOUT_MS;

  // Called only when no fetch of this issuer is in flight (forKid joins one that is).
  const refresh = (issuer: CiIssuer, state: IssuerState): Promise<KeySet> => {
    const startedAt = deps.now().getTime();
    if (state.failure && startedAt - state.failure.at < ISSUER_RETRY_AFTER_FAILURE_MS) {
      return Promise.reject(state.failure.error);
    }
    state.lastFetchAt = startedAt;
    const fetching = fetchKeySet(issuer, deps.fetch, timeoutMs, startedAt).then(
      (fetched) => {
        state.current = fetched;
        state.failure = undefined;
        return fetched;
      },
      (err: unknown) => {
        const error = asIssuerFailure(issuer, err);
        state.failure = { at: startedAt, error };
        throw error;
      },
    );
    state.inFlight = fetching.finally(() => {
      state.inFlight = undefined;
    });
    return state.inFlight;
  };

  return {
    async forKid(issuer, kid) {
      let state = states.get(issuer.url);
      if (state === undefined) {
        state = { current: undefined, lastFetchAt: -Infinity, failure: undefined, inFlight: undefined };
        states.set(issuer.url, state);
      }
      // A fetch under way may bring the very kid asked for (a rotation): wait for it rather than refuse.
      if (state.inFlight) {
        const joined = await state.inFlight;
        return joined.kids.has(kid) ? joined.keys : null;
      }
      const now = deps.now().getTime();
      const current = state.current;
      if (current !== undefined && now - current.fetchedAt < JWKS_CACHE_MS) {
        if (current.kids.has(kid)) return current.keys;
        if (now - state.lastFetchAt < JWKS_REFETCH_INTERVAL_MS) return null;
      }
      const fetched = await refresh(issuer, state);
      return fetched.kids.has(kid) ? fetched.keys : null;
    },
  };
}

/** The URL of an issuer's discovery document (OpenID Connect Discovery 1.0 §4: a trailing slash is not doubled). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
}

async function fetchKeySet(
  issuer: CiIssuer,
  fetch: CiFetch,
  timeoutMs: number,
  startedAt: number,
): Promise<KeySet> {
  const discovery = checkSchema(
    oidcDiscoverySchema,
    await fetchJson(fetch, discoveryUrl(issuer.url), timeoutMs),
  );
  if (!discovery.ok) throw failed(`its discovery document is not usable: ${discovery.message}`);
  if (discovery.value.issuer !== issuer.url) {
    throw failed(`its discovery document names another issuer than ${issuer.url}`);
  }
  const jwksUrl = trustedJwksUrl(issuer, discovery.value.jwks_uri);
  const checked = checkSchema(jsonWebKeySetSchema, await fetchJson(fetch, jwksUrl, timeoutMs));
  if (!checked.ok) throw failed(`its key set is not usable: ${checked.message}`);
  const set = checked.value;
  let keys: LocalJWKSet;
  try {
    keys = createLocalJWKSet(set);
  } catch (err) {
    throw failed("its key set is not a valid JSON Web Key Set", err);
  }
  const kids = new Set(set.keys.flatMap((key) => (key.kid === undefined ? [] : [key.kid])));
  return { keys, kids, fetchedAt: startedAt };
}

/**
 * The discovery document's jwks_uri when it is on the issuer's own host and port over https, or, for a loopback
 * issuer, over http on the same loopback host and port. Keys served anywhere else are not the issuer's to vouch for:
 * whoever could change the document could otherwise point it at keys of their own.
 */
function trustedJwksUrl(issuer: CiIssuer, jwksUri: string): string {
  const issuerUrl = new URL(issuer.url);
  let url: URL;
  try {
    url = new URL(jwksUri);
  } catch {
    throw failed("its discovery document names a jwks_uri that is not a URL");
  }
  const loopbackIssuer = issuerUrl.protocol === "http:" && isLoopbackHost(issuerUrl.hostname);
  const schemeOk = url.protocol === "https:" || (loopbackIssuer && url.protocol === "http:");
  if (!schemeOk || url.host !== issuerUrl.host || url.username !== "" || url.password !== "") {
    throw failed(
      `its discovery document names a jwks_uri that is not ${loopbackIssuer ? "http(s)" : "https"} on ${issuerUrl.host}`,
    );
  }
  return url.href;
}

async function fetchJson(fetch: CiFetch, url: string, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    // A redirect could lead anywhere; the issuer's documents are served where they are named.
    response = await fetch(url, { signal, redirect: "error", headers: { accept: "application/json" } });
  } catch (err) {
    throw failed(
      signal.aborted ? `${url} did not answer within ${timeoutMs} ms` : `${url} could not be fetched`,
      err,
    );
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(`${url} answered HTTP ${response.status}`);
  }
  const text = await readCapped(response, url, signal, timeoutMs);
  try {
    const value: unknown = JSON.parse(text);
    return value;
  } catch (err) {
    throw failed(`${url} did not answer JSON`, err);
  }
}

/** The body as text, refusing it once it passes {@link ISSUER_DOCUMENT_MAX_BYTES} or the time runs out. */
async function readCapped(
  response: Response,
  url: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<string> {
  const tooLarge = () => failed(`${url} answered more than ${ISSUER_DOCUMENT_MAX_BYTES} bytes`);
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > ISSUER_DOCUMENT_MAX_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return "";
  const reader = response.body.getReader();
  // Not every fetch ties the body to the signal; this one stops reading when the time is up either way.
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (signal.aborted) throw failed(`${url} did not answer within ${timeoutMs} ms`);
      if (done) break;
      size += value.byteLength;
      if (size > ISSUER_DOCUMENT_MAX_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    throw failed(
      signal.aborted ? `${url} did not answer within ${timeoutMs} ms` : `${url} broke off its answer`,
      err,
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** An LK_CI_ISSUER_FAILED whose message goes on from "could not use the issuer's keys: ". */
function failed(why: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError("LK_CI_ISSUER_FAILED", {
    message: `The server could not use the signing keys of the CI token's issuer: ${why}.`,
    ...(cause === undefined ? {} : { cause }),
  });
}

function asIssuerFailure(issuer: CiIssuer, err: unknown): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  return failed(`fetching from ${issuer.url} failed`, err);
}
