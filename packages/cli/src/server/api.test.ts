// callApi against a real local node:http server speaking HTTP: the sync API's routes answer what each test
// scripts, and `/oidc` serves discovery and a token endpoint so the 401 → refresh → retry path runs through
// openid-client as in production. The real latchkey-server runs in e2e/server-login.test.ts.
import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CLI_CLIENT_ID,
  LatchkeyError,
  auditLogResponseSchema,
  meResponseSchema,
  pullResponseSchema,
  pushResponseSchema,
  type SignedRequest,
} from "@latchkey/core";
import * as z from "zod/mini";
import { createTestContext } from "../../test/support/context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Context } from "../context.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { callApi } from "./api.js";
import { serverAccount, type ServerSession } from "./session.js";
import { signResponse } from "./signature.js";

interface Seen {
  method: string;
  path: string;
  /** The request target as received (path and query), what the server signs. */
  target: string;
  requestId: string | undefined;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

type ApiHandler = (req: Seen, res: ServerResponse) => void;

let server: Server;
let base: string;
let home: string;
let api: ApiHandler = () => undefined;
/** A scripted answer of the token endpoint; a promise holds it back until the test lets it go. */
type TokenAnswer = () => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>;
let tokenAnswers: TokenAnswer[] = [];
const seen: Seen[] = [];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** What the server signs for the answer to `req` with `status`. */
function signedFor(req: Seen, status = 200): SignedRequest {
  return { method: req.method, path: req.target, requestId: req.requestId ?? "", status };
}

/**
 * A signed 200 answer, as the server sends it: the signature over the request, the status and the exact bytes
 * written; `over` changes what the signature is made for.
 */
function signed(
  res: ServerResponse,
  req: Seen,
  token: string,
  body: unknown,
  tamper?: (bytes: Buffer) => Buffer,
  over: Partial<SignedRequest> = {},
): void {
  const bytes = Buffer.from(JSON.stringify(body));
  const signature = signResponse(token, { ...signedFor(req), ...over }, bytes);
  res.writeHead(200, { "content-type": "application/json", "x-latchkey-signature": signature });
  res.end(tamper ? tamper(bytes) : bytes);
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-api-unit-"));
  server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", base);
      const body = await readBody(req);
      const entry: Seen = {
        method: req.method ?? "GET",
        path: url.pathname,
        target: req.url ?? "/",
        requestId: req.headers["x-latchkey-request-id"] as string | undefined,
        authorization: req.headers.authorization,
        contentType: req.headers["content-type"],
        body,
      };
      seen.push(entry);
      if (url.pathname === "/oidc/.well-known/openid-configuration") {
        sendJson(res, 200, {
          issuer: `${base}/oidc`,
          authorization_endpoint: `${base}/oidc/auth`,
          token_endpoint: `${base}/oidc/token`,
          revocation_endpoint: `${base}/oidc/token/revocation`,
          jwks_uri: `${base}/oidc/jwks`,
          response_types_supported: ["code"],
          code_challenge_methods_supported: ["S256"],
        });
        return;
      }
      if (url.pathname === "/oidc/token") {
        const next = tokenAnswers.shift();
        if (next === undefined) {
          sendJson(res, 400, { error: "invalid_request", error_description: "no scripted answer" });
          return;
        }
        const answer = await next();
        sendJson(res, answer.status, answer.body);
        return;
      }
      api(entry, res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(home, { recursive: true, force: true });
});

afterEach(() => {
  seen.length = 0;
  tokenAnswers = [];
  api = () => undefined;
});

let machine = 0;

function session(over: Partial<ServerSession> = {}): ServerSession {
  return {
    access_token: "at-1",
    refresh_token: "rt-1",
    expires_at: Math.floor(Date.now() / 1000) + 900,
    subject: "user-1",
    issuer: `${base}/oidc`,
    client_id: CLI_CLIENT_ID,
    ...over,
  };
}

/** A context with real fetch and clock, a memory keystore, LATCHKEY_SERVER pointing at the test server. */
function context(stored: ServerSession | null = session(), env: Record<string, string> = {}) {
  machine++;
  const latchkeyHome = join(home, `m${machine}`);
  const fullEnv = { LATCHKEY_HOME: latchkeyHome, LATCHKEY_SERVER: base, ...env };
  const keystore: Keystore = createMemoryKeystore(
    stored === null ? {} : { [serverAccount(base)]: JSON.stringify(stored) },
  );
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const ctx = createTestContext({
    env: fullEnv,
    paths: resolvePaths(fullEnv),
    fetch: globalThis.fetch,
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
    keystore: () => Promise.resolve(resolution),
  });
  return { ctx, keystore, latchkeyHome };
}

async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

const ME = {
  userId: "user-1",
  email: "alice@example.com",
  clientId: CLI_CLIENT_ID,
  expiresAt: "2030-01-01T00:00:00Z",
};

function bearer(entry: Seen): string | undefined {
  return entry.authorization?.replace(/^Bearer /, "");
}

describe("callApi: the response signature", () => {
  it("returns the parsed body of a correctly signed answer, with the server and the session's subject", async () => {
    api = (req, res) => signed(res, req, bearer(req)!, ME);
    const { ctx } = context();
    const result = await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(result).toEqual({ data: ME, server: base, userId: "user-1" });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["GET /api/v1/me"]);
    expect(seen[0]!.authorization).toBe("Bearer at-1");
  });

  it("sends a JSON body with its content type", async () => {
    api = (req, res) => signed(res, req, bearer(req)!, { echoed: JSON.parse(req.body) as unknown });
    const { ctx } = context();
    const result = await callApi(ctx, {
      method: "PUT",
      path: "/vaults/v1",
      body: { baseVersion: 0, name: "x" },
      answer: z.strictObject({ echoed: z.unknown() }),
    });
    expect(result.data.echoed).toEqual({ baseVersion: 0, name: "x" });
    expect(seen[0]).toMatchObject({
      method: "PUT",
      path: "/api/v1/vaults/v1",
      contentType: "application/json",
    });
  });

  const cases: [string, (req: Seen, res: ServerResponse) => void, RegExp][] = [
    [
      "a missing header",
      (_req, res) => sendJson(res, 200, ME),
      /X-Latchkey-Signature check: the header is missing/,
    ],
    [
      "a header that is not base64",
      (_req, res) => sendJson(res, 200, ME, { "x-latchkey-signature": "not base64 at all!" }),
      /X-Latchkey-Signature check: the header is not base64/,
    ],
    [
      "base64 of the wrong length",
      (_req, res) => sendJson(res, 200, ME, { "x-latchkey-signature": Buffer.alloc(16).toString("base64") }),
      /X-Latchkey-Signature check: the header is not base64/,
    ],
    [
      "a body byte flipped after signing",
      (req, res) =>
        signed(res, req, bearer(req)!, ME, (bytes) => {
          const copy = Buffer.from(bytes);
          copy[10] = copy[10]! ^ 0x01;
          return copy;
        }),
      /X-Latchkey-Signature check: the signature does not match/,
    ],
    [
      "a signature made with another token",
      (req, res) => signed(res, req, "someone-elses-token", ME),
      /X-Latchkey-Signature check: the signature does not match/,
    ],
    [
      "another user's answer, correctly signed with that user's token",
      (req, res) => signed(res, req, "at-2", { ...ME, userId: "user-2" }),
      /X-Latchkey-Signature check: the signature does not match/,
    ],
    [
      "an answer signed for another request id",
      (req, res) => signed(res, req, bearer(req)!, ME, undefined, { requestId: "A".repeat(22) }),
      /X-Latchkey-Signature check: the signature does not match this request/,
    ],
    [
      "an answer signed for another method",
      (req, res) => signed(res, req, bearer(req)!, ME, undefined, { method: "PUT" }),
      /X-Latchkey-Signature check: the signature does not match this request/,
    ],
    [
      "an answer signed for another path",
      (req, res) => signed(res, req, bearer(req)!, ME, undefined, { path: "/api/v1/vaults/x" }),
      /X-Latchkey-Signature check: the signature does not match this request/,
    ],
    [
      "an answer signed for another status",
      (req, res) => signed(res, req, bearer(req)!, ME, undefined, { status: 201 }),
      /X-Latchkey-Signature check: the signature does not match this request/,
    ],
    [
      "a signature over the body alone (no request bound)",
      (req, res) => {
        const bytes = Buffer.from(JSON.stringify(ME));
        const key = createHash("sha256").update(bearer(req)!, "utf8").digest();
        sendJson(res, 200, ME, {
          "x-latchkey-signature": createHmac("sha256", key).update(bytes).digest("base64"),
        });
      },
      /X-Latchkey-Signature check: the signature does not match this request/,
    ],
  ];
  for (const [name, handler, message] of cases) {
    it(`refuses ${name} with LK_SIGNATURE_INVALID naming the header`, async () => {
      api = handler;
      const { ctx } = context();
      const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
      expect(error.code).toBe("LK_SIGNATURE_INVALID");
      expect(error.message).toMatch(message);
      expect(error.details).toEqual({ header: "X-Latchkey-Signature" });
    });
  }

  it("sends a fresh request id from the context's random with every request, retries included", async () => {
    api = (req, res) =>
      bearer(req) === "at-2" ? signed(res, req, "at-2", ME) : sendJson(res, 401, { error: "Unauthorized" });
    tokenAnswers = [
      () => ({
        status: 200,
        body: { access_token: "at-2", refresh_token: "rt-2", token_type: "Bearer", expires_in: 900 },
      }),
    ];
    const { ctx } = context();
    let next = 0;
    const random = { bytes: (n: number) => new Uint8Array(n).fill(++next) };
    await callApi(Object.assign(ctx, { random }), { method: "GET", path: "/me", answer: meResponseSchema });
    await callApi(Object.assign(ctx, { random }), { method: "GET", path: "/me", answer: meResponseSchema });
    const ids = seen.filter((s) => s.path === "/api/v1/me").map((s) => s.requestId);
    expect(ids).toEqual([1, 2, 3].map((b) => Buffer.alloc(16, b).toString("base64url")));
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("refuses a correctly signed answer replayed as the answer to a later request, even to the same route", async () => {
    let recorded: { body: Buffer; signature: string } | undefined;
    api = (req, res) => {
      if (recorded === undefined) {
        const body = Buffer.from(JSON.stringify(ME));
        recorded = { body, signature: signResponse(bearer(req)!, signedFor(req), body) };
      }
      res.writeHead(200, { "content-type": "application/json", "x-latchkey-signature": recorded.signature });
      res.end(recorded.body);
    };
    const { ctx } = context();
    expect((await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema })).data).toEqual(ME);
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SIGNATURE_INVALID");
  });

  it("signs the request target with its query, as the server received it", async () => {
    api = (req, res) => signed(res, req, bearer(req)!, { vaultId: "v1", entries: [] });
    const { ctx } = context();
    await callApi(ctx, { method: "GET", path: "/vaults/v1/log?limit=5", answer: auditLogResponseSchema });
    expect(seen[0]!.target).toBe("/api/v1/vaults/v1/log?limit=5");
  });

  it("checks the signature before parsing: an unsigned non-JSON body is a signature error, not a parse error", async () => {
    api = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{not json");
    };
    const { ctx } = context();
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }))).code,
    ).toBe("LK_SIGNATURE_INVALID");
  });

  it("reports a signed answer that is not JSON as LK_SERVER_ERROR", async () => {
    api = (req, res) => {
      const bytes = Buffer.from("{not json");
      res.writeHead(200, { "x-latchkey-signature": signResponse(bearer(req)!, signedFor(req), bytes) });
      res.end(bytes);
    };
    const { ctx } = context();
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }))).code,
    ).toBe("LK_SERVER_ERROR");
  });
});

