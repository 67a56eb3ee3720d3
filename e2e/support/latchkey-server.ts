// The real `latchkey-server` process for the e2e suites and the bench (issue 6 points 10 and 11): the built bin
// on 127.0.0.1 and a free port (`--port 0`, the URL read back from its `server.listening` JSON log line), a
// temporary data directory, SQLite or a PostgreSQL DATABASE_URL (e2e/support/postgres.ts). Accounts are made
// through the real admin command with the password on stdin, and CLI "machines" (one HOME and LATCHKEY_HOME
// each, the encrypted-file keystore, no D-Bus) log in with the built CLI's `latchkey login --server URL`: in a
// browser (e2e/support/oidc-browser.ts spawned as $BROWSER) or with the device flow (the same scripted browser
// driven from here, as the user's phone would be).
//
// Written in erasable TypeScript with only node: imports, so bench/server.ts can import it under plain Node; the
// scripted browser is loaded with a dynamic import of its .ts file for the same reason.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
// Types only (erased): the module itself is loaded by loadBrowser().
import type * as BrowserTypes from "./oidc-browser.js";

/** The installed `latchkey-server` command (the bin over packages/server/dist, built by `npm run build`). */
export const SERVER_BIN = fileURLToPath(
  new URL("../../packages/server/bin/latchkey-server.mjs", import.meta.url),
);
/** The installed `latchkey` command (the bin over packages/cli/dist). */
export const CLI_BIN = fileURLToPath(new URL("../../packages/cli/bin/latchkey.mjs", import.meta.url));
const BROWSER_MODULE = new URL("./oidc-browser.ts", import.meta.url);

/** A D-Bus address where nothing listens: the CLI finds no keychain and uses its encrypted file store. */
const NO_DBUS = "unix:path=/nonexistent/latchkey-test-no-bus";

/** Throws with the fix when the bundles the harness runs are missing. */
export function assertBuilt(): void {
  for (const dist of ["../../packages/server/dist/main.mjs", "../../packages/cli/dist/latchkey.mjs"]) {
    if (!existsSync(fileURLToPath(new URL(dist, import.meta.url)))) {
      throw new Error(`${dist.slice(6)} is missing: run \`npm run build\` first (npm test does).`);
    }
  }
}

/** A finished child process. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Collects a started process's output and exit. It lives here, not in cli.ts (which re-exports it), because
 * bench/server.ts imports this module under plain Node, where `./cli.js` would not resolve to cli.ts.
 */
