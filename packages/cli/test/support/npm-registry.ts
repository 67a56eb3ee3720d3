// A loopback npm registry for the registry client and the login/whoami/logout/token flows: the authentication
// endpoints as npm's registry serves them (npm/registry docs, npm-profile), nothing else.
// - GET  /-/whoami                          bearer token → 200 {"username"} | 401
// - POST /-/v1/login                        → 200 {"loginUrl", "doneUrl"} (or 404 when web login is off)
// - GET  /-/v1/login/browser/<id>           the page a browser opens: visiting it completes the login
// - GET  /-/v1/done?authId=<id>             → 202 + Retry-After until the browser side is done, then 200 {"token"}
// - PUT  /-/user/org.couchdb.user:<name>    CouchDB user document → 201 {"ok", "token"}; 401 + WWW-Authenticate:
//                                           OTP when the user has two-factor auth and no npm-otp header came;
//                                           401 on a wrong password; 400 for an unknown user
// The registry may live under a path (GitLab-style /api/v4/packages/npm/). Every request is recorded with its
// authorization header, so tests can assert which token went where.
//
// Imported by vitest suites only (unit and e2e): node: builtins only.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the registry received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly otp: string | undefined;
  readonly body: string;
}

/** A registry user. */
export interface RegistryUser {
  readonly password: string;
  /** When set, logins must carry this one-time password in `npm-otp`. */
  readonly otp?: string;
}

/** Options of the loopback registry. */
export interface NpmRegistryOptions {
  /** The path the registry lives under (default "/"), e.g. "/api/v4/packages/npm/". */
  readonly prefix?: string;
  readonly users?: Record<string, RegistryUser>;
  /** Tokens the registry already accepts, token → user name. */
  readonly tokens?: Record<string, string>;
  /** Offer npm's web login (default true). */
  readonly webLogin?: boolean;
  /** The user a completed web login belongs to (default "web-user"). */
  readonly webUser?: string;
  /** The Retry-After value sent with each 202 from doneUrl (default "1"). */
  readonly retryAfter?: string;
  /** Serve /-/whoami (default true); off, it answers 404 like GitLab's npm API. */
  readonly whoami?: boolean;
}

/** A running loopback registry. */
export interface NpmRegistry {
  /** The registry URL, ending in "/". */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Tokens the registry accepts now, token → user name (tests may add or revoke). */
  readonly tokens: Map<string, string>;
  /** Tokens this registry issued through a login, in order. */
  readonly issued: string[];
  close(): Promise<void>;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/html" : "application/json",
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
}

/** Starts the registry on 127.0.0.1 and an ephemeral port. */
export async function startNpmRegistry(options: NpmRegistryOptions = {}): Promise<NpmRegistry> {
  const prefix = options.prefix ?? "/";
  const users = new Map(Object.entries(options.users ?? {}));
  const tokens = new Map(Object.entries(options.tokens ?? {}));
  const issued: string[] = [];
  const requests: RecordedRequest[] = [];
  const sessions = new Map<string, { done: boolean }>();
  let base = "";

  const issue = (user: string): string => {
    const token = `npm_${randomBytes(18).toString("base64url")}`;
    tokens.set(token, user);
    issued.push(token);
    return token;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = new URL(req.url ?? "/", base);
      requests.push({
        method: req.method ?? "",
        path: url.pathname + url.search,
        authorization: req.headers.authorization,
        otp: typeof req.headers["npm-otp"] === "string" ? req.headers["npm-otp"] : undefined,
        body,
      });
      if (!url.pathname.startsWith(prefix)) return send(res, 404, { error: "not found" });
      const path = url.pathname.slice(prefix.length - 1);

      if (req.method === "GET" && path === "/-/whoami") {
        if (options.whoami === false) return send(res, 404, { error: "not found" });
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
        const user = bearer === undefined ? undefined : tokens.get(bearer);
        if (user === undefined) return send(res, 401, { error: "unauthorized" });
        return send(res, 200, { username: user });
      }

      if (req.method === "POST" && path === "/-/v1/login") {
        if (options.webLogin === false) return send(res, 404, { error: "web login is not supported" });
        const id = randomBytes(12).toString("hex");
        sessions.set(id, { done: false });
        return send(res, 200, {
          loginUrl: `${base}${prefix.slice(1)}-/v1/login/browser/${id}`,
          doneUrl: `${base}${prefix.slice(1)}-/v1/done?authId=${id}`,
        });
      }

      const browser = /^\/-\/v1\/login\/browser\/([0-9a-f]+)$/.exec(path);
      if (req.method === "GET" && browser !== null) {
        const session = sessions.get(browser[1]!);
        if (session === undefined) return send(res, 404, "<p>No such login.</p>");
        session.done = true;
        return send(res, 200, "<p>Logged in. You may close this page.</p>");
      }

      if (req.method === "GET" && path === "/-/v1/done") {
        const id = url.searchParams.get("authId") ?? "";
        const session = sessions.get(id);
        if (session === undefined) return send(res, 404, { error: "no such login" });
        if (!session.done) return send(res, 202, {}, { "retry-after": options.retryAfter ?? "1" });
        sessions.delete(id);
        return send(res, 200, { token: issue(options.webUser ?? "web-user") });
      }

      const couch = /^\/-\/user\/org\.couchdb\.user:([^/]+)$/.exec(path);
      if (req.method === "PUT" && couch !== null) {
        const name = decodeURIComponent(couch[1]!);
        let doc: { name?: unknown; password?: unknown };
        try {
          doc = JSON.parse(body) as typeof doc;
        } catch {
          return send(res, 400, { error: "invalid JSON" });
        }
        if (doc.name !== name || typeof doc.password !== "string") {
          return send(res, 400, { error: "the document does not match the user" });
        }
        const user = users.get(name);
        if (user === undefined) return send(res, 400, { error: `no user named ${name}` });
        if (user.password !== doc.password)
          return send(res, 401, { error: "bad username/password, access denied" });
        if (user.otp !== undefined && req.headers["npm-otp"] !== user.otp) {
          return send(res, 401, { error: "one-time pass required" }, { "www-authenticate": "OTP" });
        }
        return send(res, 201, { ok: `you are authenticated as '${name}'`, token: issue(name) });
      }

      return send(res, 404, { error: "not found" });
    })().catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}/`;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    requests,
    tokens,
    issued,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
