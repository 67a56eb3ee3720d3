// mintStepUpProof against a fetch that answers as the server's step-up routes do (signed 2xx, unsigned errors),
// with the terminal's prompts scripted: which answers lead where, how many times a person may retype, and that
// neither the password, the TOTP code nor the proof reaches the -vv trace.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI_CLIENT_ID,
  LatchkeyError,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  STEP_UP_HEADER,
  meResponseSchema,
} from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { callApi } from "./api.js";
import { serverAccount, type ServerSession } from "./session.js";
import { signResponse } from "./signature.js";
import { STEP_UP_ATTEMPTS, mintStepUpProof } from "./step-up.js";

const SERVER = "https://lk.step-up.example";
const PASSWORD = "correct horse battery staple 7f3a";
const TOTP = "492817";
const PROOF = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ2YXVsdDpwYWlyIn0.c2lnbmF0dXJlLW9mLXRoZS1wcm9vZi05YzJl";
const EXPIRES = "2030-01-01T00:05:00.000Z";
const NOW = Date.parse("2030-01-01T00:00:00.000Z");

interface Seen {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

/** What the fake server answers: a body to sign and send with 200, or an unsigned error. */
type Answer =
  { status: 200; body: unknown } | { status: number; code: string; headers?: Record<string, string> };

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-step-up-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * A machine signed in to SERVER whose fetch answers each request with `route(seen)`; `typed` is what the person
 * types at the prompts, in order.
 */
function machine(
  route: (seen: Seen) => Answer,
  typed: string[] = [],
  tty: { stdin?: boolean; stderr?: boolean } = {},
) {
  const env = { LATCHKEY_HOME: join(root, `m${++n}`), LATCHKEY_SERVER: SERVER };
  const session: ServerSession = {
    access_token: "at-1",
    refresh_token: "rt-1",
    expires_at: NOW / 1000 + 900,
    subject: "user-1",
    issuer: `${SERVER}/oidc`,
    client_id: CLI_CLIENT_ID,
  };
  const keystore = createMemoryKeystore({ [serverAccount(SERVER)]: JSON.stringify(session) });
  const seen: Seen[] = [];
  const asked: string[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const entry: Seen = {
      method: request.method,
      path: url.pathname,
      headers: request.headers,
      body: await request.text(),
    };
    seen.push(entry);
    const answer = route(entry);
    if (answer.status !== 200 || !("body" in answer)) {
      const error = answer as { status: number; code: string; headers?: Record<string, string> };
      return new Response(JSON.stringify({ error: "Refused", code: error.code, message: "refused" }), {
        status: error.status,
        headers: { "content-type": "application/json", ...error.headers },
      });
    }
    const bytes = Buffer.from(JSON.stringify(answer.body));
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
    const signature = signResponse(
      token,
      { method: request.method, path: `${url.pathname}${url.search}`, requestId, status: 200 },
      bytes,
    );
    return new Response(bytes, {
      status: 200,
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
    });
  };
  const answers = [...typed];
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    fetch,
    clock: { now: () => NOW, sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
    stdin: { isTTY: tty.stdin ?? true, readAll: () => Promise.reject(new Error("stdin is a terminal")) },
    stderrTTY: tty.stderr ?? true,
    prompts: {
      secret: (message) => {
        asked.push(message);
        const next = answers.shift();
        return next === undefined ? Promise.reject(new LatchkeyError("LK_CANCELLED")) : Promise.resolve(next);
      },
      confirm: () => Promise.reject(new Error("no confirmation expected")),
    },
  });
  return { ctx, seen, asked };
}

