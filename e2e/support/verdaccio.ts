// A real npm registry for the suites: verdaccio on loopback, in a child process of its own, with a temporary
// storage directory, htpasswd authentication required to read AND to publish every package, no uplinks (nothing
// leaves the machine) and neither the web UI nor the audit middleware (which would forward to npmjs).
//
// The child runs verdaccio's programmatic entry (`runServer`) and listens on port 0, then prints the port it got,
// so two suites never race for a port. Users are created the way `npm adduser` does it: verdaccio's htpasswd
// plugin registers a user on the first `PUT /-/user/org.couchdb.user:NAME` (max_users allows it) and answers
// with a token (verdaccio's "legacy" AES token, which does not expire).
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);

/** Where verdaccio's own files live: its config, htpasswd (password hashes) and storage (packages, secret). */
export interface VerdaccioFiles {
  /** The temporary root of everything verdaccio writes; removed by stop(). */
  readonly dir: string;
  readonly config: string;
  readonly htpasswd: string;
  readonly storage: string;
}

/** A running verdaccio. */
export interface Verdaccio extends VerdaccioFiles {
  /** `http://127.0.0.1:PORT/` (with the trailing slash npm's nerf darts keep). */
  readonly url: string;
  readonly port: number;
  /** `//127.0.0.1:PORT/`: the key of this registry in an .npmrc. */
  readonly nerfDart: string;
  /** Registers NAME with PASSWORD (first call) or logs it in (later calls); resolves with the token. */
  addUser(name: string, password: string): Promise<string>;
  /** Stops the server and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options for startVerdaccio. */
export interface VerdaccioOptions {
  /** htpasswd's max_users (default 100): how many users `PUT /-/user/…` may register. */
  readonly maxUsers?: number;
  /** Loopback address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default 0: any free one). Port 80 gives a nerf dart without a port, as public registries have. */
  readonly port?: number;
}

// Runs in the child: verdaccio's module is CommonJS, imported by absolute URL so no resolution depends on cwd.
const SERVER_SCRIPT = `
const [entry, configPath, host, port] = process.argv.slice(1);
const { runServer } = await import(entry);
const server = await runServer(configPath);
server.listen(Number(port), host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\\n");
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent holds our stdin open and never writes: end of file means it is gone, so no verdaccio outlives a
// test run that crashed.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

/** Starts verdaccio on loopback (127.0.0.1, any free port unless told) with a fresh storage directory. */
export async function startVerdaccio(options: VerdaccioOptions = {}): Promise<Verdaccio> {
  const dir = await mkdtemp(join(tmpdir(), "lk-verdaccio-"));
  const files: VerdaccioFiles = {
    dir,
    config: join(dir, "config.yaml"),
    htpasswd: join(dir, "htpasswd"),
    storage: join(dir, "storage"),
  };
  const locked = { access: "$authenticated", publish: "$authenticated", unpublish: "$authenticated" };
  // JSON is YAML, and verdaccio only parses files named *.yaml as configuration without a deprecation warning.
  const config = {
    storage: files.storage,
    auth: { htpasswd: { file: files.htpasswd, max_users: options.maxUsers ?? 100 } },
    uplinks: {},
    // `**` alone also covers scoped names; spelling the scope pattern out keeps the intent obvious.
    packages: { "@*/*": locked, "**": locked },
    middlewares: { audit: { enabled: false } },
    web: { enable: false },
    log: { type: "stdout", format: "json", level: "error" },
    server: { keepAliveTimeout: 5 },
  };
  await writeFile(files.config, JSON.stringify(config, null, 2));

  const host = options.host ?? "127.0.0.1";
  const entry = pathToFileURL(require.resolve("verdaccio")).href;
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", SERVER_SCRIPT, entry, files.config, host, String(options.port ?? 0)],
    {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, LANG: "C.UTF-8" },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let port: number;
  try {
    port = await readPort(child);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const authority = port === 80 ? host : `${host}:${port}`;
  // The pipes must not keep a test process alive on their own; the child still ends when they close.
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as Socket | null)?.unref();
  child.unref();
  const url = `http://${authority}/`;
  let stopped: Promise<void> | undefined;
  return {
    ...files,
    url,
    port,
    nerfDart: `//${authority}/`,
    addUser: (name, password) => addUser(url, name, password),
    stop: () => (stopped ??= stopChild(child).then(() => rm(dir, { recursive: true, force: true }))),
  };
}

/**
 * The classic login: `PUT /-/user/org.couchdb.user:NAME`, as `npm adduser --auth-type=legacy` sends it. The body
 * carries the password (that is the protocol); the answer carries the token.
 */
export async function addUser(registryUrl: string, name: string, password: string): Promise<string> {
  const put = (headers: Record<string, string>): Promise<Response> =>
    fetch(new URL(`-/user/org.couchdb.user:${encodeURIComponent(name)}`, registryUrl), {
      method: "PUT",
      headers: { "content-type": "application/json", accept: "application/json", ...headers },
      body: JSON.stringify({
        _id: `org.couchdb.user:${name}`,
        name,
        password,
        type: "user",
        roles: [],
        date: new Date().toISOString(),
      }),
    });
  let response = await put({});
  // An existing user logs in the way npm retries: the same PUT, authenticated as that user.
  if (response.status === 409) {
    await response.body?.cancel();
    response = await put({ authorization: `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}` });
  }
  const body = (await response.json()) as { token?: unknown; error?: unknown };
  if (response.status !== 201 || typeof body.token !== "string") {
    throw new Error(`verdaccio refused user ${name}: HTTP ${response.status} ${JSON.stringify(body.error)}`);
  }
  return body.token;
}

function readPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith('{"port":'));
      if (line !== undefined) {
        child.stdout?.off("data", onData);
        // Drain both pipes from now on, so a chatty verdaccio never blocks on a full pipe.
        child.stdout?.resume();
        resolve((JSON.parse(line) as { port: number }).port);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      reject(new Error(`verdaccio exited before listening (${code ?? signal}): ${err}${out}`)),
    );
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // A keep-alive connection can hold server.close() open; the kill after it is the backstop.
    const force = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
