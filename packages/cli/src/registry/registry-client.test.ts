import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import {
  startNpmRegistry,
  type NpmRegistry,
  type NpmRegistryOptions,
} from "../../test/support/npm-registry.js";
import { couchLogin, pollWebLogin, registryWhoami, startWebLogin } from "./registry-client.js";

const registries: NpmRegistry[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function registry(options: NpmRegistryOptions = {}): Promise<NpmRegistry> {
  const r = await startNpmRegistry(options);
  registries.push(r);
  return r;
}

/** A context with real fetch and a clock that only records the waits it is asked for. */
function context(onSleep: (ms: number, count: number) => Promise<void> = () => Promise.resolve()) {
  let now = Date.UTC(2030, 0, 1);
  const sleeps: number[] = [];
  const ctx = createTestContext({
    fetch: (input, init) => globalThis.fetch(input, init),
    clock: {
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
        await onSleep(ms, sleeps.length);
      },
    },
  });
  return { ctx, sleeps };
}

async function failure(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a LatchkeyError");
}

describe("registryWhoami", () => {
  it("names the user of a valid token, sending it as a bearer token", async () => {
    const r = await registry({ tokens: { "tok-alice": "alice" } });
    const { ctx } = context();
    expect(await registryWhoami(ctx, r.url, "tok-alice", "custom")).toEqual({
      username: "alice",
      verified: true,
    });
    expect(r.requests).toEqual([
      expect.objectContaining({ method: "GET", path: "/-/whoami", authorization: "Bearer tok-alice" }),
    ]);
  });

  it("works for a registry under a path", async () => {
    const r = await registry({ prefix: "/npm/private/", tokens: { t1: "bob" } });
    const { ctx } = context();
    expect(r.url.endsWith("/npm/private/")).toBe(true);
    expect((await registryWhoami(ctx, r.url, "t1", "custom")).username).toBe("bob");
    expect(r.requests[0]!.path).toBe("/npm/private/-/whoami");
  });

  it("fails with LK_TOKEN_INVALID on 401, without the token in the message", async () => {
    const r = await registry({ tokens: { good: "alice" } });
    const { ctx } = context();
    const error = await failure(registryWhoami(ctx, r.url, "npm_wrong_token_value", "custom"));
    expect(error.code).toBe("LK_TOKEN_INVALID");
    expect(error.message).toContain("HTTP 401");
    expect(JSON.stringify(error.toJSON())).not.toContain("npm_wrong_token_value");
  });

  it("fails with LK_REGISTRY_UNREACHABLE when nothing listens", async () => {
    const r = await registry();
    await r.close();
    registries.pop();
    const { ctx } = context();
    const error = await failure(registryWhoami(ctx, r.url, "t", "custom"));
    expect(error.code).toBe("LK_REGISTRY_UNREACHABLE");
    expect(error.message).toContain(new URL(r.url).origin);
  });

  it("reports a registry without /-/whoami as unverified, and asks GitLab's REST API for a GitLab registry", async () => {
    const r = await registry({ whoami: false, prefix: "/api/v4/packages/npm/" });
    const { ctx } = context();
    expect(await registryWhoami(ctx, r.url, "t", "custom")).toEqual({
      username: null,
      verified: false,
      note: "the registry has no /-/whoami (HTTP 404)",
    });
    const gitlab = await registryWhoami(ctx, r.url, "t", "gitlab");
    expect(gitlab.verified).toBe(false);
    expect(gitlab.note).toContain("/api/v4/user answered HTTP 404");
    expect(r.requests.map((q) => q.path)).toEqual([
      "/api/v4/packages/npm/-/whoami",
      "/api/v4/packages/npm/-/whoami",
      "/api/v4/user",
    ]);
  });

  it("never follows a redirect with the token", async () => {
    const elsewhere: string[] = [];
    const target = createServer((req, res) => {
      elsewhere.push(String(req.headers.authorization));
      res.end("{}");
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const targetPort = (target.address() as AddressInfo).port;
    const redirector = createServer((_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${targetPort}/-/whoami` });
      res.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve));
    closers.push(
      () => new Promise((resolve) => target.close(() => resolve())),
      () => new Promise((resolve) => redirector.close(() => resolve())),
    );
    const { ctx } = context();
    const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/`;
    const error = await failure(registryWhoami(ctx, url, "secret-token", "custom"));
    expect(error.code).toBe("LK_REGISTRY_UNREACHABLE");
    expect(error.message).toContain("redirected");
    expect(elsewhere).toEqual([]);
  });
});

describe("web login", () => {
  it("opens a session, polls doneUrl honouring Retry-After, and returns the token the registry issued", async () => {
    const r = await registry({ retryAfter: "3" });
    let loginUrl = "";
    // The person at the browser finishes the login while the CLI waits for the second time.
    const { ctx, sleeps } = context(async (_ms, count) => {
      if (count === 2) await globalThis.fetch(loginUrl);
    });
    const session = await startWebLogin(ctx, r.url);
    expect(session).not.toBeNull();
    loginUrl = session!.loginUrl;
    expect(session!.loginUrl.startsWith(r.url)).toBe(true);
    const token = await pollWebLogin(ctx, session!);
    expect(sleeps).toEqual([3000, 3000]);
    expect(r.issued).toEqual([token]);
    expect((await registryWhoami(ctx, r.url, token, "custom")).username).toBe("web-user");
    const post = r.requests.find((q) => q.method === "POST")!;
    expect(post.path).toBe("/-/v1/login");
    expect(post.authorization).toBeUndefined();
    expect(r.requests.filter((q) => q.path.startsWith("/-/v1/done")).length).toBe(3);
  });

  it("waits at least a second when Retry-After is missing or zero, and gives up at the deadline", async () => {
    const r = await registry({ retryAfter: "0" });
    const { ctx, sleeps } = context();
    const session = (await startWebLogin(ctx, r.url))!;
    const error = await failure(pollWebLogin(ctx, session, 5000));
    expect(error.code).toBe("LK_LOGIN_FAILED");
    expect(error.message).toContain("not completed within 5 s");
    expect(sleeps).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(r.issued).toEqual([]);
  });

  it("returns null when the registry has no web login (npm then uses the classic login)", async () => {
    const r = await registry({ webLogin: false });
    const { ctx } = context();
    expect(await startWebLogin(ctx, r.url)).toBeNull();
  });

  it("refuses login URLs that are not http(s), and an https registry handing the token over plain http", async () => {
    const answer = (body: unknown) => () =>
      Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
    const ctxWith = (body: unknown) => createTestContext({ fetch: answer(body) });
    const e1 = await failure(
      startWebLogin(
        ctxWith({ loginUrl: "file:///etc/passwd", doneUrl: "https://r.example/done" }),
        "https://r.example/",
      ),
    );
    expect(e1.code).toBe("LK_LOGIN_FAILED");
    const e2 = await failure(
      startWebLogin(
        ctxWith({ loginUrl: "https://r.example/l", doneUrl: "http://r.example/done" }),
        "https://r.example/",
      ),
    );
    expect(e2.code).toBe("LK_LOGIN_FAILED");
    expect(e2.message).toContain("plain http");
  });
});

describe("classic (CouchDB) login", () => {
  it("PUTs the user document and returns the token, which whoami then accepts", async () => {
    const r = await registry({ users: { alice: { password: "correct horse" } } });
    const { ctx } = context();
    const result = await couchLogin(ctx, r.url, "alice", "correct horse");
    expect(result.username).toBe("alice");
    expect(r.issued).toEqual([result.token]);
    const put = r.requests[0]!;
    expect(put.method).toBe("PUT");
    expect(put.path).toBe("/-/user/org.couchdb.user:alice");
    expect(JSON.parse(put.body)).toEqual({
      _id: "org.couchdb.user:alice",
      name: "alice",
      password: "correct horse",
      type: "user",
      roles: [],
      date: "2030-01-01T00:00:00.000Z",
    });
    expect((await registryWhoami(ctx, r.url, result.token, "custom")).username).toBe("alice");
  });

  it("encodes the user name in the path", async () => {
    const r = await registry({ users: { "a/b c": { password: "pw" } } });
    const { ctx } = context();
    await couchLogin(ctx, r.url, "a/b c", "pw");
    expect(r.requests[0]!.path).toBe("/-/user/org.couchdb.user:a%2Fb%20c");
  });

  it("fails with LK_LOGIN_FAILED for a wrong password or an unknown user, never repeating the password", async () => {
    const r = await registry({ users: { alice: { password: "right" } } });
    const { ctx } = context();
    const wrong = await failure(couchLogin(ctx, r.url, "alice", "wrong-password-value"));
    expect(wrong.code).toBe("LK_LOGIN_FAILED");
    expect(wrong.message).toContain("rejected the user name or password (HTTP 401): bad username/password");
    expect(JSON.stringify(wrong.toJSON())).not.toContain("wrong-password-value");
    const unknown = await failure(couchLogin(ctx, r.url, "mallory", "pw"));
    expect(unknown.message).toContain('has no user named "mallory"');
    expect(r.issued).toEqual([]);
  });

  it("asks for a one-time password when the registry wants one and sends it as npm-otp", async () => {
    const r = await registry({ users: { alice: { password: "pw", otp: "123456" } } });
    const { ctx } = context();
    let asked = 0;
    const result = await couchLogin(ctx, r.url, "alice", "pw", {
      otp: () => {
        asked++;
        return Promise.resolve("123456");
      },
    });
    expect(asked).toBe(1);
    expect(r.requests.map((q) => q.otp)).toEqual([undefined, "123456"]);
    expect(r.issued).toEqual([result.token]);

    const refused = await failure(
      couchLogin(ctx, r.url, "alice", "pw", { otp: () => Promise.resolve("000000") }),
    );
    expect(refused.code).toBe("LK_LOGIN_FAILED");
    expect(refused.message).toContain("one-time password");
    expect(refused.message).not.toContain("000000");
  });
});
