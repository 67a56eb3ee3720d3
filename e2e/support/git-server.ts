// A real git smart-HTTP server for the git helper suites: git's own `git http-backend` run as a CGI program (one
// process per request, as Apache or nginx + fcgiwrap would) behind a loopback node:http server that demands HTTP
// basic auth for every request, fetch and push alike, answering 401 with WWW-Authenticate otherwise.
//
// Every backend process is recorded with the argv and environment it was started with, so a suite can prove that
// the credential never reached a child's command line or environment. The Authorization header itself is never
// passed to the CGI: REMOTE_USER carries the user name after the server has checked the password.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/** Where git keeps its helper programs; null when git itself is missing. */
export function gitExecPath(): string | null {
  try {
    return execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}

/** Whether this machine can run the git suites: git with its http-backend. */
export function gitHttpBackendAvailable(): { ok: boolean; reason?: string } {
  const exec = gitExecPath();
  if (exec === null) return { ok: false, reason: "git is not installed (apt package git)" };
  if (!existsSync(join(exec, "git-http-backend"))) {
    return { ok: false, reason: `no git-http-backend in ${exec} (apt package git)` };
  }
  return { ok: true };
}

/** One request the server answered. */
export interface GitRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The authenticated user, when the request carried valid credentials. */
  readonly user?: string;
  /** Whether the request carried an Authorization header at all (valid or not). */
  readonly sentCredentials: boolean;
}

/** One `git http-backend` process the server started. */
export interface BackendSpawnRecord {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** A running server. */
export interface GitServer {
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** `127.0.0.1:PORT`: the `host` git sends to credential helpers. */
  readonly host: string;
  readonly requests: GitRequestRecord[];
  readonly spawns: BackendSpawnRecord[];
  /** The backends' stderr, for failure messages. */
  backendErrors(): string;
  /** Replaces the accepted credentials (e.g. to rotate a password mid-test). */
  setCredentials(username: string, password: string): void;
  close(): Promise<void>;
}

/** Options for startGitServer. */
export interface GitServerOptions {
  /** GIT_PROJECT_ROOT: the directory holding the bare repositories served. */
  readonly projectRoot: string;
  readonly username: string;
  readonly password: string;
}

const REALM = "latchkey-test-git";

function authorizedUser(req: IncomingMessage, username: string, password: string): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined || !/^Basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  return decoded === `${username}:${password}` ? username : undefined;
}

/** Splits CGI output into its header block and the start of the body (CGI allows LF or CRLF line ends). */
function splitCgiHeaders(buffer: Buffer): { head: string; body: Buffer } | null {
  for (const separator of ["\r\n\r\n", "\n\n"]) {
    const at = buffer.indexOf(separator);
    if (at !== -1)
      return {
        head: buffer.subarray(0, at).toString("latin1"),
        body: buffer.subarray(at + separator.length),
      };
  }
  return null;
}

/** Starts the server on an ephemeral loopback port. */
export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const exec = gitExecPath();
  if (exec === null) throw new Error("git is not installed");
  const backend = join(exec, "git-http-backend");
  let { username, password } = options;
  const requests: GitRequestRecord[] = [];
  const spawns: BackendSpawnRecord[] = [];
  let stderr = "";

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://placeholder");
    const method = req.method ?? "GET";
    const user = authorizedUser(req, username, password);
    if (user === undefined) {
      requests.push({
        method,
        path: url.pathname,
        status: 401,
        sentCredentials: req.headers.authorization !== undefined,
      });
      req.resume();
      res.writeHead(401, { "WWW-Authenticate": `Basic realm="${REALM}"`, "Content-Type": "text/plain" });
      res.end("authentication required\n");
      return;
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: options.projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_PROTOCOL: "HTTP/1.1",
      SERVER_SOFTWARE: "latchkey-test",
      REQUEST_METHOD: method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ""),
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      REMOTE_USER: user,
      REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
      AUTH_TYPE: "Basic",
    };
    if (req.headers["content-length"] !== undefined) env.CONTENT_LENGTH = req.headers["content-length"];
    if (req.headers["content-encoding"] !== undefined)
      env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
    const protocol = req.headers["git-protocol"];
    if (typeof protocol === "string") env.GIT_PROTOCOL = protocol;
    spawns.push({ argv: [backend], env: { ...env } });

    const child = spawn(backend, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => undefined);
    req.pipe(child.stdin);

    let pending: Buffer = Buffer.alloc(0);
    let headersSent = false;
    let status = 200;
    child.stdout.on("data", (chunk: Buffer) => {
      if (headersSent) {
        res.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      const split = splitCgiHeaders(pending);
      if (split === null) return;
      const headers: Record<string, string> = {};
      for (const line of split.head.split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon === -1) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      headersSent = true;
      requests.push({ method, path: url.pathname, status, user, sentCredentials: true });
      if (split.body.length > 0) res.write(split.body);
    });
    child.on("close", (code) => {
      if (!headersSent) {
        requests.push({ method, path: url.pathname, status: 500, user, sentCredentials: true });
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(`git http-backend exited ${code} without a response\n`);
      } else res.end();
    });
    child.on("error", (error) => {
      stderr += `${error.message}\n`;
    });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    spawns,
    backendErrors: () => stderr,
    setCredentials: (u, p) => {
      username = u;
      password = p;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