describe("callApi: the session", () => {
  const refreshed = () => ({
    status: 200,
    body: { access_token: "at-2", refresh_token: "rt-2", token_type: "Bearer", expires_in: 900 },
  });

  it("on a 401 refreshes once, retries with the new token and stores the rotated session", async () => {
    api = (req, res) =>
      bearer(req) === "at-2"
        ? signed(res, req, "at-2", ME)
        : sendJson(res, 401, { error: "Unauthorized", code: "x" });
    tokenAnswers = [refreshed];
    const { ctx, keystore } = context();
    const result = await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(result.data).toEqual(ME);
    const tokenRequests = seen.filter((s) => s.path === "/oidc/token");
    expect(tokenRequests).toHaveLength(1);
    const form = new URLSearchParams(tokenRequests[0]!.body);
    expect(form.get("grant_type")).toBe("refresh_token");
    expect(form.get("refresh_token")).toBe("rt-1");
    expect(form.get("client_id")).toBe(CLI_CLIENT_ID);
    expect(seen.filter((s) => s.path === "/api/v1/me").map(bearer)).toEqual(["at-1", "at-2"]);
    const stored = JSON.parse((await keystore.get(serverAccount(base)))!) as ServerSession;
    expect(stored).toMatchObject({ access_token: "at-2", refresh_token: "rt-2", subject: "user-1" });
  });

  it("spends the refresh token once when two calls meet the same 401 at the same time", async () => {
    api = (req, res) =>
      bearer(req) === "at-2"
        ? signed(res, req, "at-2", ME)
        : sendJson(res, 401, { error: "Unauthorized", code: "x" });
    // One answer only: a second refresh request would get the endpoint's error and fail its call.
    tokenAnswers = [refreshed];
    const { ctx } = context();
    const results = await Promise.all([
      callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }),
      callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }),
    ]);
    expect(results.map((r) => r.data)).toEqual([ME, ME]);
    expect(seen.filter((s) => s.path === "/oidc/token")).toHaveLength(1);
  });

  /** Five calls of GET /me started together on one context, as a command's concurrent requests are. */
  const fiveAtOnce = (ctx: Context) =>
    Promise.allSettled(
      Array.from({ length: 5 }, () => callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema })),
    );
  const tokenRequests = () => seen.filter((s) => s.path === "/oidc/token");
  const meBearers = () => seen.filter((s) => s.path === "/api/v1/me").map(bearer);
  /** The reasons of settled calls that must all have failed. */
  const reasons = (results: PromiseSettledResult<unknown>[]): LatchkeyError[] =>
    results.map((r) => {
      if (r.status === "fulfilled" || !(r.reason instanceof LatchkeyError))
        throw new Error("expected every call to fail with a LatchkeyError");
      return r.reason;
    });
  /** Resolves once `test` holds, checked between turns of the event loop. */
  const until = async (test: () => boolean): Promise<void> => {
    while (!test()) await new Promise((resolve) => setImmediate(resolve));
  };
  /** Counts the keystore's reads of the session: each call reads it before it decides to refresh. */
  const countingReads = (keystore: Keystore) => {
    const counter = { reads: 0 };
    const get = keystore.get.bind(keystore);
    keystore.get = (account) => {
      if (account === serverAccount(base)) counter.reads++;
      return get(account);
    };
    return counter;
  };
  const expired = () => session({ expires_at: Math.floor(Date.now() / 1000) - 10 });
  const unavailable = () => ({ status: 503, body: { error: "temporarily_unavailable" } });

  it("refreshes an expired session once for five calls that start together, and every call sends the new token", async () => {
    api = (req, res) =>
      bearer(req) === "at-2" ? signed(res, req, "at-2", ME) : sendJson(res, 401, { error: "Unauthorized" });
    const { ctx, keystore } = context(expired());
    const counter = countingReads(keystore);
    // Held until all five calls have read the expired session (and the refresh its own copy under the lock), so
    // every one of them decides to refresh while the refresh is in flight.
    tokenAnswers = [
      async () => {
        await until(() => counter.reads >= 6);
        return refreshed();
      },
    ];
    const results = await fiveAtOnce(ctx);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value.data : r.reason))).toEqual(
      Array.from({ length: 5 }, () => ME),
    );
    expect(tokenRequests()).toHaveLength(1);
    expect(meBearers()).toEqual(Array.from({ length: 5 }, () => "at-2"));
  });

  it("fails every call waiting on a failed refresh with its error, after one token request; the next call tries again", async () => {
    api = (req, res) =>
      bearer(req) === "at-2" ? signed(res, req, "at-2", ME) : sendJson(res, 401, { error: "Unauthorized" });
    const { ctx, keystore } = context(expired());
    const counter = countingReads(keystore);
    tokenAnswers = [
      async () => {
        await until(() => counter.reads >= 6);
        return unavailable();
      },
      refreshed,
    ];
    const failed = reasons(await fiveAtOnce(ctx));
    expect(failed.map((e) => [e.code, e.message])).toEqual(
      Array.from({ length: 5 }, () => [failed[0]!.code, failed[0]!.message]),
    );
    expect(failed[0]!.code).toBe("LK_SSO_FAILED");
    expect(tokenRequests()).toHaveLength(1);
    expect(meBearers()).toEqual([]);

    const next = await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(next.data).toEqual(ME);
    expect(tokenRequests()).toHaveLength(2);
  });

  it("after five 401s at once makes one refresh; when it fails, all five fail with its error and the next call tries again", async () => {
    // The five 401s are sent together once all five requests are in, so all five renew while one refresh runs.
    let held: ServerResponse[] | null = [];
    api = (req, res) => {
      if (bearer(req) === "at-2") return signed(res, req, "at-2", ME);
      if (held === null) return sendJson(res, 401, { error: "Unauthorized" });
      held.push(res);
      if (held.length < 5) return;
      for (const r of held) sendJson(r, 401, { error: "Unauthorized" });
      held = null;
    };
    tokenAnswers = [unavailable, refreshed];
    const { ctx } = context();
    const failed = reasons(await fiveAtOnce(ctx));
    expect(failed.map((e) => [e.code, e.message])).toEqual(
      Array.from({ length: 5 }, () => [failed[0]!.code, failed[0]!.message]),
    );
    expect(tokenRequests()).toHaveLength(1);
    expect(meBearers()).toEqual(Array.from({ length: 5 }, () => "at-1"));

    const next = await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(next.data).toEqual(ME);
    expect(tokenRequests()).toHaveLength(2);
  });

  it("is LK_SESSION_EXPIRED with the `latchkey login` hint when the retry is refused too, after one refresh", async () => {
    api = (_req, res) => sendJson(res, 401, { error: "Unauthorized", code: "LK_SESSION_EXPIRED" });
    tokenAnswers = [refreshed, refreshed];
    const { ctx } = context();
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SESSION_EXPIRED");
    expect(error.hint).toContain("latchkey login");
    expect(error.hint).not.toContain("login sso");
    expect(seen.filter((s) => s.path === "/oidc/token")).toHaveLength(1);
    expect(seen.filter((s) => s.path === "/api/v1/me")).toHaveLength(2);
  });

  it("is LK_SESSION_EXPIRED when the provider refuses the refresh token (invalid_grant)", async () => {
    api = (_req, res) => sendJson(res, 401, { error: "Unauthorized", code: "x" });
    tokenAnswers = [() => ({ status: 400, body: { error: "invalid_grant" } })];
    const { ctx } = context();
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SESSION_EXPIRED");
    expect(error.message).toContain(base);
    expect(error.hint).toContain("latchkey login");
  });

  it("refreshes an expired session before the request, so the server never sees the expired token", async () => {
    api = (req, res) => signed(res, req, bearer(req)!, ME);
    tokenAnswers = [refreshed];
    const { ctx } = context(session({ expires_at: Math.floor(Date.now() / 1000) - 10 }));
    await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(seen.filter((s) => s.path === "/api/v1/me").map(bearer)).toEqual(["at-2"]);
  });

  it("is LK_SESSION_EXPIRED for an expired session without a refresh token, with no request", async () => {
    const { ctx } = context(
      session({ expires_at: Math.floor(Date.now() / 1000) - 10, refresh_token: undefined }),
    );
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SESSION_EXPIRED");
    expect(seen).toEqual([]);
  });

  it("is LK_NOT_LOGGED_IN without a session, and without a server", async () => {
    const { ctx } = context(null);
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }))).code,
    ).toBe("LK_NOT_LOGGED_IN");
    const bare = context(null, { LATCHKEY_SERVER: "" });
    const error = await rejection(
      callApi(bare.ctx, { method: "GET", path: "/me", answer: meResponseSchema }),
    );
    expect(error.code).toBe("LK_NOT_LOGGED_IN");
    expect(error.message).toContain("no `server`");
    expect(seen).toEqual([]);
  });

  it("uses the server of the profile named in config.toml", async () => {
    api = (req, res) => signed(res, req, bearer(req)!, ME);
    const { ctx, latchkeyHome } = context(session(), { LATCHKEY_SERVER: "" });
    const { mkdir } = await import("node:fs/promises");
    await mkdir(latchkeyHome, { recursive: true });
    await writeFile(join(latchkeyHome, "config.toml"), `[profiles.work]\nserver = "${base}/"\n`);
    const result = await callApi(
      ctx,
      { method: "GET", path: "/me", answer: meResponseSchema },
      { profile: "work" },
    );
    expect(result.server).toBe(base);
  });

  it("refuses a plain-http server that is not on loopback", async () => {
    const { ctx } = context(session(), { LATCHKEY_SERVER: "http://latchkey.example.com" });
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }))).code,
    ).toBe("LK_CONFIG_INVALID");
  });
});

