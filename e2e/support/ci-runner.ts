// A double of GitHub Actions' ID token endpoint on loopback, for the suites and the bench that run the built CLI as
// a CI job (docs/ci.md "In the workflow"). It answers only the request a runner answers for a job with
// `permissions: id-token: write` — GET, the request token as bearer, `api-version=2.0` and a non-empty `audience` in
// the query, as @actions/core's getIDToken sends it — with `{count, value}`, a fresh token of the loopback issuer
// (packages/server/test/support/ci-issuer.ts) for that audience; anything else is a 400. It records every request.
//
// Only types are imported: the bench loads this file with plain Node (type stripping), which resolves imports as
// written.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CiIssuer } from "../../packages/server/test/support/ci-issuer.js";

/** GitHub Actions' ID token endpoint, as a runner serves it to a job with `permissions: id-token: write`. */
export interface CiRunner {
  /** ACTIONS_ID_TOKEN_REQUEST_URL. */
  readonly url: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN. */
  readonly requestToken: string;
  /** The claims of the next tokens, over the issuer's GitHub defaults. */
  claims: Record<string, unknown>;
  readonly requests: { method: string; authorization: string | undefined; audience: string | null }[];
  /** The variables a runner sets for such a job (GITHUB_ACTIONS, CI and the two above). */
  jobEnv(): Record<string, string>;
  close(): Promise<void>;
}

/** Starts the endpoint on 127.0.0.1 and a free port; its tokens are `issuer`'s. */
export async function startCiRunner(issuer: Pick<CiIssuer, "mint">): Promise<CiRunner> {
  const requestToken = randomBytes(24).toString("base64url");
  const requests: CiRunner["requests"] = [];
  const state = { claims: {} as Record<string, unknown> };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://runner");
    const audience = url.searchParams.get("audience");
    requests.push({ method: req.method ?? "", authorization: req.headers.authorization, audience });
    if (
      req.method !== "GET" ||
      req.headers.authorization !== `Bearer ${requestToken}` ||
      url.searchParams.get("api-version") !== "2.0" ||
      audience === null ||
      audience === ""
    ) {
      res.writeHead(400).end();
      return;
    }
    issuer.mint({ aud: audience, ...state.claims }).then(
      (token) => {
        const body = JSON.stringify({ count: 1, value: token });
        res.writeHead(200, { "content-type": "application/json" }).end(body);
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/_apis/distributedtask/hubs/Actions/plans/p/jobs/j/idtoken?api-version=2.0`;
  return {
    url,
    requestToken,
    get claims() {
      return state.claims;
    },
    set claims(value) {
      state.claims = value;
    },
    requests,
    jobEnv: () => ({
      CI: "true",
      GITHUB_ACTIONS: "true",
      ACTIONS_ID_TOKEN_REQUEST_URL: url,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
    }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
