import { describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { redactBody, request, tracedFetch, type Attempt } from "./client.js";

const SECRETS = [
  "cs-0123456789abcdef",
  "at-0123456789abcdef",
  "rt-0123456789abcdef",
  "pw-0123456789abcdef",
  "code-0123456789",
];

describe("redactBody", () => {
  it("redacts secret form fields and keeps the rest", () => {
    const form = new URLSearchParams({
      grant_type: "password",
      username: "alice",
      password: SECRETS[3]!,
      client_secret: SECRETS[0]!,
      refresh_token: SECRETS[2]!,
      code: SECRETS[4]!,
      code_verifier: "v-0123456789",
      scope: "api:read",
    }).toString();
    const out = redactBody(form, "application/x-www-form-urlencoded");
    for (const s of SECRETS) expect(out).not.toContain(s);
    expect(out).not.toContain("v-0123456789");
    expect(out).toContain("grant_type=password");
    expect(out).toContain("scope=api%3Aread");
    expect(out).toContain("password=[REDACTED]");
  });

  it("redacts token fields in JSON at any depth, keeps endpoints and errors", () => {
    const json = JSON.stringify({
      access_token: SECRETS[1],
      refresh_token: SECRETS[2],
      id_token: "eyJ.x.y",
      device_code: "dc",
      token_endpoint: "https://x/token",
      nested: [{ client_secret: SECRETS[0] }],
      error: "invalid_grant",
    });
    const out = redactBody(json, "application/json; charset=utf-8");
    for (const s of SECRETS) expect(out).not.toContain(s);
    expect(out).not.toContain("eyJ.x.y");
    expect(out).toContain('"token_endpoint":"https://x/token"');
    expect(out).toContain('"error":"invalid_grant"');
  });

  it("redacts npm's doneUrl, which hands out the token, and keeps loginUrl, which the user is shown", () => {
    const out = redactBody(
      JSON.stringify({
        loginUrl: "https://r.example/login/1",
        doneUrl: "https://r.example/-/v1/done?sessionId=s3",
      }),
      "application/json",
    );
    expect(out).toBe('{"loginUrl":"https://r.example/login/1","doneUrl":"[REDACTED]"}');
  });

  it("shows other bodies only by length", () => {
    expect(redactBody(`opaque ${SECRETS[1]}`, "text/plain")).toBe("(26 characters)");
  });
});

describe("tracedFetch", () => {
  it("-v prints request and status lines; -vv headers and bodies, all redacted", async () => {
    const answer = (): Response =>
      new Response(JSON.stringify({ access_token: SECRETS[1], token_type: "Bearer" }), {
        status: 200,
        headers: { "content-type": "application/json", "set-cookie": "sid=abc123secret" },
      });
    const ctx = createTestContext({ fetch: () => Promise.resolve(answer()) });
    const init = {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`svc:${SECRETS[0]}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ grant_type: "client_credentials", client_secret: SECRETS[0]! }),
    };
    await tracedFetch(ctx, 0)("https://idp.example/token", init);
    expect(ctx.stderr.text()).toBe("");
    await tracedFetch(ctx, 1)("https://idp.example/token?code=abc", init);
    expect(ctx.stderr.text()).toContain("> POST https://idp.example/token?code=[REDACTED]");
    expect(ctx.stderr.text()).toContain("< 200");
    const vv = createTestContext({ fetch: () => Promise.resolve(answer()) });
    const response = await tracedFetch(vv, 2)("https://idp.example/token", init);
    const text = vv.stderr.text();
    expect(text).toContain("> authorization: Basic [REDACTED]");
    expect(text).toContain("grant_type=client_credentials");
    expect(text).toContain("< set-cookie: [REDACTED]");
    expect(text).toContain('"access_token":"[REDACTED]"');
    for (const s of [...SECRETS, "abc123secret", Buffer.from(`svc:${SECRETS[0]}`).toString("base64")])
      expect(text).not.toContain(s);
    // The caller still gets the whole body.
    expect(((await response.json()) as { access_token: string }).access_token).toBe(SECRETS[1]);
  });
});

describe("tracedFetch redaction of credential headers and secret URLs", () => {
  it("-vv hides npm-otp, PRIVATE-TOKEN and API-key headers; a secret URL shows only its origin", async () => {
    const ctx = createTestContext({ fetch: () => Promise.resolve(new Response("{}", { status: 202 })) });
    await tracedFetch(ctx, 2)("https://registry.example/-/user/org.couchdb.user:alice", {
      method: "PUT",
      headers: { "npm-otp": "123456", "private-token": SECRETS[1]!, "x-api-key": SECRETS[0]! },
    });
    await tracedFetch(ctx, 1, { secretUrl: true })(
      `https://registry.example/-/v1/done?sessionId=s3cr3t-session`,
      {},
    );
    const text = ctx.stderr.text();
    expect(text).toContain("> npm-otp: [REDACTED]");
    expect(text).toContain("> private-token: [REDACTED]");
    expect(text).toContain("> x-api-key: [REDACTED]");
    expect(text).toContain("> GET https://registry.example/[REDACTED]");
    for (const s of ["123456", SECRETS[0]!, SECRETS[1]!, "s3cr3t-session", "/-/v1/done"])
      expect(text).not.toContain(s);
  });
});

/** A fetch that answers from `answers` in turn and records what it was sent. */
function scripted(answers: (() => Response | Promise<Response>)[]) {
  const sent: { init: RequestInit; headers: Headers }[] = [];
  const fetch: typeof globalThis.fetch = (_input, init = {}) => {
    sent.push({ init, headers: new Headers(init.headers) });
    const next = answers.shift();
    if (next === undefined) throw new Error("no more answers");
    return Promise.resolve(next());
  };
  return { fetch, sent };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("request", () => {
  it("sends the bearer token, never follows a redirect, and hands back a 401 when nothing can renew it", async () => {
    const { fetch, sent } = scripted([() => new Response("no", { status: 401 })]);
    const ctx = createTestContext({ fetch });
    const response = await request(ctx, { url: "https://api.example/x", bearer: { token: "t1" } });
    expect(response.status).toBe(401);
    expect(await response.text()).toBe("no");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers.get("authorization")).toBe("Bearer t1");
    expect(sent[0]!.init.redirect).toBe("manual");
    expect(sent[0]!.init.method).toBe("GET");
  });

  it("renews once after a 401, with fresh per-attempt headers, and gives the retry's answer", async () => {
    const { fetch, sent } = scripted([
      () => new Response("expired", { status: 401 }),
      () => new Response("ok", { status: 200 }),
    ]);
    const ctx = createTestContext({ fetch });
    let n = 0;
    const renewed: string[] = [];
    const response = await request(ctx, {
      url: "https://api.example/x",
      method: "POST",
      body: new TextEncoder().encode("payload"),
      headers: () => ({ "x-attempt": String(++n) }),
      bearer: {
        token: "old",
        refresh: {
          renew: (rejected) => {
            renewed.push(rejected);
            return Promise.resolve("new");
          },
          rejectedAgain: () => new Error("unexpected"),
        },
      },
    });
    expect(await response.text()).toBe("ok");
    expect(renewed).toEqual(["old"]);
    expect(sent.map((s) => [s.headers.get("authorization"), s.headers.get("x-attempt")])).toEqual([
      ["Bearer old", "1"],
      ["Bearer new", "2"],
    ]);
    // The body is sent again whole on the retry.
    expect(sent.map((s) => new TextDecoder().decode(s.init.body as Uint8Array))).toEqual([
      "payload",
      "payload",
    ]);
  });

  it("throws rejectedAgain's error on a second 401, and sends nothing more", async () => {
    const { fetch, sent } = scripted([
      () => new Response("", { status: 401 }),
      () => new Response("", { status: 401 }),
    ]);
    const ctx = createTestContext({ fetch });
    const refused = new Error("refused twice");
    const error = await rejection(
      request(ctx, {
        url: "https://api.example/x",
        bearer: {
          token: "a",
          refresh: { renew: () => Promise.resolve("b"), rejectedAgain: () => refused },
        },
      }),
    );
    expect(error).toBe(refused);
    expect(sent).toHaveLength(2);
  });

  it("hands a 401 back unrenewed when retry says no, and lets retry refuse outright", async () => {
    const renew = (): Promise<string> => Promise.reject(new Error("must not renew"));
    const no = scripted([() => new Response("", { status: 401 })]);
    const kept = await request(createTestContext({ fetch: no.fetch }), {
      url: "https://api.example/x",
      bearer: { token: "a", refresh: { retry: () => false, renew, rejectedAgain: () => new Error("x") } },
    });
    expect(kept.status).toBe(401);
    const stop = new Error("step-up");
    const blocked = scripted([() => new Response("", { status: 401 })]);
    const error = await rejection(
      request(createTestContext({ fetch: blocked.fetch }), {
        url: "https://api.example/x",
        bearer: {
          token: "a",
          refresh: {
            retry: () => {
              throw stop;
            },
            renew,
            rejectedAgain: () => new Error("x"),
          },
        },
      }),
    );
    expect(error).toBe(stop);
    expect(blocked.sent).toHaveLength(1);
  });

  it("verifies a 2xx body against the attempt that asked for it before returning it, and skips other statuses", async () => {
    const { fetch } = scripted([
      () => new Response("", { status: 401 }),
      () => new Response("signed body", { status: 200, headers: { "x-sig": "ok" } }),
      () => new Response("error body", { status: 500 }),
    ]);
    const ctx = createTestContext({ fetch });
    const seen: { body: string; token?: string; id: string | null }[] = [];
    let id = 0;
    const options = {
      url: "https://api.example/x",
      headers: () => ({ "x-request-id": `r${++id}` }),
      bearer: {
        token: "a",
        refresh: { renew: () => Promise.resolve("b"), rejectedAgain: () => new Error("x") },
      },
      verify: (response: Response, body: Uint8Array, attempt: Attempt) => {
        expect(response.bodyUsed).toBe(true);
        seen.push({
          body: new TextDecoder().decode(body),
          ...(attempt.token === undefined ? {} : { token: attempt.token }),
          id: attempt.headers.get("x-request-id"),
        });
      },
    };
    const ok = await request(ctx, options);
    expect(seen).toEqual([{ body: "signed body", token: "b", id: "r2" }]);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-sig")).toBe("ok");
    expect(await ok.text()).toBe("signed body");
    const failed = await request(ctx, { ...options, bearer: { token: "c" } });
    expect(failed.status).toBe(500);
    expect(await failed.text()).toBe("error body");
    expect(seen).toHaveLength(1);
  });

  it("a verify that throws rejects the answer", async () => {
    const { fetch } = scripted([() => new Response("tampered", { status: 200 })]);
    const bad = new Error("bad signature");
    const error = await rejection(
      request(createTestContext({ fetch }), {
        url: "https://api.example/x",
        verify: () => {
          throw bad;
        },
      }),
    );
    expect(error).toBe(bad);
  });

  it("maps a failure to reach the host with `unreachable`, says whether it timed out, and passes other errors", async () => {
    const refused = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    });
    const timedOut = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    const bug = new RangeError("a bug, not the network");
    const calls: boolean[] = [];
    const unreachable = (cause: unknown, late: boolean): LatchkeyError => {
      calls.push(late);
      return new LatchkeyError("LK_SERVER_UNREACHABLE", { cause });
    };
    for (const thrown of [refused, timedOut]) {
      const ctx = createTestContext({ fetch: () => Promise.reject(thrown) });
      const error = await rejection(
        request(ctx, { url: "https://api.example/x", unreachable, timeoutMs: 1000 }),
      );
      expect(error).toBeInstanceOf(LatchkeyError);
      expect((error as LatchkeyError).code).toBe("LK_SERVER_UNREACHABLE");
      expect((error as LatchkeyError).cause).toBe(thrown);
    }
    expect(calls).toEqual([false, true]);
    const ctx = createTestContext({ fetch: () => Promise.reject(bug) });
    expect(await rejection(request(ctx, { url: "https://api.example/x", unreachable }))).toBe(bug);
    // Without a mapping the network error is thrown as fetch threw it.
    const raw = createTestContext({ fetch: () => Promise.reject(refused) });
    expect(await rejection(request(raw, { url: "https://api.example/x" }))).toBe(refused);
  });

  it("gives each attempt the timeout, combined with the caller's signal", async () => {
    const { fetch, sent } = scripted([() => new Response(null, { status: 204 })]);
    const caller = new AbortController();
    const response = await request(createTestContext({ fetch }), {
      url: "https://api.example/x",
      timeoutMs: 60_000,
      signal: caller.signal,
      // A verified answer without a body comes back as one.
      verify: () => undefined,
    });
    expect(response.status).toBe(204);
    const signal = sent[0]!.init.signal!;
    expect(signal.aborted).toBe(false);
    caller.abort();
    expect(signal.aborted).toBe(true);
  });

  it("traces each attempt at -v, the token redacted at -vv", async () => {
    const { fetch } = scripted([
      () => new Response("", { status: 401 }),
      () => new Response("{}", { status: 200, headers: { "content-type": "application/json" } }),
    ]);
    const ctx = createTestContext({ fetch });
    await request(ctx, {
      url: "https://api.example/x",
      verbose: 2,
      bearer: {
        token: SECRETS[1]!,
        refresh: { renew: () => Promise.resolve(SECRETS[2]!), rejectedAgain: () => new Error("x") },
      },
    });
    const text = ctx.stderr.text();
    expect(text.match(/^> GET https:\/\/api\.example\/x$/gm)).toHaveLength(2);
    expect(text).toContain("< 401 (GET https://api.example/x)");
    expect(text).toContain("< 200 (GET https://api.example/x)");
    expect(text.match(/^> authorization: Bearer \[REDACTED\]$/gm)).toHaveLength(2);
    for (const s of SECRETS) expect(text).not.toContain(s);
  });
});