export function collect(child: ChildProcess): Promise<ProcessResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** One JSON log line of the server. */
export interface LogLine {
  level: number;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

/** Options of {@link startLatchkeyServer}. */
export interface ServerOptions {
  /** The data directory (server secret; the SQLite file unless databaseUrl). Made by the server, mode 0700. */
  dataDir: string;
  /** A PostgreSQL URL (DATABASE_URL); SQLite when absent. */
  databaseUrl?: string;
  /** LATCHKEY_SERVER_SECRET; a fresh random one when absent. Processes sharing a database share it. */
  secret?: string;
  /**
   * More environment (PUBLIC_URL, LATCHKEY_OPEN_SIGNUP…). LOG_LEVEL must keep info lines: the URL is read from
   * the `server.listening` line, which is logged at info.
   */
  env?: Record<string, string>;
  /** More arguments after `--port 0 --data-dir DIR`. */
  args?: readonly string[];
  /**
   * Keep every log line in memory (default true). The bench turns it off: at thousands of requests a second the
   * lines are still read (a full pipe would stall the server) but only the last 64 KiB are kept.
   */
  keepLogs?: boolean;
  /**
   * The server script to run instead of the installed bin: a test build with test-only routes
   * (packages/server/test/support/test-routes-bundle.ts).
   */
  script?: string;
}

/** A running server process. */
export interface LatchkeyServer {
  /** Where clients reach it, from its `server.listening` line (`http://127.0.0.1:PORT`). */
  readonly url: string;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly child: ChildProcess;
  /**
   * The environment the server runs with beyond PATH and LANG (DATABASE_URL, LATCHKEY_SERVER_SECRET, the caller's
   * env): admin commands and a second process on the same database need the same.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Everything written on stdout so far (the JSON log lines). */
  stdout(): string;
  stderr(): string;
  /** stdout parsed as JSON lines (non-JSON lines skipped). */
  logLines(): LogLine[];
  /** Resolves with the first log line whose event is `event`, including lines already written. */
  waitForEvent(event: string): Promise<LogLine>;
  /** SIGTERM and wait for the exit (graceful shutdown). Idempotent. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const MAX_KEPT_LOG = 64 * 1024;

/** Starts the built server and resolves once it listens; rejects with its output if it exits first. */
export function startLatchkeyServer(options: ServerOptions): Promise<LatchkeyServer> {
  assertBuilt();
  const env: Record<string, string> = {
    LATCHKEY_SERVER_SECRET: options.secret ?? randomBytes(32).toString("base64url"),
    ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }),
    ...options.env,
  };
  const child = spawn(
    process.execPath,
    [options.script ?? SERVER_BIN, "--port", "0", "--data-dir", options.dataDir, ...(options.args ?? [])],
    { env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const keepLogs = options.keepLogs ?? true;
  let stdout = "";
  let stderr = "";
  let partial = "";
  const lines: LogLine[] = [];
  const watchers: { event: string; resolve: (line: LogLine) => void }[] = [];
  const check = (): void => {
    for (const watcher of [...watchers]) {
      const hit = lines.find((l) => l.event === watcher.event);
      if (hit) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve(hit);
      }
    }
  };
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (!keepLogs && stdout.length > MAX_KEPT_LOG) stdout = stdout.slice(-MAX_KEPT_LOG);
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const text of parts) {
      if (!text.startsWith("{")) continue;
      try {
        const line = JSON.parse(text) as LogLine;
        // Without keepLogs only the lines someone may wait for are kept (the events), not every request.
        if (keepLogs || line.event !== undefined) lines.push(line);
      } catch {
        // not JSON: kept in stdout() only
      }
    }
    check();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  const waitForEvent = (event: string): Promise<LogLine> =>
    new Promise<LogLine>((resolve, reject) => {
      watchers.push({ event, resolve });
      check();
      void exited.then(({ code, signal }) =>
        reject(
          new Error(
            `latchkey-server exited (${code ?? signal}) before "${event}"\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        ),
      );
    });
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  const stop = (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (stopping === null) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      // A server that overruns its own shutdown grace is killed rather than left behind the suite.
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      stopping = exited.finally(() => clearTimeout(timer));
    }
    return stopping;
  };
  // Whatever happens to the test process, no server outlives it.
  const onExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", onExit);
  void exited.then(() => process.removeListener("exit", onExit));

  return waitForEvent("server.listening").then(
    (line) => ({
      url: String(line.url),
      dataDir: options.dataDir,
      databaseUrl: options.databaseUrl,
      child,
      env,
      stdout: () => stdout,
      stderr: () => stderr,
      logLines: () => [...lines],
      waitForEvent,
      stop,
    }),
    async (error: unknown) => {
      await stop();
      throw error;
    },
  );
}

/** Runs a program to completion with `input` on stdin (closed at once when absent). */
export function runProcess(
  file: string,
  args: readonly string[],
  options: { env: Record<string, string | undefined>; input?: string; cwd?: string },
): Promise<ProcessResult> {
  return collect(startProcess(file, args, options));
}

function startProcess(
  file: string,
  args: readonly string[],
  options: { env: Record<string, string | undefined>; input?: string; cwd?: string },
): ChildProcess {
  const child = spawn(file, args, { env: options.env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(options.input ?? "");
  return child;
}

/**
 * Runs `latchkey-server admin ARGS…` on the server's database (its data directory, DATABASE_URL and secret),
 * `input` on stdin. The server may be running: both open the same database.
 */
export function runServerAdmin(
  server: Pick<LatchkeyServer, "dataDir" | "env">,
  args: readonly string[],
  input?: string,
): Promise<ProcessResult> {
  return runProcess(process.execPath, [SERVER_BIN, "admin", ...args, "--data-dir", server.dataDir], {
    env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...server.env },
    ...(input === undefined ? {} : { input }),
  });
}

/** `latchkey-server admin create-user EMAIL` with the password on stdin; throws with the output on failure. */
export async function createUser(
  server: Pick<LatchkeyServer, "dataDir" | "env">,
  email: string,
  password: string,
): Promise<void> {
  const result = await runServerAdmin(server, ["create-user", email], `${password}\n`);
  if (result.code !== 0) {
    // The password never reaches the message, even if the command echoed it.
    const output = `${result.stdout}${result.stderr}`.replaceAll(password, "[password]");
    throw new Error(`latchkey-server admin create-user exited ${result.code ?? result.signal}:\n${output}`);
  }
}

/**
 * A server on one of the suites' databases (describeEachDatabase's `fresh()` result) with `user` created: the
 * start of every server suite.
 */
export async function startServerWithUser(
  database: { dataDir: string; databaseUrl?: string | undefined },
  user: Credentials,
): Promise<LatchkeyServer> {
  const server = await startLatchkeyServer({
    dataDir: database.dataDir,
    ...(database.databaseUrl === undefined ? {} : { databaseUrl: database.databaseUrl }),
  });
  try {
    await createUser(server, user.email, user.password);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** One developer machine: its own HOME and LATCHKEY_HOME, the encrypted-file keystore, no D-Bus. */
export interface Machine {
  readonly name: string;
  readonly home: string;
  readonly latchkeyHome: string;
  /** The CLI's environment (nothing from the test's own session but PATH and LANG). */
  readonly env: Record<string, string | undefined>;
}

/** Makes a machine under `root` (a temporary directory the caller removes). */
export async function newMachine(
  root: string,
  name: string,
  extra: Record<string, string> = {},
): Promise<Machine> {
  const home = join(root, `machine-${name}`);
  const latchkeyHome = join(home, ".latchkey");
  const tmp = join(home, "tmp");
  await mkdir(latchkeyHome, { recursive: true, mode: 0o700 });
  await mkdir(tmp, { recursive: true });
  return {
    name,
    home,
    latchkeyHome,
    env: {
      PATH: process.env.PATH,
      LANG: "C.UTF-8",
      NO_COLOR: "1",
      HOME: home,
      LATCHKEY_HOME: latchkeyHome,
      TMPDIR: tmp,
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
      ...extra,
    },
  };
}

/** Options of one CLI run on a machine. */
export interface RunOptions {
  cwd?: string;
  input?: string;
  /** Added to (or, with undefined values, removed from) the machine's environment for this run. */
  env?: Record<string, string | undefined>;
  /** The CLI script to run instead of the installed bin (a test build, such as bundleCrashCli's). */
  cli?: string;
}

/** Runs the built CLI on `machine`. */
export function latchkey(
  machine: Machine,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessResult> {
  return collect(startLatchkey(machine, args, options));
}

/** Starts the built CLI on `machine`; the caller owns the process. */
export function startLatchkey(
  machine: Machine,
  args: readonly string[],
  options: RunOptions = {},
): ChildProcess {
  assertBuilt();
  return startProcess(process.execPath, [options.cli ?? CLI_BIN, ...args], {
    env: { ...machine.env, ...options.env },
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
}

/** A user's credentials for the login page. */
export interface Credentials {
  email: string;
  password: string;
}

type BrowserModule = typeof BrowserTypes;
let browserModule: Promise<BrowserModule> | null = null;
function loadBrowser(): Promise<BrowserModule> {
  browserModule ??= import(BROWSER_MODULE.href) as Promise<BrowserModule>;
  return browserModule;
}

/**
 * `latchkey login --server URL` on `machine` with the browser flow: the CLI spawns the scripted browser as
 * $BROWSER, which signs in on the server's real login page and follows the redirect back to the CLI's loopback
 * listener. Resolves with the CLI's result (check `code`); `browserLog` is the browser's JSON-lines log file.
 */
export async function loginCli(
  machine: Machine,
  server: Pick<LatchkeyServer, "url">,
  credentials: Credentials,
  options: { args?: readonly string[]; env?: Record<string, string> } = {},
): Promise<ProcessResult & { browserLog: string }> {
  const { writeBrowserLauncher } = await loadBrowser();
  const browser = join(machine.home, "test-browser");
  if (!existsSync(browser)) await writeBrowserLauncher(machine.home);
  const browserLog = join(machine.home, "browser.log");
  const result = await latchkey(machine, ["login", "--server", server.url, ...(options.args ?? [])], {
    env: {
      BROWSER: browser,
      OIDC_BROWSER_LOG: browserLog,
      // The scripted browser's "user": it types these into the login page. Environment, never argv.
      OIDC_BROWSER_LOGIN: credentials.email,
      OIDC_BROWSER_PASSWORD: credentials.password,
      ...options.env,
    },
  });
  return { ...result, browserLog };
}

/**
 * `latchkey login --server URL --no-browser` on `machine`: waits for the printed login URL, opens it in the
 * scripted browser as the user would by hand, and waits for the CLI. BROWSER points at a program that only leaves
 * a marker file, so a test can tell whether the CLI tried to open a browser anyway.
 */
export async function loginCliNoBrowser(
  machine: Machine,
  server: Pick<LatchkeyServer, "url">,
  credentials: Credentials,
): Promise<ProcessResult & { loginUrl: string; browserSpawned: boolean }> {
  const { browse } = await loadBrowser();
  const marker = join(machine.home, "browser-was-spawned");
  const spy = join(machine.home, "spy-browser");
  await writeFile(spy, `#!/bin/sh\ntouch '${marker}'\n`, { mode: 0o700 });
  const child = startLatchkey(machine, ["login", "--server", server.url, "--no-browser"], {
    env: { BROWSER: spy },
  });
  const done = collect(child);
  const match = await waitForOutput(child, /Open this URL in a browser[^\n]*:\n\s+(\S+)\n/, done);
  const loginUrl = match[1] ?? "";
  await browse(loginUrl, { login: credentials.email, password: credentials.password });
  const result = await done;
  return { ...result, loginUrl, browserSpawned: existsSync(marker) };
}

/** What the device flow printed for the user. */
export interface DevicePrompt {
  verificationUri: string;
  userCode: string;
}

/**
 * `latchkey login --server URL --device` on `machine`: waits for the verification URI and user code on the
 * CLI's stderr, signs in and enters the code with the scripted browser (another device), and resolves with the
 * CLI's result once it has finished polling.
 */
export async function loginCliDevice(
  machine: Machine,
  server: Pick<LatchkeyServer, "url">,
  credentials: Credentials,
  options: { args?: readonly string[] } = {},
): Promise<ProcessResult & { prompt: DevicePrompt; page: { status: number; body: string } }> {
  const { browse } = await loadBrowser();
  const child = startLatchkey(machine, [
    "login",
    "--server",
    server.url,
    "--device",
    ...(options.args ?? []),
  ]);
  const done = collect(child);
  const match = await waitForOutput(child, /open (\S+) on any device and enter the code:\s+(\S+)\s/, done);
  const prompt = { verificationUri: match[1] ?? "", userCode: match[2] ?? "" };
  const page = await browse(prompt.verificationUri, {
    login: credentials.email,
    password: credentials.password,
    userCode: prompt.userCode,
  });
  const result = await done;
  return { ...result, prompt, page: { status: page.status, body: page.body } };
}

/** Reads a child's stderr until `pattern` matches; rejects with its output when it exits first. */
function waitForOutput(
  child: ChildProcess,
  pattern: RegExp,
  done: Promise<ProcessResult>,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) {
        child.stderr?.off("data", onData);
        resolve(match);
      }
    };
    child.stderr?.on("data", onData);
    void done.then((result) =>
      reject(
        new Error(
          `latchkey exited (${result.code ?? result.signal}) before printing the device code:\n${result.stderr}`,
        ),
      ),
    );
  });
}

/** The CLI's stored session for `server` (keystore item `session:<url>`), or null when there is none. */
export async function storedSession(
  machine: Machine,
  server: Pick<LatchkeyServer, "url">,
): Promise<Record<string, unknown> | null> {
  const result = await latchkey(machine, ["keystore", "get", `session:${server.url}`]);
  if (result.code !== 0) return null;
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** The request an answer is for, as the server signs it (docs/sync-protocol.md). */
export interface AnsweredRequest {
  method: string;
  /** The request target: path and query. */
  path: string;
  requestId: string;
}

/**
 * The X-Latchkey-Signature of `body` as the answer (`status`) to `request`, computed here independently of the
 * code: what anyone holding the bearer token can sign, a proxy that sees it on the wire included.
 */
export function signAnswer(token: string, request: AnsweredRequest, status: number, body: Buffer): string {
  return createHmac("sha256", createHash("sha256").update(token, "utf8").digest())
    .update(`latchkey-sig-v2\n${request.method}\n${request.path}\n${request.requestId}\n${status}\n`)
    .update(body)
    .digest("base64");
}
