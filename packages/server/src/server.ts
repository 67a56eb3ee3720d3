/**
 * The `latchkey-server` process: reads its options, opens and migrates the database, loads the server secret,
 * listens, and shuts down gracefully on SIGTERM/SIGINT (in-flight requests finish, new connections are refused,
 * exit 0). run-process.ts calls runServer with the real process; everything it touches comes in through ServerDeps.
 */
import { chmod, mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { LatchkeyError } from "@latchkey/core";
import { buildApp, type TestRoutes } from "./app.js";
import { parseCiIssuers, type CiIssuer } from "./ci/issuers.js";
import { createIdentity, type Identity } from "./identity/identity.js";
import { openDatabase, SQLITE_FILE } from "./db/index.js";
import { migrateToLatest } from "./db/migrations.js";
import { loggerOptions } from "./logging.js";
import { createOutboxSender, type OutboxSender } from "./outbox/sender.js";
import { createSmtpTransport, describeSmtpUrl, parseSmtpConfig, type SmtpConfig } from "./outbox/smtp.js";
import { loadEscrowKey, recordEscrowKey } from "./escrow-key.js";
import { isLoopbackHost } from "./loopback.js";
import { createMetrics, startMetricsListener, type MetricsListen, type MetricsListener } from "./metrics.js";
import { checkDataDir, loadServerSecret } from "./secret.js";
import { startWriterThread, type ThreadWriter } from "./sync/writer-thread.js";

/** Defaults of issue 6 point 1: loopback only, so a first `npm start` exposes nothing to the network. */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8787;
export const DEFAULT_DATA_DIR = ".latchkey-server";
/** How long in-flight requests get after SIGTERM before the process gives up on them and exits 1. */
export const SHUTDOWN_GRACE_MS = 30_000;
/** How often a shutting-down server closes the connections that have turned idle. */
const IDLE_SWEEP_MS = 100;

/** The server's resolved options. */
export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** The URL clients use to reach this server (PUBLIC_URL); derived from host and port when unset. */
  publicUrl: string | undefined;
  databaseUrl: string | undefined;
  /** DATABASE_POOL_MAX: connections one process's PostgreSQL pool may open; absent, postgres.ts's default. */
  databasePoolMax: number | undefined;
  logLevel: string;
  /** --open-signup or LATCHKEY_OPEN_SIGNUP=1: anyone who reaches the sign-in page may create an account. */
  openSignup: boolean;
  /** Which proxies in front may name the client's address (TRUST_PROXY); see {@link TrustProxy}. */
  trustProxy: TrustProxy;
  /** SMTP_URL and SMTP_FROM: where notices are sent; unset, they stay in the outbox. SMTP_URL is never logged. */
  smtp: SmtpConfig | undefined;
  /** CI_OIDC_ISSUERS: the CI platforms whose OIDC tokens CI pulls may present (ci/issuers.ts). */
  ciIssuers: readonly CiIssuer[];
  /** --metrics-listen or METRICS_LISTEN, with METRICS_TOKEN: where GET /metrics is served; absent, nowhere. */
  metrics: MetricsListen | undefined;
}

/** Shortest METRICS_TOKEN taken: as long as LATCHKEY_SERVER_SECRET, so that it cannot be guessed either. */
const MIN_METRICS_TOKEN_LENGTH = 32;

/**
 * The metrics listener's HOST:PORT (`[::1]:9464` for IPv6) and token. A scrape answer shows how busy the server is
 * and when, and a metrics port is easy to open by mistake on a public address: one that is not loopback needs
 * METRICS_TOKEN, which every scrape must then send as a bearer token.
 */
