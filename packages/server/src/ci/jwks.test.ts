// The issuers' key cache with a fake fetch: what it asks for and how, the limits on what it reads (time, size,
// status, JSON, schema, where the keys may live), how it remembers a failure, and that misses share one fetch.
import { isLatchkeyError } from "@latchkey/core";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { CiIssuer } from "./issuers.js";
import {
  createIssuerKeys,
  discoveryUrl,
  ISSUER_DOCUMENT_MAX_BYTES,
  ISSUER_RETRY_AFTER_FAILURE_MS,
  type CiFetch,
} from "./jwks.js";

const ISSUER: CiIssuer = { provider: "gitlab", url: "https://gitlab.example.com" };
const JWKS_URL = "https://gitlab.example.com/oauth/discovery/keys";

let publicJwk: JWK;
beforeAll(async () => {
  const { publicKey } = await generateKeyPair("RS256", { extractable: true });
  publicJwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
});

const json = (body: unknown, init: ResponseInit = {}) =>
  new Response(JSON.stringify(body), {
    status: 200,
    headers: { "content-type": "application/json" },
    ...init,
  });

interface FakeIssuer {
  fetch: CiFetch;
  calls: { url: string; init: RequestInit }[];
}

/** A fetch serving `discovery` and `jwks` (functions, so a test can change them between calls). */
function fakeIssuer(
  discovery: () => Response | Promise<Response> = () => json({ issuer: ISSUER.url, jwks_uri: JWKS_URL }),
  jwks: () => Response | Promise<Response> = () => json({ keys: [publicJwk] }),
): FakeIssuer {
  const calls: FakeIssuer["calls"] = [];
  return {
    calls,
    fetch: async (url, init) => {
      calls.push({ url, init });
      if (url === discoveryUrl(ISSUER.url)) return discovery();
      if (url === JWKS_URL) return jwks();
      return new Response("not found", { status: 404 });
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isLatchkeyError(error, "LK_CI_ISSUER_FAILED"), String(error)).toBe(true);
  return (error as Error).message;
}

describe("the issuers' key cache", () => {
  it("fetches the discovery document, then its jwks_uri, refusing redirects and asking for JSON", async () => {
    const issuer = fakeIssuer();
    const keys = createIssuerKeys({ fetch: issuer.fetch, now: () => new Date() });
    expect(await keys.forKid(ISSUER, "k1")).not.toBeNull();
    expect(await keys.forKid(ISSUER, "k2")).toBeNull();
    expect(issuer.calls.map((c) => c.url)).toEqual([
      "https://gitlab.example.com/.well-known/openid-configuration",
      JWKS_URL,
    ]);
    for (const { init } of issuer.calls) {
      expect(init.redirect).toBe("error");
      expect(init.signal).toBeInstanceOf(AbortSignal);
      expect(init.headers).toEqual({ accept: "application/json" });
    }
  });

  it("does not double the slash of an issuer that ends in one", () => {
    expect(discoveryUrl("https://issuer.example/")).toBe(
      "https://issuer.example/.well-known/openid-configuration",
    );
    expect(discoveryUrl("https://git.example/gitlab")).toBe(
      "https://git.example/gitlab/.well-known/openid-configuration",
    );
  });

  it.each([
    ["http on an https issuer's host", "http://gitlab.example.com/oauth/discovery/keys"],
    ["https on another host", "https://keys.example.net/oauth/discovery/keys"],
    ["https on a sub-domain", "https://keys.gitlab.example.com/oauth/discovery/keys"],
    ["https on another port", "https://gitlab.example.com:8443/oauth/discovery/keys"],
    ["with credentials", "https://user:pass@gitlab.example.com/oauth/discovery/keys"],
    ["not a URL", "/oauth/discovery/keys"],
  ])("refuses a jwks_uri %s, without fetching it", async (_, jwksUri) => {
    const issuer = fakeIssuer(() => json({ issuer: ISSUER.url, jwks_uri: jwksUri }));
    const keys = createIssuerKeys({ fetch: issuer.fetch, now: () => new Date() });
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain("jwks_uri");
    expect(issuer.calls).toHaveLength(1);
  });

  it.each([
    [
      "a discovery document naming another issuer",
      () => json({ issuer: "https://gitlab.com", jwks_uri: JWKS_URL }),
      "names another issuer",
    ],
    [
      "a discovery document naming the issuer with a trailing slash",
      () => json({ issuer: `${ISSUER.url}/`, jwks_uri: JWKS_URL }),
      "names another issuer",
    ],
    ["a discovery document without jwks_uri", () => json({ issuer: ISSUER.url }), "names no jwks_uri"],
    ["a discovery document that is an array", () => json([ISSUER.url]), "is not usable"],
    ["an error status", () => new Response("{}", { status: 500 }), "answered HTTP 500"],
    [
      "a redirect status",
      () => new Response("", { status: 302, headers: { location: "https://x.example/" } }),
      "answered HTTP 302",
    ],
    ["a body that is not JSON", () => new Response("<html>", { status: 200 }), "did not answer JSON"],
    [
      "a declared length over the cap",
      () => new Response("{}", { headers: { "content-length": String(ISSUER_DOCUMENT_MAX_BYTES + 1) } }),
      `more than ${ISSUER_DOCUMENT_MAX_BYTES} bytes`,
    ],
    [
      "a streamed body over the cap",
      () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(new Uint8Array(16 * 1024).fill(32));
            },
          }),
        ),
      `more than ${ISSUER_DOCUMENT_MAX_BYTES} bytes`,
    ],
    ["a fetch that fails", () => Promise.reject(new TypeError("fetch failed")), "could not be fetched"],
  ])("refuses %s", async (_, discovery, says) => {
    const keys = createIssuerKeys({ fetch: fakeIssuer(discovery).fetch, now: () => new Date() });
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain(says);
  });

  it.each([
    ["no keys array", () => json({ keys: "none" }), "is not usable"],
    [
      "a key without kty",
      () => json({ keys: [{ kid: "k1", n: "x", e: "AQAB" }] }),
      "holds a key with no kty",
    ],
    ["a key whose kid is a number", () => json({ keys: [{ ...publicJwk, kid: 1 }] }), "kid is not a string"],
  ])("refuses a key set with %s", async (_, jwks, says) => {
    const keys = createIssuerKeys({ fetch: fakeIssuer(undefined, jwks).fetch, now: () => new Date() });
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain(says);
  });

  it("gives up on an issuer that does not answer in time, headers or body", async () => {
    const hanging: CiFetch = (_url, init) =>
      new Promise((_, reject) => init.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
    const keys = createIssuerKeys({ fetch: hanging, now: () => new Date(), fetchTimeoutMs: 20 });
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain("did not answer within 20 ms");

    // Headers at once, then a body that never ends, from a fetch that does not tie its body to the signal.
    const trickle = fakeIssuer(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode("{"));
            },
          }),
        ),
    );
    const slow = createIssuerKeys({ fetch: trickle.fetch, now: () => new Date(), fetchTimeoutMs: 20 });
    expect(await failure(slow.forKid(ISSUER, "k1"))).toContain("did not answer within 20 ms");
  });

  it("answers a failure again without fetching for 10 s, then tries again", async () => {
    let up = false;
    const issuer = fakeIssuer(() =>
      up ? json({ issuer: ISSUER.url, jwks_uri: JWKS_URL }) : new Response("", { status: 503 }),
    );
    let clock = new Date("2026-12-07T10:00:00Z");
    const keys = createIssuerKeys({ fetch: issuer.fetch, now: () => clock });
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain("HTTP 503");
    up = true;
    clock = new Date(clock.getTime() + ISSUER_RETRY_AFTER_FAILURE_MS - 1);
    expect(await failure(keys.forKid(ISSUER, "k1"))).toContain("HTTP 503");
    expect(issuer.calls).toHaveLength(1);
    clock = new Date(clock.getTime() + 1);
    expect(await keys.forKid(ISSUER, "k1")).not.toBeNull();
    expect(issuer.calls).toHaveLength(3);
  });

  it("lets requests that miss at the same time share one fetch", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const issuer = fakeIssuer(undefined, async () => {
      await gate;
      return json({ keys: [publicJwk] });
    });
    const keys = createIssuerKeys({ fetch: issuer.fetch, now: () => new Date() });
    const waiting = Array.from({ length: 10 }, (_, i) => keys.forKid(ISSUER, i % 2 === 0 ? "k1" : "other"));
    release();
    const results = await Promise.all(waiting);
    expect(results.filter((r) => r !== null)).toHaveLength(5);
    expect(issuer.calls.map((c) => c.url)).toEqual([discoveryUrl(ISSUER.url), JWKS_URL]);
  });

  it("lets a request for a new kid wait for the refetch another one started, instead of refusing it", async () => {
    let kids = ["k1"];
    let release: (() => void) | undefined;
    const issuer = fakeIssuer(undefined, async () => {
      if (release === undefined) return json({ keys: kids.map((kid) => ({ ...publicJwk, kid })) });
      await new Promise<void>((resolve) => (release = resolve));
      return json({ keys: kids.map((kid) => ({ ...publicJwk, kid })) });
    });
    let clock = new Date("2026-12-07T10:00:00Z");
    const keys = createIssuerKeys({ fetch: issuer.fetch, now: () => clock });
    expect(await keys.forKid(ISSUER, "k1")).not.toBeNull();
    // The issuer rotates; a minute later two jobs present the new kid at once.
    kids = ["k1", "k2"];
    release = () => undefined;
    clock = new Date(clock.getTime() + 61_000);
    const first = keys.forKid(ISSUER, "k2");
    const second = keys.forKid(ISSUER, "k2");
    // Once the refetch has reached the key set, it is let through.
    while (issuer.calls.length < 4) await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await first).not.toBeNull();
    expect(await second).not.toBeNull();
    expect(issuer.calls.filter((c) => c.url === JWKS_URL)).toHaveLength(2);
  });
});
