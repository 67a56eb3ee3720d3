// A throwaway PostgreSQL cluster for the server suites: initdb into a temporary directory, then the `postgres`
// binary from the Debian package (/usr/lib/postgresql/<version>/bin) listening on 127.0.0.1 and a free port, its
// unix socket inside the same directory, password (SCRAM) authentication for every connection. The packaged
// cluster (pg_ctlcluster, port 5432) is never touched, so suites can run side by side and on a developer machine
// with its own PostgreSQL.
//
// postgres refuses to run as root. When the tests run as root (CI containers do), initdb and postgres are started
// with Node's spawn `uid`/`gid` as the package's `postgres` system user (libuv also drops root's supplementary
// groups), and the temporary directory is handed to that user. spawn's uid is used rather than `runuser`/`setpriv`
// so that the child we signal is postgres itself, with no wrapper in between that might not forward the signal.
//
// Written in erasable TypeScript with only node: builtins and `pg`, so the bench can import it under plain Node.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** Where the PostgreSQL server binaries live on Debian/Ubuntu; the newest version wins. */
const PG_LIB = "/usr/lib/postgresql";

/** The superuser initdb creates; suites use it only to create roles and databases. */
const ADMIN_USER = "lk_admin";
/** The role the server under test connects as: a plain login role that owns its databases, not a superuser. */
const APP_USER = "latchkey";

/** Whether this machine can run a throwaway cluster; the reason names what is missing and the apt package. */
export function postgresAvailable(): { ok: boolean; reason?: string; binDir?: string } {
  const binDir = findBinDir();
  if (binDir === null) {
    return { ok: false, reason: `no initdb/postgres under ${PG_LIB}/*/bin (apt package postgresql)` };
  }
  if (process.getuid?.() === 0 && runAsUser() === null) {
    return {
      ok: false,
      reason: "running as root and there is no `postgres` or `nobody` user to run postgres as",
    };
  }
  return { ok: true, binDir };
}

function findBinDir(): string | null {
  if (!existsSync(PG_LIB)) return null;
  const versions = readdirSync(PG_LIB)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(PG_LIB, version, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres"))) return bin;
  }
  return null;
}

/** The unprivileged account postgres runs as when we are root; null when we are not root. */
function runAsUser(): { uid: number; gid: number } | null {
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
      const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
      if (Number.isInteger(uid) && Number.isInteger(gid) && uid !== 0) return { uid, gid };
    } catch {
      // no such user
    }
  }
  return null;
}