function parseMetricsListen(text: string | undefined, token: string | undefined): MetricsListen | undefined {
  if (text === undefined || text === "") return undefined;
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || port > 65535 || (match?.[1] !== undefined && isIP(host) !== 6)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--metrics-listen (METRICS_LISTEN) must be HOST:PORT, not "${text}".`,
      hint: "For example --metrics-listen 127.0.0.1:9464 ([::1]:9464 for IPv6).",
    });
  }
  const secret = token === "" ? undefined : token;
  if (secret !== undefined && secret.length < MIN_METRICS_TOKEN_LENGTH) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters.`,
      hint: "Make one with `openssl rand -base64 32` and give the same to the scraper (Prometheus: authorization.credentials_file).",
    });
  }
  if (secret === undefined && !isLoopbackHost(host)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The metrics listener on ${text} would be reachable from other machines without a token.`,
      hint: "Listen on loopback (--metrics-listen 127.0.0.1:9464), or set METRICS_TOKEN (at least 32 characters) that every scrape must send as a bearer token.",
    });
  }
  return { host, port, token: secret };
}

/**
 * The proxies whose X-Forwarded-For the server believes about the client's address: their addresses, CIDR ranges,
 * or proxy-addr's names `loopback`, `linklocal` and `uniquelocal` (the private ranges). Empty: nobody, the peer's
 * address is the client's. The client is the nearest address in the chain that is not a trusted proxy, so an entry
 * the client wrote itself at the left of X-Forwarded-For is never taken. Never "everyone": the sign-in limits
 * count this address, and a client could then claim the owner's address, or a fresh one for every guess.
 */
export type TrustProxy = readonly string[];

const PROXY_RANGE_NAMES = ["loopback", "linklocal", "uniquelocal"];
/** Behind an https PUBLIC_URL TLS ends at a proxy; on the same host or a private network unless told otherwise. */
const DEFAULT_TLS_PROXIES: TrustProxy = PROXY_RANGE_NAMES;

function parseTrustProxy(text: string | undefined, publicUrl: string | undefined): TrustProxy {
  if (text === undefined || text === "")
    return publicUrl?.startsWith("https:") === true ? DEFAULT_TLS_PROXIES : [];
  if (text === "none") return [];
  const entries = text.split(",").map((entry) => entry.trim());
  const valid = entries.every((entry) => {
    if (PROXY_RANGE_NAMES.includes(entry)) return true;
    const [address, prefix, ...rest] = entry.split("/");
    const family = isIP(address ?? "");
    if (family === 0 || rest.length > 0) return false;
    if (prefix === undefined) return true;
    return /^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  });
  if (!valid) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `TRUST_PROXY must be "none" or a comma-separated list of proxy addresses, CIDR ranges and the names ${PROXY_RANGE_NAMES.join(", ")}, not "${text}".`,
      hint: "For one TLS proxy at 10.0.0.5: TRUST_PROXY=10.0.0.5 (with an https PUBLIC_URL the default trusts proxies on loopback and private addresses).",
    });
  }
  return entries;
}

export const USAGE = `Usage: latchkey-server [--host HOST] [--port PORT] [--data-dir DIR] [--open-signup]
       latchkey-server admin create-user EMAIL [--data-dir DIR]
       latchkey-server admin enroll-totp EMAIL [--data-dir DIR]
       latchkey-server admin outbox [--json] [--body] [--limit N] [--data-dir DIR]
       latchkey-server admin backup FILE [--include-secret] [--force] [--data-dir DIR]
       latchkey-server admin restore FILE [--force] [--data-dir DIR]

Starts the Latchkey sync and identity server. It stores only ciphertext and wrapped keys; the CLI signs in
with \`latchkey login --server URL\` (its OpenID provider is at URL/oidc).

Options:
  --host HOST       address to listen on (default ${DEFAULT_HOST}; use 0.0.0.0 behind a proxy only)
  --port PORT       port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
  --data-dir DIR    SQLite database and server secret (default ./${DEFAULT_DATA_DIR}, created mode 0700)
  --open-signup     let anyone who reaches the sign-in page create an account (default: accounts are made
                    with \`admin create-user\` only)
  --metrics-listen HOST:PORT
                    serve Prometheus metrics at GET /metrics on this address, never on the public port
                    (default: off). An address other than loopback needs METRICS_TOKEN
  -h, --help        show this help

Admin commands (they open the same database as the server, with the same --data-dir and DATABASE_URL):
  admin create-user EMAIL   create an account; the password is read from a masked prompt, or from stdin
                            (one line) when stdin is not a terminal — never from the command line;
                            12 to 1024 characters
  admin enroll-totp EMAIL   turn on two-step sign-in for an account; prints an otpauth:// URI ONCE on stdout.
                            It is a secret: hand it to the user (QR code or authenticator app) and discard it
  admin outbox              list the newest notices (security and impact e-mails): status (queued, retrying,
                            sent, failed), kind, recipient, attempts and times; --json for a script
  admin backup FILE         a consistent copy of the database while the server runs (SQLite: VACUUM INTO;
                            PostgreSQL: pg_dump), 0600, with a manifest; the server secret and the escrow key
                            only with --include-secret (docs/operations.md)
  admin restore FILE        into an empty database (--force replaces a non-empty one); refuses a backup made by
                            a newer server

Environment:
  DATABASE_URL            postgres://user:pass@host/db puts the data on PostgreSQL instead of SQLite
  DATABASE_POOL_MAX       connections one process's PostgreSQL pool may open (default 10, at most 100); all
                          processes' pools together must stay under PostgreSQL's max_connections
  PUBLIC_URL              the URL clients reach this server at (default http://HOST:PORT). An https URL means
                          a TLS proxy in front (Secure cookies; see TRUST_PROXY)
  TRUST_PROXY             the proxies whose X-Forwarded-For names the client's address (the address the
                          sign-in limits count): addresses, CIDR ranges and the names loopback, linklocal,
                          uniquelocal, comma-separated, or none. Default: none, or loopback,linklocal,uniquelocal
                          with an https PUBLIC_URL. The client is the nearest address that is not one of them
  LATCHKEY_SERVER_SECRET  root secret for signing keys (at least 32 characters); when unset one is generated
                          once into DIR/server-secret with mode 0600. Never pass it as an argument. Every
                          process of one deployment needs the same secret (or the same data directory).
  LATCHKEY_ESCROW_KEY     the escrow key of vaults with CI enabled (standard base64 of 32 random bytes, e.g.
                          openssl rand -base64 32); when unset one is generated once into DIR/escrow.key with
                          mode 0600. Every process on one database needs the same key: one with another refuses
                          to start. Whoever holds it and the database can open those vaults (docs/ci.md)
  LATCHKEY_OPEN_SIGNUP    1: as --open-signup
  SMTP_URL                smtp://USER:PASS@HOST:PORT or smtps://… (user and password percent-encoded): send the
                          notices (security and impact e-mails of organisations) through this mail server,
                          retrying failures for about 4 hours. It holds a password: it is never logged. A password
                          over smtp:// to another machine needs STARTTLS. Unset: notices stay in the outbox
  SMTP_FROM               the notices' From address (default Latchkey <latchkey@HOST of PUBLIC_URL>)
  CI_OIDC_ISSUERS         the CI platforms whose OIDC ID tokens may pull vaults with CI enabled: PROVIDER=URL,
                          comma-separated, PROVIDER github or gitlab, each URL exactly its tokens' iss (https; http
                          only on a loopback host). Default github=https://token.actions.githubusercontent.com,
                          gitlab=https://gitlab.com; a value replaces the default (list github too to keep it);
                          none trusts no platform
  METRICS_LISTEN          as --metrics-listen (the flag wins)
  METRICS_TOKEN           a bearer token (at least 32 characters) every scrape of the metrics listener must
                          send; required when that listener is not on loopback. Never pass it as an argument
  LOG_LEVEL               pino level: fatal, error, warn, info (default), debug, trace

Examples:
  npm start                                   # from the repository: build, then start on 127.0.0.1:8787
  latchkey-server --port 9000 --data-dir /var/lib/latchkey
  DATABASE_URL=postgres://latchkey@db/latchkey PUBLIC_URL=https://latchkey.example.com latchkey-server --host 0.0.0.0
`;

/** Parses argv and the environment; throws LK_USAGE / LK_CONFIG_INVALID. Null when --help was asked for. */
export function parseServerArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): ServerConfig | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        host: { type: "string" },
        port: { type: "string" },
        "data-dir": { type: "string" },
        "open-signup": { type: "boolean" },
        "metrics-listen": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new LatchkeyError("LK_USAGE", {
      message: err instanceof Error ? err.message : String(err),
      hint: "Run `latchkey-server --help` for the options.",
    });
  }
  if (values.help) return null;

  const portText = values.port ?? String(DEFAULT_PORT);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--port must be a number from 0 to 65535, not "${portText}".`,
      hint: "Run `latchkey-server --help` for the options.",
    });
  }
  const host = values.host ?? DEFAULT_HOST;
  if (host === "") {
    throw new LatchkeyError("LK_USAGE", {
      message: "--host must not be empty.",
      hint: "Run `latchkey-server --help` for the options.",
    });
  }

  const publicUrl = env.PUBLIC_URL ? parsePublicUrl(env.PUBLIC_URL) : undefined;
  return {
    host,
    port,
    dataDir: resolve(cwd, values["data-dir"] ?? DEFAULT_DATA_DIR),
    publicUrl,
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolMax: parsePoolMax(env.DATABASE_POOL_MAX),
    logLevel: env.LOG_LEVEL || "info",
    openSignup: values["open-signup"] === true || env.LATCHKEY_OPEN_SIGNUP === "1",
    trustProxy: parseTrustProxy(env.TRUST_PROXY, publicUrl),
    smtp: parseSmtpConfig(env, publicUrl),
    ciIssuers: parseCiIssuers(env),
    metrics: parseMetricsListen(values["metrics-listen"] ?? env.METRICS_LISTEN, env.METRICS_TOKEN),
  };
}

/** Most connections DATABASE_POOL_MAX may ask for: PostgreSQL's own default limit for all clients. */
const MAX_POOL = 100;

function parsePoolMax(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  const max = Number(text);
  if (!/^\d+$/.test(text) || max < 1 || max > MAX_POOL) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `DATABASE_POOL_MAX must be a number of connections from 1 to ${MAX_POOL}, not "${text}".`,
      hint: "Leave it unset for 10 per process; every process of the deployment holds its own pool, and together they must stay under PostgreSQL's max_connections.",
    });
  }
  return max;
}

function parsePublicUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `PUBLIC_URL is not a URL: "${text}".`,
      hint: "For example PUBLIC_URL=https://latchkey.example.com",
    });
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash || url.username) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: "PUBLIC_URL must be an http(s) URL without credentials, query or fragment.",
      hint: "For example PUBLIC_URL=https://latchkey.example.com",
    });
  }
  return url.href.replace(/\/$/, "");
}

/** The parts of the process the server uses. */
export interface ServerDeps {
  env: Readonly<Record<string, string | undefined>>;
  randomBytes: (n: number) => Uint8Array;
  /** Registers a handler for a process signal. */
  onSignal: (signal: NodeJS.Signals, handler: () => void) => void;
  /** Ends the process at once (a second signal, a shutdown that overran SHUTDOWN_GRACE_MS). */
  exit: (code: number) => void;
  /** Where the JSON log lines go (stdout). */
  logStream?: NodeJS.WritableStream;
  /**
   * The built writer-thread script (dist/sync-writer.mjs): on SQLite, pushes and rewraps then commit on their own
   * thread (sync/writer-thread.ts). Absent, as in tests running the sources, they commit on the event loop.
   */
  syncWriterWorker?: URL;
  /**
   * Adds test-only routes to the application before it listens. Only the process tests' own entry passes it
   * (test/support/test-routes-main.ts, through run-process.ts); the shipped entry has no way to.
   */
  testRoutes?: TestRoutes;
  /**
   * The clock of the API routes (step-up proofs, pairing expiry); default the system clock. Only the process
   * tests' own entry passes one, to move it ahead without waiting.
   */
  now?: () => Date;
}

/** Starts the server; resolves once it listens, with a promise that settles when it has shut down. */
export async function runServer(
  config: ServerConfig,
  deps: ServerDeps,
): Promise<{ url: string; stopped: Promise<void> }> {
  // The data directory holds the secret on PostgreSQL too, so it is made (and checked) before anything else.
  await prepareDataDir(config.dataDir);
  const database = await openDatabase({
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    ...(config.databasePoolMax === undefined ? {} : { poolMax: config.databasePoolMax }),
  });
  let app;
  let identity: Identity | undefined;
  let writer: ThreadWriter | undefined;
  let metricsListener: MetricsListener | undefined;
  try {
    const { secret, source } = await loadServerSecret({
      env: deps.env,
      dataDir: config.dataDir,
      randomBytes: deps.randomBytes,
    });
    const escrow = await loadEscrowKey({
      env: deps.env,
      dataDir: config.dataDir,
      randomBytes: deps.randomBytes,
    });
    const ran = await migrateToLatest(database.db);
    await recordEscrowKey(database.db, escrow.key);
    // Without PUBLIC_URL the issuer is the listening URL, known only after listen (--port 0): set below.
    identity = createIdentity({
      db: database.db,
      secret,
      openSignup: config.openSignup,
      ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
    });
    if (database.dialect === "sqlite" && deps.syncWriterWorker !== undefined) {
      writer = startWriterThread(deps.syncWriterWorker, resolve(config.dataDir, SQLITE_FILE), escrow.key);
    }
    const running = writer;
    const metrics =
      config.metrics === undefined
        ? undefined
        : createMetrics({
            ...(database.poolStats ? { pool: database.poolStats } : {}),
            ...(running ? { writerQueue: () => running.queueDepth() } : {}),
          });
    app = buildApp({
      db: database.db,
      ...(metrics ? { metrics } : {}),
      identity,
      escrowKey: escrow.key,
      ...(writer ? { syncWrites: writer } : {}),
      trustProxy: config.trustProxy,
      ciIssuers: config.ciIssuers,
      randomBytes: deps.randomBytes,
      ...(deps.testRoutes ? { testRoutes: deps.testRoutes } : {}),
      ...(deps.now ? { now: deps.now } : {}),
      logger: loggerOptions({
        level: config.logLevel,
        ...(deps.logStream ? { stream: deps.logStream } : {}),
      }),
    });
    app.log.info(
      {
        event: "server.starting",
        dialect: database.dialect,
        dataDir: config.dataDir,
        secretSource: source,
        escrowKeySource: escrow.source,
        escrowKeyFingerprint: escrow.key.fingerprint,
        migrationsRun: ran,
        ciIssuers: config.ciIssuers.map((issuer) => `${issuer.provider}=${issuer.url}`),
      },
      `database: ${database.dialect}${ran.length > 0 ? `, ran migrations ${ran.join(", ")}` : ", schema current"}; server secret from ${describeSource(source, "LATCHKEY_SERVER_SECRET")}; ` +
        `escrow key ${escrow.key.fingerprint.slice(0, 16)}… from ${describeSource(escrow.source, "LATCHKEY_ESCROW_KEY")}; ` +
        `CI tokens trusted from ${config.ciIssuers.length === 0 ? "no issuer" : config.ciIssuers.map((issuer) => issuer.url).join(", ")}`,
    );
    if (config.openSignup)
      app.log.warn(
        { event: "server.open-signup" },
        "open sign-up is on: anyone reaching the server can make an account",
      );
    if (deps.testRoutes) {
      app.log.warn({ event: "server.test-routes" }, "test-only routes are on");
    }
    await app.listen({ host: config.host, port: config.port }).catch((err: unknown) => {
      throw listenError(err, config);
    });
    if (metrics !== undefined && config.metrics !== undefined) {
      const listen = config.metrics;
      metricsListener = await startMetricsListener(metrics, listen).catch((err: unknown) => {
        throw listenError(err, listen);
      });
      app.log.info(
        { event: "metrics.listening", url: metricsListener.url, token: listen.token !== undefined },
        `metrics: GET ${metricsListener.url}/metrics${listen.token !== undefined ? " with the bearer token METRICS_TOKEN" : ""}`,
      );
    }
  } catch (err) {
    await metricsListener?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await writer?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw err;
  }

  const { port } = app.server.address() as AddressInfo;
  const url =
    config.publicUrl ?? `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  identity.setPublicUrl(url);
  app.log.info(
    { event: "server.listening", url, issuer: identity.issuer, host: config.host, port },
    `latchkey-server listening on ${url}. Sign in from the CLI with \`latchkey login --server ${url}\` ` +
      `(add --device on a machine without a browser); create accounts with \`latchkey-server admin create-user EMAIL\`.`,
  );

  let sender: OutboxSender | undefined;
  if (config.smtp) {
    sender = createOutboxSender({
      db: database.db,
      transport: createSmtpTransport(config.smtp),
      now: deps.now ?? (() => new Date()),
      timers: {
        setTimeout: (run, ms) => setTimeout(run, ms),
        clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
      },
      log: app.log,
    });
    sender.start();
    app.log.info(
      { event: "outbox.smtp", smtp: describeSmtpUrl(config.smtp.url) },
      `notices: sent through ${describeSmtpUrl(config.smtp.url)}`,
    );
  } else {
    app.log.info(
      { event: "outbox.no-smtp" },
      "notices: SMTP_URL is not set, so they stay queued (`latchkey-server admin outbox` lists them)",
    );
  }

  const listening = app;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    listening.log.info({ event: "shutdown.start", signal }, `${signal}: finishing in-flight requests`);
    const force = setTimeout(() => {
      listening.log.error(
        { event: "shutdown.timeout" },
        `requests still running after ${SHUTDOWN_GRACE_MS} ms; exiting`,
      );
      deps.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    // The send in flight is aborted and its notice left due, for the next process to send.
    const senderStopped = sender?.stop();
    const closed = listening.close();
    // fastify closes the listening socket once its preClose hooks have run; say so when it has, so that whoever
    // watches the log knows new connections are now refused while older requests still run.
    while (listening.server.listening) await new Promise((r) => setImmediate(r));
    listening.log.info({ event: "shutdown.listener-closed" }, "no longer accepting connections");
    // Closing the listener closes the connections idle at that moment, and answers sent from then on say
    // "connection: close" (app.ts). A connection whose answer went out earlier but that was still busy (an early
    // 401 or 413 while its request body kept arriving, a long download) turns idle only later, and nothing would
    // close it before its keep-alive timeout, past the grace: so idle connections are closed as they appear.
    const sweep = setInterval(() => listening.server.closeIdleConnections(), IDLE_SWEEP_MS);
    try {
      await closed;
    } finally {
      clearInterval(sweep);
    }
    await senderStopped;
    // Scraped until the last request is answered, so a dashboard sees the drain.
    await metricsListener?.close();
    await writer?.close();
    await database.close();
    clearTimeout(force);
    listening.log.info({ event: "shutdown.done" }, "stopped");
  };
  let stopping: Promise<void> | undefined;
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const stopped = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const handle = (signal: NodeJS.Signals) => () => {
    if (stopping) {
      listening.log.warn({ event: "shutdown.forced", signal }, `${signal} again: exiting without waiting`);
      deps.exit(1);
      return;
    }
    stopping = stop(signal);
    stopping.then(settle.resolve, settle.reject);
  };
  deps.onSignal("SIGTERM", handle("SIGTERM"));
  deps.onSignal("SIGINT", handle("SIGINT"));
  return { url, stopped };
}

