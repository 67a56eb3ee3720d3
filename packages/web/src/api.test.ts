import { createHash, createHmac } from "node:crypto";
import { isLatchkeyError, meResponseSchema, signaturePreamble } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { createApiClient, type ApiDeps } from "./api.js";

const ORIGIN = "https://latchkey.example.test";
const TOKEN = "access-token-0123456789abcdefghij";
const ME = {
  userId: "u1",
  email: "a@example.test",
  clientId: "latchkey-dashboard",
  expiresAt: "2027-01-01T00:00:00Z",
};

/** The server's signature (packages/server/src/api/signature.ts) over an answer, with Node's own HMAC. */
function sign(token: string, method: string, path: string, requestId: string, status: number, body: string) {
  const key = createHash("sha256").update(token, "utf8").digest();
  return createHmac("sha256", key)
    .update(signaturePreamble({ method, path, requestId, status }), "utf8")
    .update(body)
    .digest("base64");
}

type Server = (request: { method: string; path: string; requestId: string; headers: Headers }) => Response;

function client(server: Server, options: { signedOut?: boolean } = {}) {
  const token = options.signedOut ? undefined : TOKEN;
  const seen: { headers: Headers; url: string }[] = [];
  let unauthorized = 0;
  const deps: ApiDeps = {
    origin: ORIGIN,
    randomBytes: (n) => new Uint8Array(n).fill(7),
    token: () => token,
    onUnauthorized: () => void unauthorized++,
    fetch: (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input.toString());
      const headers = new Headers(init?.headers);
      seen.push({ headers, url: url.href });
      return Promise.resolve(
        server({
          method: init?.method ?? "GET",
          path: `${url.pathname}${url.search}`,
          requestId: headers.get("x-latchkey-request-id")!,
          headers,
        }),
      );
    },
  };
  return { api: createApiClient(deps), seen, unauthorized: () => unauthorized };
}

/** A server answering `body` with `status`, signed as the real one does unless `signature` says otherwise. */
const answering =
  (
    body: string,
    options: { status?: number; signature?: (good: string) => string | undefined } = {},
  ): Server =>
  (request) => {
    const status = options.status ?? 200;
    const good = sign(TOKEN, request.method, request.path, request.requestId, status, body);
    const signature = options.signature ? options.signature(good) : good;
    return new Response(body, {
      status,
      headers: signature === undefined ? {} : { "x-latchkey-signature": signature },
    });
  };

const me = { method: "GET", path: "/api/v1/me", answer: meResponseSchema } as const;

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

describe("the dashboard's API client", () => {
  it("sends the bearer and a fresh request id, and takes a signed answer of the route's shape", async () => {
    const { api, seen } = client(answering(JSON.stringify(ME)));
    expect(await api.call(me)).toEqual(ME);
    expect(seen[0]!.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
    expect(seen[0]!.headers.get("x-latchkey-request-id")).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("discards an answer whose signature is missing, altered, or made for another request", async () => {
    const body = JSON.stringify(ME);
    const otherRequest = (request: Parameters<Server>[0]) =>
      sign(TOKEN, request.method, request.path, "AAAAAAAAAAAAAAAAAAAAAA", 200, body);
    for (const server of [
      answering(body, { signature: () => undefined }),
      answering(body, { signature: (good) => good.replace(/^./, (c) => (c === "A" ? "B" : "A")) }),
      (request: Parameters<Server>[0]) =>
        new Response(JSON.stringify({ ...ME, email: "mallory@example.test" }), {
          headers: {
            "x-latchkey-signature": sign(TOKEN, request.method, request.path, request.requestId, 200, body),
          },
        }),
      (request: Parameters<Server>[0]) =>
        new Response(body, { headers: { "x-latchkey-signature": otherRequest(request) } }),
      (request: Parameters<Server>[0]) =>
        new Response(body, {
          headers: {
            "x-latchkey-signature": sign(
              "another-token",
              request.method,
              request.path,
              request.requestId,
              200,
              body,
            ),
          },
        }),
    ]) {
      const error = await failure(client(server).api.call(me));
      expect(isLatchkeyError(error, "LK_SIGNATURE_INVALID"), String(error)).toBe(true);
    }
  });

  it("refuses a signed answer of another shape", async () => {
    const error = await failure(client(answering(JSON.stringify({ ...ME, extra: 1 }))).api.call(me));
    expect(isLatchkeyError(error, "LK_SERVER_ERROR")).toBe(true);
  });

  it("signs the tab out on a 401, and when there is no token to send", async () => {
    const refused = client(
      () =>
        new Response(JSON.stringify({ error: "Unauthorized", code: "LK_SESSION_EXPIRED", message: "x" }), {
          status: 401,
        }),
    );
    expect(isLatchkeyError(await failure(refused.api.call(me)), "LK_SESSION_EXPIRED")).toBe(true);
    expect(refused.unauthorized()).toBe(1);
    const none = client(answering(JSON.stringify(ME)), { signedOut: true });
    expect(isLatchkeyError(await failure(none.api.call(me)), "LK_SESSION_EXPIRED")).toBe(true);
    expect(none.unauthorized()).toBe(1);
    expect(none.seen).toEqual([]);
  });

  it("turns a refusal into its catalogue code with the server's words", async () => {
    const body = {
      error: "StepUpRequired",
      code: "LK_STEP_UP_REQUIRED",
      message: "This action needs a fresh step-up.",
    };
    const error = await failure(
      client(() => new Response(JSON.stringify(body), { status: 403 })).api.call(me),
    );
    expect(isLatchkeyError(error, "LK_STEP_UP_REQUIRED")).toBe(true);
    expect((error as Error).message).toBe(body.message);
    const garbled = await failure(client(() => new Response("<html>", { status: 502 })).api.call(me));
    expect(isLatchkeyError(garbled, "LK_SERVER_ERROR")).toBe(true);
  });

  it("refuses to send a path the URL parser would respell (its answer could never verify)", async () => {
    const { api, seen } = client(answering("{}"));
    for (const path of ["/api/v1/../me", "/api/v1/a b", "api/v1/me", "/oidc/token"])
      await expect(api.call({ ...me, path })).rejects.toThrow(/not canonical/);
    expect(seen).toEqual([]);
  });
});