/** The step-up routes of an account with `method`, whose factors are PASSWORD (and TOTP). */
function stepUpServer(method: "password" | "password+totp") {
  return (seen: Seen): Answer => {
    if (seen.path === "/api/v1/step-up/method") return { status: 200, body: { method } };
    if (seen.path === "/api/v1/step-up") {
      const body = JSON.parse(seen.body) as { scope: string; password: string; totp?: string };
      const right = body.password === PASSWORD && (method === "password" || body.totp === TOTP);
      return right
        ? { status: 200, body: { proof: PROOF, scope: body.scope, expiresAt: EXPIRES } }
        : { status: 403, code: "LK_STEP_UP_FAILED" };
    }
    return { status: 404, code: "LK_SERVER_ERROR" };
  };
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

describe("mintStepUpProof", () => {
  it("asks the method, prompts for the password, posts it for the scope, and returns the proof", async () => {
    const { ctx, seen, asked } = machine(stepUpServer("password"), [PASSWORD]);
    const proof = await mintStepUpProof(ctx, "vault:pair");
    expect(proof).toEqual({ proof: PROOF, scope: "vault:pair", expiresAt: EXPIRES, server: SERVER });
    expect(asked).toEqual(["Password"]);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      "GET /api/v1/step-up/method",
      "POST /api/v1/step-up",
    ]);
    expect(JSON.parse(seen[1]!.body)).toEqual({ scope: "vault:pair", password: PASSWORD });
    expect(seen.every((s) => s.headers.get("authorization") === "Bearer at-1")).toBe(true);
    expect(ctx.stderr.text()).toContain("To pair a new device with your account, confirm it is you");
  });

  it("with TOTP enrolled, asks for both factors and sends the code without spaces", async () => {
    const { ctx, seen, asked } = machine(stepUpServer("password+totp"), [PASSWORD, "492 817"]);
    expect((await mintStepUpProof(ctx, "vault:pair")).proof).toBe(PROOF);
    expect(asked).toEqual(["Password", "TOTP code (6 digits)"]);
    expect(JSON.parse(seen[1]!.body)).toEqual({ scope: "vault:pair", password: PASSWORD, totp: TOTP });
  });

  it("says a wrong password and asks again; the right one on the last attempt succeeds", async () => {
    const { ctx, seen } = machine(stepUpServer("password"), ["wrong 1", "wrong 2", PASSWORD]);
    expect((await mintStepUpProof(ctx, "vault:pair")).proof).toBe(PROOF);
    expect(seen.filter((s) => s.path === "/api/v1/step-up")).toHaveLength(3);
    expect(ctx.stderr.text()).toContain("The password is wrong. Try again (1 of 3 attempts used).");
    expect(ctx.stderr.text()).toContain("The password is wrong. Try again (2 of 3 attempts used).");
  });

  it(`gives up with LK_STEP_UP_FAILED after ${STEP_UP_ATTEMPTS} wrong attempts`, async () => {
    const { ctx, seen, asked } = machine(stepUpServer("password+totp"), [
      PASSWORD,
      "000000",
      "wrong",
      TOTP,
      PASSWORD,
      "111111",
      PASSWORD,
      TOTP,
    ]);
    const error = await rejection(mintStepUpProof(ctx, "vault:pair"));
    expect(error.code).toBe("LK_STEP_UP_FAILED");
    expect(error.message).toContain("3 of 3 attempts used; giving up");
    expect(asked).toHaveLength(6);
    expect(seen.filter((s) => s.path === "/api/v1/step-up")).toHaveLength(3);
  });

  it("refuses a code that is not 6 digits at the prompt, without spending a server attempt on it", async () => {
    const { ctx, seen } = machine(stepUpServer("password+totp"), [PASSWORD, "12345", PASSWORD, TOTP]);
    expect((await mintStepUpProof(ctx, "vault:pair")).proof).toBe(PROOF);
    expect(seen.filter((s) => s.path === "/api/v1/step-up")).toHaveLength(1);
    expect(ctx.stderr.text()).toContain("The TOTP code must be 6 digits. Try again (1 of 3 attempts used).");
  });

  it("unavailable: LK_STEP_UP_UNAVAILABLE with the server's reason and hint, without prompting", async () => {
    const { ctx, seen } = machine(() => ({
      status: 200,
      body: {
        method: "unavailable",
        reason: "your account signs in through SSO only and has no password",
        hint: "Ask an administrator to run `latchkey-server admin set-password`.",
      },
    }));
    const error = await rejection(mintStepUpProof(ctx, "vault:pair"));
    expect(error.code).toBe("LK_STEP_UP_UNAVAILABLE");
    expect(error.message).toContain("your account signs in through SSO only and has no password");
    expect(error.hint).toBe("Ask an administrator to run `latchkey-server admin set-password`.");
    expect(seen).toHaveLength(1);
  });

  it.each([
    ["stdin", { stdin: false }],
    ["stderr", { stderr: false }],
  ])("without a terminal on %s: LK_NOT_INTERACTIVE, nothing prompted or posted", async (_which, tty) => {
    const { ctx, seen, asked } = machine(stepUpServer("password"), [PASSWORD], tty);
    const error = await rejection(mintStepUpProof(ctx, "vault:pair"));
    expect(error.code).toBe("LK_NOT_INTERACTIVE");
    expect(error.hint).toContain("A script cannot confirm it is you, by design");
    expect(error.hint).toContain("no --yes");
    expect(asked).toEqual([]);
    expect(seen.map((s) => s.path)).toEqual(["/api/v1/step-up/method"]);
  });

  it("429: LK_RATE_LIMITED at once, naming the server's Retry-After", async () => {
    const { ctx, seen } = machine(
      (s) =>
        s.path === "/api/v1/step-up/method"
          ? { status: 200, body: { method: "password" } }
          : { status: 429, code: "LK_RATE_LIMITED", headers: { "retry-after": "120" } },
      [PASSWORD, PASSWORD],
    );
    const error = await rejection(mintStepUpProof(ctx, "vault:pair"));
    expect(error.code).toBe("LK_RATE_LIMITED");
    expect(error.message).toContain("in 120 seconds");
    expect(error.details).toMatchObject({ retryAfterSeconds: 120 });
    expect(seen.filter((s) => s.path === "/api/v1/step-up")).toHaveLength(1);
  });

  it("429 with an HTTP date as Retry-After counts the seconds from the clock", async () => {
    const { ctx } = machine(
      (s) =>
        s.path === "/api/v1/step-up/method"
          ? { status: 200, body: { method: "password" } }
          : {
              status: 429,
              code: "LK_RATE_LIMITED",
              headers: { "retry-after": "Tue, 01 Jan 2030 00:01:30 GMT" },
            },
      [PASSWORD],
    );
    expect((await rejection(mintStepUpProof(ctx, "vault:pair"))).message).toContain("in 90 seconds");
  });

  it("Ctrl-C at the prompt is LK_CANCELLED and nothing is posted", async () => {
    const { ctx, seen } = machine(stepUpServer("password"), []);
    expect((await rejection(mintStepUpProof(ctx, "vault:pair"))).code).toBe("LK_CANCELLED");
    expect(seen.map((s) => s.path)).toEqual(["/api/v1/step-up/method"]);
  });

  it("a proof for another scope is not used", async () => {
    const { ctx } = machine(
      (s) =>
        s.path === "/api/v1/step-up/method"
          ? { status: 200, body: { method: "password" } }
          : { status: 200, body: { proof: PROOF, scope: "org:member:remove", expiresAt: EXPIRES } },
      [PASSWORD],
    );
    const error = await rejection(mintStepUpProof(ctx, "vault:pair"));
    expect(error.code).toBe("LK_SERVER_ERROR");
    expect(error.message).toContain("with a proof for org:member:remove");
  });

  it("-vv traces both requests but never the password, the TOTP code or the proof", async () => {
    const { ctx } = machine(stepUpServer("password+totp"), ["wrong password 5d1c", "000000", PASSWORD, TOTP]);
    expect((await mintStepUpProof(ctx, "vault:pair", { verbose: 2 })).proof).toBe(PROOF);
    const trace = ctx.stderr.text();
    expect(trace).toContain(`> POST ${SERVER}/api/v1/step-up`);
    expect(trace).toContain('"scope":"vault:pair"');
    expect(trace).toContain('"password":"[REDACTED]"');
    expect(trace).toContain('"totp":"[REDACTED]"');
    expect(trace).toContain('"proof":"[REDACTED]"');
    for (const secret of [PASSWORD, "wrong password 5d1c", TOTP, "000000", PROOF, PROOF.split(".")[2]!])
      expect(trace).not.toContain(secret);
  });
});

