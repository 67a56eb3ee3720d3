// A CI job's world in one fetch, for the in-process tests of `env pull --oidc` and `run --oidc`: GitHub Actions'
// ID token endpoint as the runner serves it (GET only, the request token as bearer, `audience` in the query beside
// the runner's own `api-version`, answering `{"count":…,"value":TOKEN}`) and the two CI routes of the Latchkey
// server (packages/server/src/ci/job-routes.ts): the exchange takes a body core's schema accepts and answers signed
// keyed by the ID token; the pull takes only the access token the exchange handed out, as bearer, and answers signed
// keyed by it. Anything else is a 404, and every request is recorded.
import {
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  checkSchema,
  ciExchangeRequestSchema,
  type CiExchangeResponse,
  type CiPullResponse,
} from "@latchkey/core";
import { randomBytes } from "node:crypto";
import { signResponse } from "../../src/server/signature.js";

export const SERVER = "https://lk.ci.example";
export const RUNNER_URL = "https://runner.ci.example/_apis/idtoken?api-version=2.0";
export const VAULT = "5e1d2c3b-4a59-4687-9776-a5b4c3d2e1f0";

/** A JWT-shaped token (not a real one: the fake compares it as a string). */
export function fakeJwt(): string {
  const part = (n: number) => randomBytes(n).toString("base64url");
  return `${part(24)}.${part(96)}.${part(64)}`;
}

/** One request the fake received. */
export interface SeenCiRequest {
  method: string;
  url: URL;
  authorization: string | null;
  body: string;
}

/** A refusal the test scripts: status, catalogue code and the server's message. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** The fake's state, which tests read and set. */
export interface FakeCiJob {
  readonly fetch: typeof fetch;
  readonly seen: SeenCiRequest[];
  /** The runner's request token (ACTIONS_ID_TOKEN_REQUEST_TOKEN). */
  readonly requestToken: string;
  /** The ID tokens the runner handed out, by audience asked for. */
  readonly minted: { audience: string; token: string }[];
  /** The ID token the exchange accepts besides the minted ones (a GitLab job's LATCHKEY_OIDC_TOKEN). */
  gitlabToken: string;
  /** The access tokens the exchange handed out. */
  readonly accessTokens: string[];
  /** The answer of the runner: default 200 with a fresh token; a number answers that status. */
  runner: (n: number) => number | "token";
  /** The exchange's answer; its accessToken is replaced by a fresh one. */
  exchange: Omit<CiExchangeResponse, "accessToken"> | Refusal;
  /** The pull's answer for an environment (values, defaulted); or a refusal. */
  pull: (environment: string, org: string | null) => Omit<CiPullResponse, "environment"> | Refusal;
  /** Sign the pull's answer with another key than the access token (a forged or swapped answer). */
  forgePullSignature?: boolean;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

function refusal(r: Refusal): Response {
  return new Response(json({ error: "Refused", code: r.code, message: r.message }), {
    status: r.status,
    headers: { "content-type": "application/json" },
  });
}

function signed(key: string, request: Request, url: URL, body: unknown): Response {
  const bytes = json(body);
  const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
  const signature = signResponse(
    key,
    { method: request.method, path: `${url.pathname}${url.search}`, requestId, status: 200 },
    bytes,
  );
  return new Response(bytes, {
    status: 200,
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
  });
}

const isRefusal = (value: object): value is Refusal => "code" in value && "status" in value;

/** A fresh fake: the runner answers, the exchange binds no environment, the pull holds API_KEY and DB_URL. */
export function fakeCiJob(): FakeCiJob {
  const state: FakeCiJob = {
    seen: [],
    requestToken: `runner-request-${randomBytes(12).toString("hex")}`,
    minted: [],
    gitlabToken: fakeJwt(),
    accessTokens: [],
    runner: () => "token",
    exchange: {
      tokenType: "Bearer",
      expiresAt: "2030-01-01T00:10:00.000Z",
      name: "oidc:github:acme/web:refs/heads/main",
      environments: [],
    },
    pull: (_environment, org) => ({
      vaultId: VAULT,
      org,
      version: 7,
      values: { API_KEY: "sk-ci-value-1", DB_URL: "postgres://ci:pw@db/app" },
      defaulted: [],
    }),
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      const body = request.body === null ? "" : await request.text();
      state.seen.push({
        method: request.method,
        url,
        authorization: request.headers.get("authorization"),
        body,
      });
      const runner = new URL(RUNNER_URL);
      if (url.origin === runner.origin && url.pathname === runner.pathname) {
        // What @actions/core's getIDToken sends: a GET, the request token as bearer, the audience in the query.
        if (request.method !== "GET") return new Response("method", { status: 405 });
        if (request.headers.get("authorization") !== `Bearer ${state.requestToken}`)
          return new Response("unauthorized", { status: 401 });
        const audience = url.searchParams.get("audience");
        if (url.searchParams.get("api-version") !== "2.0" || audience === null || audience === "")
          return new Response("bad request", { status: 400 });
        const answer = state.runner(state.minted.length + 1);
        if (answer !== "token") {
          state.minted.push({ audience, token: "" });
          return new Response("failed", { status: answer });
        }
        const token = fakeJwt();
        state.minted.push({ audience, token });
        return new Response(json({ count: 1, value: token }), {
          status: 200,
          headers: { "content-type": "application/json" },
        });
      }
      if (url.origin !== SERVER) return new Response("not here", { status: 404 });
      if (request.headers.get(REQUEST_ID_HEADER) === null) return new Response("no id", { status: 400 });
      if (request.method === "POST" && url.pathname === "/api/v1/ci/oidc") {
        if (request.headers.get("authorization") !== null)
          return refusal({ status: 400, code: "LK_SERVER_ERROR", message: "no bearer here" });
        const checked = checkSchema(ciExchangeRequestSchema, JSON.parse(body));
        if (!checked.ok) return refusal({ status: 400, code: "LK_SERVER_ERROR", message: checked.message });
        const { token, vaultId } = checked.value;
        const known = token === state.gitlabToken || state.minted.some((m) => m.token === token);
        if (!known || vaultId !== VAULT)
          return refusal({
            status: 401,
            code: "LK_CI_TOKEN_INVALID",
            message: "The token's signature failed.",
          });
        if (isRefusal(state.exchange)) return refusal(state.exchange);
        const accessToken = `ci-access-${randomBytes(24).toString("base64url")}`;
        state.accessTokens.push(accessToken);
        return signed(token, request, url, { ...state.exchange, accessToken });
      }
      const pull = /^\/api\/v1\/vaults\/([^/]+)\/ci-pull$/.exec(url.pathname);
      if (request.method === "GET" && pull !== null) {
        const bearer = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
        if (!state.accessTokens.includes(bearer))
          return refusal({ status: 401, code: "LK_CI_ACCESS_TOKEN_INVALID", message: "not a CI token" });
        const environment = url.searchParams.get("env") ?? "";
        const answer = state.pull(environment, url.searchParams.get("org"));
        if (isRefusal(answer)) return refusal(answer);
        return signed(state.forgePullSignature === true ? "another key" : bearer, request, url, {
          ...answer,
          environment,
        });
      }
      return new Response("not found", { status: 404 });
    },
  };
  return state;
}
