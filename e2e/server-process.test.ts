// The real `latchkey-server` process (issue 6 point 1), built as `npm start` builds it and started on a free
// port with a temporary data directory: health and readiness, the server secret's file and its reuse, the
// environment secret that is never written, graceful shutdown with a request in flight, and JSON logs that carry
// no credential. The held request uses a test-only route, which only the tests' own server build
// (test/support/test-routes-bundle.ts) has: the shipped server cannot be made to serve it.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, readdir, stat, symlink } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import { bundleServerWithTestRoutes } from "../packages/server/test/support/test-routes-bundle.js";
import { tempDir } from "./support/cli.js";

const SERVER = fileURLToPath(new URL("../packages/server/bin/latchkey-server.mjs", import.meta.url));
if (!existsSync(fileURLToPath(new URL("../packages/server/dist/main.mjs", import.meta.url)))) {
  throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
}

interface LogLine {
  level: number;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

interface RunningServer {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first log line whose event is `event` (including lines already written). */
  waitForEvent: (event: string) => Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const child of running.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

let testBuild: Promise<{ script: string; cleanup: () => Promise<void> }> | undefined;
afterAll(async () => {
  await (await testBuild)?.cleanup();
});

/** The server with the test-only routes (bundleServerWithTestRoutes), built once per run of this file. */
async function testRoutesServer(): Promise<string> {
  testBuild ??= (async () => {
    const dir = await tempDir("lk-server-test-routes-");
    return { script: await bundleServerWithTestRoutes(dir.path), cleanup: dir.cleanup };
  })();
  return (await testBuild).script;
}

async function dataDir(): Promise<string> {
  const dir = await tempDir("lk-server-e2e-");
  cleanups.push(dir.cleanup);
  return join(dir.path, "data");
}

/** Starts the built server (or `script`); resolves once it logs that it listens. */
function startServer(
  dir: string,
  env: Record<string, string> = {},
  args: string[] = [],
  script = SERVER,
): Promise<RunningServer> {
  const child = spawn(process.execPath, [script, "--port", "0", "--data-dir", dir, ...args], {
    env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  let stdout = "";
  let stderr = "";
  const watchers: { event: string; resolve: (line: LogLine) => void }[] = [];
  const parsed = (): LogLine[] =>
    stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogLine);
  const check = () => {
    for (const w of [...watchers]) {
      const hit = parsed().find((l) => l.event === w.event);
      if (hit) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    check();
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  const waitForEvent = (event: string) =>
    new Promise<LogLine>((resolve, reject) => {
      watchers.push({ event, resolve });
      check();
      void exited.then(({ code, signal }) =>
        reject(
          new Error(
            `server exited (${code ?? signal}) before "${event}"\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        ),
      );
    });
  return waitForEvent("server.listening").then((line) => ({
    child,
    url: String(line.url),
    stdout: () => stdout,
    stderr: () => stderr,
    waitForEvent,
    exited,
  }));
}

async function stopServer(
  server: RunningServer,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill("SIGTERM");
  return server.exited;
}

function jsonLines(text: string): LogLine[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogLine);
}

/** Tries one TCP connection; resolves with the error code, or "connected". */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

// The same process on each database (issue 6 point 8): with DATABASE_URL it runs its migrations on PostgreSQL.
describeEachDatabase("latchkey-server process", (target) => {
  let env: Record<string, string>;
  let dir: string;
  let databaseUrl: string | undefined;
  beforeEach(async () => {
    const config = await target.fresh();
    env = target.env(config);
    dir = config.dataDir;
    databaseUrl = config.databaseUrl;
  });

  it("answers /healthz and /readyz, on 127.0.0.1 by default", async () => {
    const server = await startServer(dir, env);
    expect((await server.waitForEvent("server.starting")).dialect).toBe(target.kind);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
  });

  it("on SIGTERM refuses new connections, finishes the request in flight and exits 0; logs are JSON without the token", async () => {
    const canary = "lk-canary-token-3e9a71c05d";
    const server = await startServer(dir, env, [], await testRoutesServer());
    expect(
      (await fetch(`${server.url}/readyz?code=${canary}`, { headers: { authorization: `Bearer ${canary}` } }))
        .status,
    ).toBe(200);

    const slow = fetch(`${server.url}/__test/slow?token=${canary}`, {
      headers: { authorization: `Bearer ${canary}`, cookie: `session=${canary}` },
    });
    // The route logs once the request is inside the server, so the signal comes while it is in flight.
    await server.waitForEvent("test.slow.waiting");
    server.child.kill("SIGTERM");
    await server.waitForEvent("shutdown.listener-closed");
    expect(await tryConnect(server.url)).toBe("ECONNREFUSED");
    expect(server.child.exitCode).toBeNull();

    // SIGUSR2 lets the held request answer (test routes only).
    server.child.kill("SIGUSR2");
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "done" });
    expect(await server.exited).toEqual({ code: 0, signal: null });

    const lines = jsonLines(server.stdout());
    const events = lines.map((l) => l.event).filter(Boolean);
    // Without SMTP_URL the server says once, at start, that notices stay queued.
    expect(events.filter((e) => e === "outbox.no-smtp")).toHaveLength(1);
    expect(events.filter((e) => e !== "outbox.no-smtp")).toEqual([
      "server.starting",
      "server.test-routes",
      "server.listening",
      "test.slow.waiting",
      "shutdown.start",
      "shutdown.listener-closed",
      "shutdown.done",
    ]);
    // The held request was logged as completed with 200 before the process stopped.
    const slowId = lines.find((l) => l.event === "test.slow.waiting")?.reqId;
    expect(lines.find((l) => l.reqId === slowId && l.msg === "request completed")).toMatchObject({
      res: { statusCode: 200 },
    });
    expect(server.stdout() + server.stderr()).not.toContain(canary);
    // The database URL may carry a password; it is never logged.
    if (databaseUrl !== undefined) expect(server.stdout()).not.toContain(databaseUrl);
    expect(server.stderr()).toBe("");
  });

  it("exits 1 at once on a second SIGTERM while a request is still held", async () => {
    const server = await startServer(dir, env, [], await testRoutesServer());
    const slow = fetch(`${server.url}/__test/slow`).then(
      (res) => res.status,
      () => "aborted",
    );
    await server.waitForEvent("test.slow.waiting");
    server.child.kill("SIGTERM");
    await server.waitForEvent("shutdown.listener-closed");
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(await slow).toBe("aborted");
    expect(jsonLines(server.stdout()).some((l) => l.event === "shutdown.forced")).toBe(true);
  });

  it("exits 0 on SIGINT too", async () => {
    const server = await startServer(dir, env);
    server.child.kill("SIGINT");
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});

describe("latchkey-server process: secret, options, help", () => {
  it("has no test-only routes, whatever its environment says (the variable that once turned them on included)", async () => {
    const server = await startServer(await dataDir(), { LATCHKEY_SERVER_TEST_ROUTES: "1" });
    // Were the route there, it would hold the request: its log line ends the wait instead of the test's timeout.
    const held = server.waitForEvent("test.slow.waiting").then(
      () => "held",
      () => "exited",
    );
    const answer = await Promise.race([fetch(`${server.url}/__test/slow`).then((r) => r.status), held]);
    expect(answer).toBe(404);
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    expect(jsonLines(server.stdout()).some((l) => l.event === "server.test-routes")).toBe(false);
  });

  it("generates the server secret once into the data directory (0600, directory 0700) and reuses it", async () => {
    const dir = await dataDir();
    const first = await startServer(dir);
    expect((await first.waitForEvent("server.starting")).secretSource).toBe("file-created");
    expect(await stopServer(first)).toEqual({ code: 0, signal: null });

    const secretPath = join(dir, "server-secret");
    expect((await stat(secretPath)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const secret = (await readFile(secretPath, "utf8")).trim();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // No temp file of the atomic write is left behind.
    expect((await readdir(dir)).filter((f) => f.includes("tmp"))).toEqual([]);

    const second = await startServer(dir);
    expect((await second.waitForEvent("server.starting")).secretSource).toBe("file");
    expect(await stopServer(second)).toEqual({ code: 0, signal: null });
    expect((await readFile(secretPath, "utf8")).trim()).toBe(secret);
    expect(first.stdout() + first.stderr() + second.stdout() + second.stderr()).not.toContain(secret);
  });

  it("takes LATCHKEY_SERVER_SECRET over the file and never writes or logs it", async () => {
    const dir = await dataDir();
    const envSecret = "env-secret-canary-7c1f4e2a9b3d5f60a8e2c4b6d8f0a1c3";
    const server = await startServer(dir, { LATCHKEY_SERVER_SECRET: envSecret });
    expect((await server.waitForEvent("server.starting")).secretSource).toBe("env");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(await stopServer(server)).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dir, "server-secret"))).toBe(false);
    for (const name of await readdir(dir)) {
      expect(await readFile(join(dir, name), "latin1"), name).not.toContain(envSecret);
    }
    expect(server.stdout() + server.stderr()).not.toContain(envSecret);
  });

  it("refuses a too-short LATCHKEY_SERVER_SECRET and a bad --port with a message and a hint", async () => {
    const dir = await dataDir();
    const short = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [SERVER, "--port", "0", "--data-dir", dir], {
        env: { PATH: process.env.PATH, LATCHKEY_SERVER_SECRET: "too-short" },
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain("LATCHKEY_SERVER_SECRET is shorter than 32 characters");
    expect(short.stderr).not.toContain("too-short");

    const badPort = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [SERVER, "--port", "eighty"], {
        env: { PATH: process.env.PATH },
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    expect(badPort.code).not.toBe(0);
    expect(badPort.stderr).toContain("--port must be a number");
    expect(badPort.stderr).toContain("hint:");
  });

  it("refuses a data directory that is a symbolic link, leaving its target's mode alone", async () => {
    const real = await dataDir();
    await mkdir(real, { mode: 0o755 });
    await chmod(real, 0o755);
    const link = `${real}-link`;
    await symlink(real, link);
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [SERVER, "--port", "0", "--data-dir", link], {
        env: { PATH: process.env.PATH },
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("it is a symbolic link");
    expect((await stat(real)).mode & 0o777).toBe(0o755);
    expect(await readdir(real)).toEqual([]);
  });

  it("prints its help", async () => {
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [SERVER, "--help"], { env: { PATH: process.env.PATH } });
      let stdout = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.on("close", (code) => resolve({ code, stdout }));
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("Usage: latchkey-server [--host HOST] [--port PORT] [--data-dir DIR]");
    expect(out.stdout).toContain("LATCHKEY_SERVER_SECRET");
  });
});
