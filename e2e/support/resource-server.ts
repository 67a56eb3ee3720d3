// A small OAuth resource server on loopback for the `auth fetch` retry matrix. It validates bearer tokens the way
// an API behind oidc-provider would: by token introspection (RFC 7662) at the provider, answering RFC 6750
// challenges: 401 error="invalid_token" for an inactive token, 403 error="insufficient_scope" when the token lacks
// the path's scope. `reject` forces answers (a 401 for every request, or a step-up challenge) for the cases a
// well-behaved provider cannot produce on demand. Every request is recorded with the token it carried.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the resource server received. */
export interface ResourceRequest {
  readonly method: string;
  readonly path: string;
  /** The bearer token sent, or null. */
  readonly token: string | null;
  readonly body: string;
  /** The status answered. */
  readonly status: number;
}

/** Options for startResourceServer. */
export interface ResourceServerOptions {
  /** The provider's introspection endpoint, and a client allowed to call it. */
  readonly introspectionEndpoint: string;
  readonly client: { readonly id: string; readonly secret: string };
  /** Scope required per path prefix, e.g. { "/admin": "api:write" }. */
  readonly requiredScopes?: Readonly<Record<string, string>>;
}

/** A forced answer for every request until cleared. */
export type ForcedAnswer = { status: number; wwwAuthenticate?: string } | null;

/** A running resource server. */
export interface ResourceServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  requests(): readonly ResourceRequest[];
  /** Forces every answer (e.g. 401 on every request) until called with null. */
  force(answer: ForcedAnswer): void;
  stop(): Promise<void>;
}

/** Starts the resource server on 127.0.0.1, any free port. */
export async function startResourceServer(options: ResourceServerOptions): Promise<ResourceServer> {
  const log: ResourceRequest[] = [];
  let forced: ForcedAnswer = null;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(options.client.id)}:${encodeURIComponent(options.client.secret)}`).toString("base64")}`;

  const introspect = async (token: string): Promise<{ active: boolean; scope?: string }> => {
    const response = await fetch(options.introspectionEndpoint, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }).toString(),
    });
    if (!response.ok) throw new Error(`introspection answered ${response.status}`);
    return (await response.json()) as { active: boolean; scope?: string };
  };

  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      void (async () => {
        const path = new URL(req.url ?? "/", "http://x").pathname;
        const header = req.headers.authorization ?? "";
        const token = /^Bearer (.+)$/i.exec(header)?.[1] ?? null;
        const answer = (status: number, payload: unknown, challenge?: string): void => {
          log.push({ method: req.method ?? "GET", path, token, body, status });
          res.writeHead(status, {
            "content-type": "application/json",
            ...(challenge !== undefined ? { "www-authenticate": challenge } : {}),
          });
          res.end(JSON.stringify(payload));
        };
        if (forced !== null) return answer(forced.status, { error: "forced" }, forced.wwwAuthenticate);
        if (token === null) return answer(401, { error: "no token" }, 'Bearer realm="test"');
        const info = await introspect(token);
        if (!info.active) {
          return answer(
            401,
            { error: "invalid_token" },
            'Bearer realm="test", error="invalid_token", error_description="token is not active"',
          );
        }
        const granted = new Set((info.scope ?? "").split(" "));
        for (const [prefix, scope] of Object.entries(options.requiredScopes ?? {})) {
          if (path.startsWith(prefix) && !granted.has(scope)) {
            return answer(
              403,
              { error: "insufficient_scope" },
              `Bearer realm="test", error="insufficient_scope", scope="${scope}"`,
            );
          }
        }
        return answer(200, { ok: true, method: req.method, path, body });
      })().catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => [...log],
    force(answer) {
      forced = answer;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}