describe("callApi with a step-up proof", () => {
  it("sends it in X-Latchkey-Step-Up on that call only, and -vv shows the header redacted", async () => {
    const { ctx, seen } = machine(() => ({
      status: 200,
      body: { userId: "user-1", email: "a@example.test", clientId: CLI_CLIENT_ID, expiresAt: EXPIRES },
    }));
    await callApi(
      ctx,
      { method: "GET", path: "/me", answer: meResponseSchema, stepUpProof: PROOF },
      { verbose: 2 },
    );
    await callApi(ctx, { method: "GET", path: "/me", answer: meResponseSchema });
    expect(seen.map((s) => s.headers.get(STEP_UP_HEADER))).toEqual([PROOF, null]);
    expect(ctx.stderr.text()).toContain(`> ${STEP_UP_HEADER}: [REDACTED]`);
    expect(ctx.stderr.text()).not.toContain(PROOF.split(".")[2]!);
  });

  it.each(["LK_STEP_UP_REQUIRED", "LK_STEP_UP_FAILED", "LK_STEP_UP_UNAVAILABLE"])(
    "a 403 naming %s is that error; any other 403 stays LK_FORBIDDEN",
    async (code) => {
      const { ctx } = machine(() => ({ status: 403, code }));
      const call = { method: "POST" as const, path: "/pairings", body: {}, answer: meResponseSchema };
      expect((await rejection(callApi(ctx, call))).code).toBe(code);
      const other = machine(() => ({ status: 403, code: "LK_VAULT_ROLLBACK" }));
      expect((await rejection(callApi(other.ctx, call))).code).toBe("LK_FORBIDDEN");
    },
  );

  it("a 409 naming LK_PAIRING_FAILED is that error, not a vault conflict", async () => {
    const { ctx } = machine(() => ({ status: 409, code: "LK_PAIRING_FAILED" }));
    const error = await rejection(
      callApi(ctx, { method: "POST", path: "/pairings/x/approve", body: {}, answer: meResponseSchema }),
    );
    expect(error.code).toBe("LK_PAIRING_FAILED");
  });
});