describe("callApi: error answers", () => {
  it("maps 403 to LK_FORBIDDEN", async () => {
    api = (_req, res) => sendJson(res, 403, { error: "Forbidden", code: "LK_FORBIDDEN", message: "no" });
    const { ctx } = context();
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/vaults/x", answer: pullResponseSchema }))).code,
    ).toBe("LK_FORBIDDEN");
  });

  it("maps 404 to the body's catalogue code, else LK_SERVER_ERROR", async () => {
    api = (_req, res) =>
      sendJson(res, 404, { error: "NotFound", code: "LK_VAULT_NOT_SYNCED", message: "none" });
    const { ctx } = context();
    expect(
      (await rejection(callApi(ctx, { method: "GET", path: "/vaults/x", answer: pullResponseSchema }))).code,
    ).toBe("LK_VAULT_NOT_SYNCED");
    api = (_req, res) => sendJson(res, 404, { error: "NotFound", code: "NOT_A_CODE", message: "none" });
    const error = await rejection(
      callApi(ctx, { method: "GET", path: "/vaults/x", answer: pullResponseSchema }),
    );
    expect(error.code).toBe("LK_SERVER_ERROR");
    expect(error.message).toContain("404");
  });

  it("maps 409 to LK_VAULT_CONFLICT with the server's current version", async () => {
    api = (_req, res) =>
      sendJson(res, 409, {
        error: "VaultConflictError",
        code: "LK_VAULT_CONFLICT",
        message: "stale",
        currentVersion: 7,
      });
    const { ctx } = context();
    const error = await rejection(
      callApi(ctx, { method: "PUT", path: "/vaults/x", body: {}, answer: pushResponseSchema }),
    );
    expect(error.code).toBe("LK_VAULT_CONFLICT");
    expect(error.details).toMatchObject({ currentVersion: 7, status: 409 });
  });

  it("maps an organisation's refusals to their own codes: 403 role, 409 membership and key conflicts", async () => {
    const { ctx } = context();
    const cases = [
      [403, "LK_ORG_FORBIDDEN"],
      [409, "LK_ORG_EXISTS"],
      [409, "LK_ORG_LAST_OWNER"],
      [409, "LK_MEMBER_EXISTS"],
      [409, "LK_ORG_MEMBERS_CHANGED"],
      [409, "LK_ORG_VAULT_KEY_MISSING"],
      [404, "LK_ORG_NOT_FOUND"],
    ] as const;
    for (const [status, code] of cases) {
      api = (_req, res) => sendJson(res, status, { error: "Refused", code, message: "refused" });
      const error = await rejection(
        callApi(ctx, { method: "PUT", path: "/orgs/acme", body: {}, answer: pushResponseSchema }),
      );
      expect(error.code, code).toBe(code);
    }
  });

  it("maps 413 to LK_VAULT_TOO_LARGE with what to do, not a bare status", async () => {
    api = (_req, res) =>
      sendJson(res, 413, {
        error: "PayloadTooLargeError",
        code: "LK_SERVER_ERROR",
        message: "The request body is larger than 8388608 bytes.",
      });
    const { ctx } = context();
    const error = await rejection(
      callApi(ctx, { method: "PUT", path: "/vaults/x", body: {}, answer: pushResponseSchema }),
    );
    expect(error.code).toBe("LK_VAULT_TOO_LARGE");
    expect(error.message).toContain("larger than it accepts (413)");
    expect(error.hint).toContain("Make the vault smaller");
    expect(error.details).toMatchObject({ status: 413 });
  });

  it("maps other statuses to LK_SERVER_ERROR naming the status, never echoing the body", async () => {
    api = (_req, res) => sendJson(res, 500, { error: "Boom", code: "x", message: "canary-7c1f in the body" });
    const { ctx } = context();
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SERVER_ERROR");
    expect(error.message).toContain("500");
    expect(JSON.stringify(error.toJSON())).not.toContain("canary-7c1f");
  });

  it("does not follow a redirect (the token stays with the server)", async () => {
    api = (_req, res) => {
      res.writeHead(302, { location: `${base}/elsewhere` });
      res.end();
    };
    const { ctx } = context();
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SERVER_ERROR");
    expect(seen.map((s) => s.path)).toEqual(["/api/v1/me"]);
  });

  it("is LK_SERVER_UNREACHABLE when nothing listens at the server's address", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dead = `http://127.0.0.1:${port}`;
    machine++;
    const env = { LATCHKEY_HOME: join(home, `m${machine}`), LATCHKEY_SERVER: dead };
    const keystore = createMemoryKeystore({
      [serverAccount(dead)]: JSON.stringify(session({ issuer: `${dead}/oidc` })),
    });
    const ctx = createTestContext({
      env,
      paths: resolvePaths(env),
      fetch: globalThis.fetch,
      clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
      keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
    });
    const error = await rejection(callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema }));
    expect(error.code).toBe("LK_SERVER_UNREACHABLE");
    expect(error.message).toContain(dead);
  });
});