/** A failed listen as the catalogue's LK_SERVER_LISTEN_FAILED, saying which option to change; others unchanged. */
export function listenError(err: unknown, config: Pick<ServerConfig, "host" | "port">): unknown {
  const address = `${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`;
  const known: Record<string, { message: string; hint: string }> = {
    EADDRINUSE: {
      message: `Port ${config.port} on ${config.host} is already in use (another latchkey-server, or another program).`,
      hint: "Stop the program that holds it, or pick another port: `latchkey-server --port 9000` (--port 0 picks a free one).",
    },
    EACCES: {
      message: `Not allowed to listen on ${address}: ports below 1024 need privileges.`,
      hint: "Pick a port from 1024 up with `latchkey-server --port PORT`, behind a proxy for port 80 or 443.",
    },
    EADDRNOTAVAIL: {
      message: `${config.host} is not an address of this machine, so latchkey-server cannot listen on ${address}.`,
      hint: "Pass one of this machine's addresses with `latchkey-server --host`: 127.0.0.1 (the default), or 0.0.0.0 for all.",
    },
  };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const described = code === undefined ? undefined : known[code];
  return described === undefined
    ? err
    : new LatchkeyError("LK_SERVER_LISTEN_FAILED", { ...described, cause: err });
}

/** Makes the data directory (mode 0700) when missing; refuses a symbolic link or a non-directory. */
export async function prepareDataDir(dir: string): Promise<void> {
  await checkDataDir(dir, { allowMissing: true });
  await makePrivateDir(dir);
  await checkDataDir(dir);
}

async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for an existing directory.
  await chmod(dir, 0o700);
}

function describeSource(source: string, envName: string): string {
  return source === "env" ? envName : source === "file-created" ? "a new file (mode 0600)" : "its file";
}