/** A running cluster. Every URL is `postgres://user:password@127.0.0.1:PORT/db`. */
export interface PostgresCluster {
  /** A database owned by the app role, created at start. */
  readonly url: string;
  readonly port: number;
  /** Creates another empty database owned by the app role and returns its URL (one per test keeps tests apart). */
  createDatabase(): Promise<string>;
  /** The server's log since it last started, for failure messages. */
  log(): string;
  /** Stops the server the way an outage would (open connections are cut) but keeps its data. */
  stopServer(): Promise<void>;
  /** Starts a stopped server again on the same port with the same data. */
  startServer(): Promise<void>;
  /** Stops the server (fast shutdown: open connections are cut) and deletes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options for startPostgres. */
export interface PostgresOptions {
  /** How long to wait for the server to accept connections, in milliseconds (default 60 000). */
  startTimeoutMs?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function run(
  command: string,
  args: readonly string[],
  owner: { uid: number; gid: number } | null,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, LANG: "C.UTF-8" },
      ...(owner ?? {}),
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited with ${code}: ${output}`)),
    );
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  // A refused connection also emits 'error' on the client; without a listener it would be thrown as uncaught.
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const urlFor = (user: string, password: string, port: number, database: string) =>
  `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;

/**
 * Starts a fresh cluster under a new temporary directory. The caller must `stop()` it (an afterAll does); if the
 * test process exits first, an exit hook kills the server and removes the directory.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresCluster> {
  const available = postgresAvailable();
  if (!available.ok || available.binDir === undefined) throw new Error(`PostgreSQL: ${available.reason}`);
  const bin = available.binDir;
  const owner = process.getuid?.() === 0 ? runAsUser() : null;

  const root = await mkdtemp(join(tmpdir(), "lk-pg-"));
  const data = join(root, "data");
  const sockets = join(root, "sockets");
  let child: ChildProcess | null = null;
  let output = "";
  // Runs even if the worker dies without reaching afterAll: no postgres outlives the tests, no directory stays.
  const onExit = () => {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  };
  process.once("exit", onExit);
  const cleanup = async () => {
    process.removeListener("exit", onExit);
    await rm(root, { recursive: true, force: true });
  };

  /** Stops the running postgres, if any; the data directory stays. */
  const halt = async (): Promise<void> => {
    const server = child;
    if (server === null || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once("exit", resolve));
    // SIGINT is postgres's fast shutdown: it disconnects clients instead of waiting for their pools to close.
    server.kill("SIGINT");
    const timer = setTimeout(() => server.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await mkdir(sockets, { mode: 0o700 });
    // Random per cluster; hex, so it can be inlined into the CREATE ROLE statement and the URL without escaping.
    const adminPassword = randomBytes(16).toString("hex");
    const appPassword = randomBytes(16).toString("hex");
    // initdb reads the superuser password from a file, never argv; the file is gone before the server starts.
    const pwfile = join(root, "pwfile");
    await writeFile(pwfile, `${adminPassword}\n`, { mode: 0o600 });
    if (owner !== null) {
      for (const path of [root, sockets, pwfile]) await chown(path, owner.uid, owner.gid);
    }
    await chmod(root, 0o700);
    await run(
      join(bin, "initdb"),
      [
        "--pgdata",
        data,
        "--username",
        ADMIN_USER,
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
      ],
      owner,
    );
    await rm(pwfile);

    const adminUrlAt = (port: number) => urlFor(ADMIN_USER, adminPassword, port, "postgres");
    /** Starts postgres on `port` and waits until it accepts connections; `bindFailed` marks a taken port. */
    const launch = async (port: number): Promise<void> => {
      output = "";
      const started = spawn(
        join(bin, "postgres"),
        [
          "-D",
          data,
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          `port=${port}`,
          "-c",
          `unix_socket_directories=${sockets}`,
        ],
        {
          stdio: ["ignore", "pipe", "pipe"],
          env: { PATH: process.env.PATH, LANG: "C.UTF-8" },
          ...(owner ?? {}),
        },
      );
      child = started;
      started.stdout?.setEncoding("utf8").on("data", (d: string) => (output += d));
      started.stderr?.setEncoding("utf8").on("data", (d: string) => (output += d));
      const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
      while (Date.now() < deadline) {
        if (started.exitCode !== null || started.signalCode !== null) {
          throw Object.assign(new Error(`postgres exited during start: ${output}`), {
            bindFailed: /could not bind|Address already in use/i.test(output),
          });
        }
        if (await canConnect(adminUrlAt(port))) return;
        await sleep(50);
      }
      await halt();
      throw new Error(`postgres did not accept connections in time: ${output}`);
    };
    let port = 0;
    // The port is free when chosen but could be taken before postgres binds it: retry with another.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        await launch(port);
        break;
      } catch (error) {
        if (attempt >= 2 || !(error as { bindFailed?: boolean }).bindFailed) throw error;
      }
    }

    const adminUrl = adminUrlAt(port);
    await adminQuery(adminUrl, `CREATE ROLE ${APP_USER} LOGIN PASSWORD '${appPassword}'`);
    let databases = 0;
    const createDatabase = async (): Promise<string> => {
      const name = `lk_test_${++databases}_${randomBytes(4).toString("hex")}`;
      await adminQuery(adminUrl, `CREATE DATABASE ${name} OWNER ${APP_USER}`);
      return urlFor(APP_USER, appPassword, port, name);
    };
    const url = await createDatabase();

    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= halt().then(cleanup);
      return stopping;
    };
    return {
      url,
      port,
      createDatabase,
      log: () => output,
      stopServer: halt,
      startServer: async () => {
        if (stopping !== null) throw new Error("the cluster was stopped and deleted");
        const running = child;
        if (running !== null && running.exitCode === null && running.signalCode === null) return;
        await launch(port);
      },
      stop,
    };
  } catch (error) {
    await halt();
    await cleanup();
    throw error;
  }
}
