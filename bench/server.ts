// The server scenarios of `npm run bench` (issue 6 point 11): throughput and p99 latency of the real
// `latchkey-server` process (SQLite, default settings, JSON request logs on) under 50 concurrent keep-alive
// connections from autocannon, side by side in the same run with a plain `node:http` process that answers the
// same bytes (the ceiling: what Node's HTTP stack alone costs on this machine).
//
// - Pull: GET /api/v1/vaults/:id of a vault whose blob is 4 KiB, with a real bearer token. Every answer is
//   compared with the body captured before timing (a mismatch or a non-2xx counts against it, not for it); the
//   ceiling sends that body with the same headers (signature included).
// - Push: PUT /api/v1/vaults/:id, versioned. Each of the 50 connections owns its own vault and sends the
//   baseVersion of its last acknowledged push, so every push is a real new version; only 2xx answers are counted,
//   and afterwards every vault is pulled to check that its version is exactly the number of pushes acknowledged
//   for it (a 409 storm or a lost update would show). Beside it, the disk's own rate of one durable SQLite commit
//   of the same writes, without the server (sqliteCommitFloor).
//
// The token comes from the real login flow: an account made with `latchkey-server admin create-user` (password
// on stdin), then the built CLI's `latchkey login --server URL` with the scripted browser, and the access token
// read back from that machine's keystore.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  createUser,
  loginCli,
  newMachine,
  startLatchkeyServer,
  storedSession,
  type LatchkeyServer,
} from "../e2e/support/latchkey-server.ts";
import { postgresAvailable, startPostgres, type PostgresCluster } from "../e2e/support/postgres.ts";
import { startRoundRobinProxy, type Proxy } from "./lib/proxy.ts";

/**
 * The sync API's prefix, request id and signature headers, and the signed bytes' first line
 * (packages/core/src/sync-wire.ts; not importable under plain Node).
 */
const API_PREFIX = "/api/v1";
const REQUEST_ID_HEADER = "x-latchkey-request-id";
const SIGNATURE_HEADER = "x-latchkey-signature";
const SIGNATURE_VERSION = "latchkey-sig-v2";

/** Connections autocannon keeps open (issue 6 point 11). */
export const CONNECTIONS = 50;
/** Size of the pulled and pushed vault blob, before base64. */
const BLOB_BYTES = 4096;

/** Options of {@link runServerBench}. */
export interface ServerBenchOptions {
  /** Seconds a timed round aims at; every load runs two rounds (default 5). */
  readonly roundSeconds: number;
  /** Requests per connection in the warm-up of each target, thrown away; it also sizes the rounds. */
  readonly warmupPerConnection: number;
  /** Lower bound on pull req/s ÷ ceiling req/s. */
  readonly pullOverCeiling: number;
  /** Lower bound on acknowledged pushes per second. */
  readonly pushPerSecond: number;
  /** Lower bound on the pull req/s of two server processes behind the proxy over one process's (PostgreSQL). */
  readonly twoProcessesPullOverOne: number;
  /** Lower bound on PostgreSQL's acknowledged pushes per second over SQLite's. */
  readonly postgresPushOverSqlite: number;
  readonly temp: string;
  readonly progress: (message: string) => void;
}

/** What one load (several rounds) achieved. */
export interface Throughput {
  readonly label: string;
  /** 2xx answers per second over the timed rounds. */
  readonly perSecond: number;
  /** The worse round's p99 and p50 latency, ms. */
  readonly p99: number;
  readonly p50: number;
  readonly ok: number;
  /** Non-2xx answers by status, connection errors and timeouts, bodies that differed from the expected one. */
  readonly non2xx: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly mismatches: number;
  readonly seconds: number;
  /** Peak resident memory of the target's server processes during its timed rounds, MiB (sum over processes). */
  readonly rssMiB: number | null;
}

/** A goal: a lower bound on subject/baseline or on the subject's own req/s, or none (shown for information). */
export interface Goal {
  readonly kind: "ratio" | "rate" | "info";
  readonly min: number;
}

/** A server scenario: ran (subject, its ceiling, the goal) or not run with the reason. */
export type ServerScenarioResult =
  | {
      readonly id: number;
      readonly title: string;
      readonly status: "ran";
      readonly subject: Throughput;
      readonly baseline: Throughput;
      readonly goal: Goal;
      readonly met: boolean;
      readonly note: string;
      /** Push only: durable SQLite commits per second of one push's writes, without the server. */
      readonly diskFloor?: number;
    }
  | {
      readonly id: number;
      readonly title: string;
      readonly status: "not-run";
      readonly reason: string;
      readonly goal: Goal;
    };

// autocannon 9 ships no types; only what the bench uses is declared.
interface AutocannonClient {
  setRequests(requests: AutocannonRequest[]): void;
}
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
  onResponse?: (status: number, body: string) => void;
}
interface Histogram {
  readonly p50: number;
  readonly p99: number;
}
interface AutocannonResult {
  readonly latency: Histogram;
  readonly duration: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly mismatches: number;
  readonly statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  expectBody?: string;
  setupClient?: (client: AutocannonClient) => void;
}
/** autocannon's run: an event emitter that is also a promise of the result. */
type AutocannonRun = Promise<AutocannonResult> & { on(event: "response", listener: () => void): unknown };
type Autocannon = (options: AutocannonOptions) => AutocannonRun;
const autocannonRun = createRequire(import.meta.url)("autocannon") as Autocannon;

/** A round's result, with `seconds` from its start to its last answer. */
type Round = AutocannonResult & { readonly seconds: number };

/**
 * Runs one round and times it from its start to its last answer. autocannon's own `duration` is whole seconds
 * for a round of a fixed number of requests (it stops on its 1-second sampling tick), which would round a push
 * rate down to the next whole second: 9,900 pushes could only read 1,650, 1,980 or 2,475/s.
 */
async function autocannon(options: AutocannonOptions): Promise<Round> {
  const start = performance.now();
  let last = start;
  const run = autocannonRun(options);
  run.on("response", () => {
    last = performance.now();
  });
  const result = await run;
  return { ...result, seconds: (last - start) / 1000 };
}

/** One load: what autocannon sends, for the subject or the ceiling. */
interface Load {
  readonly label: string;
  readonly options: () => AutocannonOptions;
  /**
   * Rounds as a number of requests (sized from the warm-up) rather than a duration: for the stateful push, so
   * that autocannon waits for every answer and no push is left applied but unacknowledged when a round ends.
   */
  readonly byAmount?: boolean;
  /** The server processes behind it, whose memory is sampled during its rounds (none for the ceiling). */
  readonly pids?: () => readonly number[];
}

/** Resident memory of `pids` now, MiB (from /proc; null where there is no /proc). */
async function rssMiB(pids: readonly number[]): Promise<number | null> {
  let kib = 0;
  for (const pid of pids) {
    try {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      kib += Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? Number.NaN);
    } catch {
      return null;
    }
  }
  return Number.isFinite(kib) ? kib / 1024 : null;
}

/** Runs one round of `load`, sampling its processes' memory every 200 ms meanwhile; the peak is returned. */
async function sampledRound(
  load: Load,
  options: AutocannonOptions,
): Promise<{ round: Round; rss: number | null }> {
  const pids = load.pids?.() ?? [];
  let peak: number | null = null;
  const sample = async (): Promise<void> => {
    const now = pids.length === 0 ? null : await rssMiB(pids);
    if (now !== null) peak = Math.max(peak ?? 0, now);
  };
  const timer = setInterval(() => void sample(), 200);
  try {
    const round = await autocannon(options);
    await sample();
    return { round, rss: peak };
  } finally {
    clearInterval(timer);
  }
}

function combine(label: string, rounds: readonly Round[], rss: number | null = null): Throughput {
  let ok = 0;
  const non2xx: Record<string, number> = {};
  for (const round of rounds) {
    for (const [status, { count }] of Object.entries(round.statusCodeStats)) {
      if (status.startsWith("2")) ok += Number(count);
      else non2xx[status] = (non2xx[status] ?? 0) + Number(count);
    }
  }
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  return {
    label,
    perSecond: ok / seconds,
    p99: Math.max(...rounds.map((r) => r.latency.p99)),
    p50: Math.max(...rounds.map((r) => r.latency.p50)),
    ok,
    non2xx,
    errors: rounds.reduce((sum, r) => sum + r.errors + r.timeouts, 0),
    mismatches: rounds.reduce((sum, r) => sum + r.mismatches, 0),
    seconds,
    rssMiB: rss,
  };
}

/**
 * Warms every load up, then runs them in order and in reverse (A B C C B A: drift during the run weighs on all
 * alike) and combines each one's two rounds of about `roundSeconds`.
 */
async function alternate(
  loads: readonly Load[],
  options: ServerBenchOptions,
): Promise<Map<Load, Throughput>> {
  const sizing = new Map<Load, { amount: number } | { duration: number }>();
  for (const load of loads) {
    // Two passes: the first pays for the JIT and fills caches, the second's rate sizes amount-based rounds.
    const half = CONNECTIONS * Math.max(1, Math.round(options.warmupPerConnection / 2));
    await autocannon({ ...load.options(), amount: half });
    const warm = combine(load.label, [await autocannon({ ...load.options(), amount: half })]);
    const perConnection = Math.max(10, Math.round((warm.perSecond * options.roundSeconds) / CONNECTIONS));
    sizing.set(
      load,
      load.byAmount === true ? { amount: perConnection * CONNECTIONS } : { duration: options.roundSeconds },
    );
  }
  const rounds = new Map<Load, { rounds: Round[]; rss: number | null }>(
    loads.map((load) => [load, { rounds: [], rss: null }]),
  );
  for (const load of [...loads, ...[...loads].reverse()]) {
    // options() is called afresh for each run: the push load's setupClient numbers its connections per run.
    const { round, rss } = await sampledRound(load, { ...load.options(), ...sizing.get(load) });
    const kept = rounds.get(load);
    if (kept === undefined) continue;
    kept.rounds.push(round);
    if (rss !== null) kept.rss = Math.max(kept.rss ?? 0, rss);
  }
  return new Map(
    loads.map((load) => [
      load,
      combine(load.label, rounds.get(load)?.rounds ?? [], rounds.get(load)?.rss ?? null),
    ]),
  );
}

/** The ceiling: a node:http process that answers GET with `pull` and anything else with `push`, read in full. */
async function startCeiling(
  temp: string,
  pull: { body: string; headers: Record<string, string> },
  push: { body: string; headers: Record<string, string> },
): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = join(temp, "ceiling.mjs");
  await writeFile(join(temp, "ceiling.json"), JSON.stringify({ pull, push }));
  await writeFile(
    script,
    [
      'import { createServer } from "node:http";',
      'import { readFileSync } from "node:fs";',
      "const { pull, push } = JSON.parse(readFileSync(process.argv[2], 'utf8'));",
      "const pullBody = Buffer.from(pull.body); const pushBody = Buffer.from(push.body);",
      "const server = createServer((req, res) => {",
      "  if (req.method === 'GET') { res.writeHead(200, pull.headers); res.end(pullBody); return; }",
      "  req.on('data', () => {});",
      "  req.on('end', () => { res.writeHead(200, push.headers); res.end(pushBody); });",
      "});",
      "server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify(server.address()) + '\\n'));",
      "process.on('SIGTERM', () => server.close(() => process.exit(0)));",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(process.execPath, [script, join(temp, "ceiling.json")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const line = text.split("\n")[0];
      if (text.includes("\n") && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    void exited.then(() => reject(new Error("bench: the node:http ceiling exited before listening")));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * The disk's own limit on versioned pushes: a child process doing what one push does to SQLite (a conditional
 * UPDATE of the head row with the 4 KiB blob, a version row, an audit row, in one BEGIN IMMEDIATE … COMMIT) in a
 * tight loop for `seconds`, with the server's pragmas (WAL, synchronous=FULL). No HTTP, no JSON, no auth: a
 * server that commits (and so fsyncs) once per push cannot acknowledge more pushes per second than this on this
 * disk; going past it takes group commit, several pushes acknowledged by one COMMIT.
 */
async function sqliteCommitFloor(temp: string, seconds: number): Promise<number> {
  const script = join(temp, "sqlite-floor.mjs");
  await writeFile(
    script,
    [
      'import { DatabaseSync } from "node:sqlite";',
      'import { randomBytes } from "node:crypto";',
      "const [path, seconds, blobBytes] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];",
      "const db = new DatabaseSync(path);",
      'db.exec("PRAGMA journal_mode = WAL"); db.exec("PRAGMA synchronous = FULL");',
      'db.exec("create table heads (vault_id text, user_id text, version integer, blob text, updated_at text, primary key (vault_id, user_id))");',
      'db.exec("create table versions (vault_id text, user_id text, version integer, created_at text, primary key (vault_id, user_id, version))");',
      'db.exec("create table audit (id integer primary key, user_id text, action text, vault_id text, version integer, metadata text, created_at text)");',
      'const blob = randomBytes(blobBytes).toString("base64");',
      'const insertHead = db.prepare("insert into heads values (?, ?, 0, ?, ?)");',
      "for (let i = 0; i < 50; i++) insertHead.run(`v${i}`, 'u', blob, new Date().toISOString());",
      'const update = db.prepare("update heads set version = ?, blob = ?, updated_at = ? where vault_id = ? and user_id = ? and version = ?");',
      'const version = db.prepare("insert into versions values (?, ?, ?, ?)");',
      'const audit = db.prepare("insert into audit (user_id, action, vault_id, version, metadata, created_at) values (?, ?, ?, ?, ?, ?)");',
      "const versions = new Array(50).fill(0); let commits = 0; const start = performance.now();",
      "while (performance.now() - start < seconds * 1000) {",
      "  const i = commits % 50; const next = versions[i] + 1; const now = new Date().toISOString();",
      '  db.exec("begin immediate");',
      "  if (update.run(next, blob, now, `v${i}`, 'u', versions[i]).changes !== 1) throw new Error('lost update');",
      "  version.run(`v${i}`, 'u', next, now);",
      "  audit.run('u', 'vault.push', `v${i}`, next, '{}', now);",
      '  db.exec("commit"); versions[i] = next; commits++;',
      "}",
      "process.stdout.write(String(commits / ((performance.now() - start) / 1000)));",
    ].join("\n"),
  );
  const child = spawn(
    process.execPath,
    [script, join(temp, "sqlite-floor.db"), String(seconds), String(BLOB_BYTES)],
    { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const rate = Number(out);
  if (code !== 0 || !Number.isFinite(rate))
    throw new Error(`bench: the SQLite floor failed (${code}): ${err}`);
  return rate;
}

/** The response headers a client sees, minus the per-connection and per-response ones the ceiling sets itself. */
function replayableHeaders(response: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!["date", "connection", "keep-alive", "transfer-encoding"].includes(name)) headers[name] = value;
  });
  return headers;
}

function pushBody(baseVersion: number, blob: string, wrappedKey: string): string {
  return JSON.stringify({ encryptedBlob: blob, wrappedKey, name: "bench-vault", baseVersion });
}

/** Logs a user in through the real flow and returns the access token from the CLI's keystore. */
async function realToken(server: LatchkeyServer, temp: string): Promise<string> {
  const credentials = { email: "bench@example.com", password: randomBytes(18).toString("base64url") };
  await createUser(server, credentials.email, credentials.password);
  const machine = await newMachine(temp, "bench");
  const login = await loginCli(machine, server, credentials);
  if (login.code !== 0) throw new Error(`latchkey login --server exited ${login.code}:\n${login.stderr}`);
  const session = await storedSession(machine, server);
  const token = session?.access_token;
  if (typeof token !== "string") throw new Error("the CLI stored no access_token for the server session");
  return token;
}

/** A pull load of `path` on `url`, every answer compared with `expected`. */
function pullLoad(
  label: string,
  url: string,
  path: string,
  headers: Record<string, string>,
  expected: string,
  pids?: () => readonly number[],
): Load {
  return {
    label,
    options: () => ({ url: `${url}${path}`, connections: CONNECTIONS, headers, expectBody: expected }),
    ...(pids ? { pids } : {}),
  };
}

/** One vault per connection, its version carried from push to push (and from round to round). */
interface PushVault {
  readonly id: string;
  version: number;
}

/** A versioned push load on `url`: each connection pushes its own vault of `vaults`. */
function pushLoad(
  label: string,
  url: string,
  headers: Record<string, string>,
  vaults: readonly PushVault[],
  body: (baseVersion: number) => string,
  pids?: () => readonly number[],
): Load {
  return {
    label,
    byAmount: true,
    ...(pids ? { pids } : {}),
    options: (): AutocannonOptions => {
      let next = 0;
      return {
        url,
        connections: CONNECTIONS,
        setupClient: (client) => {
          const vault = vaults[next++ % vaults.length];
          if (vault === undefined) return;
          client.setRequests([
            {
              method: "PUT",
              path: `${API_PREFIX}/vaults/${vault.id}`,
              headers,
              setupRequest: (request) => ({ ...request, body: body(vault.version) }),
              onResponse: (status, text) => {
                if (status === 200) vault.version = (JSON.parse(text) as { version: number }).version;
                // Never expected (each connection owns its vault); counted against the goal, and the client
                // learns the current version as a real one would rather than failing every push after it.
                if (status === 409) {
                  const current = (JSON.parse(text) as { currentVersion?: number }).currentVersion;
                  if (typeof current === "number") vault.version = current;
                }
              },
            },
          ]);
        },
      };
    },
  };
}

/** A target's seeded pull vault: its path, the answer captured (signature and blob checked) and its headers. */
interface SeededPull {
  readonly path: string;
  readonly text: string;
  readonly response: Response;
  readonly seed: Response;
  readonly seedText: string;
}

/** Pushes one vault to `url` and pulls it back, checking the answer's signature and blob. */
async function seedPull(
  url: string,
  token: string,
  auth: Record<string, string>,
  requestId: string,
  blob: string,
  wrappedKey: string,
): Promise<SeededPull> {
  const path = `${API_PREFIX}/vaults/${randomUUID()}`;
  const seed = await fetch(`${url}${path}`, {
    method: "PUT",
    headers: auth,
    body: pushBody(0, blob, wrappedKey),
  });
  const seedText = await seed.text();
  if (seed.status !== 200) throw new Error(`bench: seeding push answered ${seed.status}: ${seedText}`);
  const response = await fetch(`${url}${path}`, { headers: auth });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`bench: pull answered ${response.status}`);
  const expected = createHmac("sha256", createHash("sha256").update(token).digest())
    .update(`${SIGNATURE_VERSION}\nGET\n${path}\n${requestId}\n200\n`)
    .update(text)
    .digest("base64");
  if (response.headers.get(SIGNATURE_HEADER) !== expected) {
    throw new Error(`bench: the pull answer's ${SIGNATURE_HEADER} from ${url} does not verify`);
  }
  if ((JSON.parse(text) as { encryptedBlob?: string }).encryptedBlob !== blob) {
    throw new Error("bench: the pull answer does not carry the pushed blob");
  }
  return { path, text, response, seed, seedText };
}

/** Pulls every vault of `vaults` from `url`: how many are not at their last acknowledged version, and the total. */
async function checkVaults(
  url: string,
  auth: Record<string, string>,
  vaults: readonly PushVault[],
): Promise<{ lost: number; acknowledged: number }> {
  let lost = 0;
  let acknowledged = 0;
  for (const vault of vaults) {
    const answer = await fetch(`${url}${API_PREFIX}/vaults/${vault.id}`, { headers: auth });
    const version =
      answer.status === 200 ? (JSON.parse(await answer.text()) as { version: number }).version : 0;
    acknowledged += vault.version;
    if (version !== vault.version) lost++;
  }
  return { lost, acknowledged };
}

/** The PostgreSQL targets: one cluster, two server processes on one database, the proxy in front of both. */
interface PostgresTargets {
  cluster: PostgresCluster;
  one: LatchkeyServer;
  two: LatchkeyServer;
  proxy: Proxy;
}

/** Scenario ids after the server's 9 and 10 and the organisations' 11 and 12. */
const SCALE_FIRST_ID = 13;

/**
 * Runs the pull and push scenarios (ids `firstId` and `firstId + 1`: SQLite against the node:http ceiling) and,
 * in the same alternation, the same loads against SQLite with the metrics listener on, one PostgreSQL server
 * process, and two on the same database behind the round-robin proxy (ids 13 to 17).
 */
export async function runServerBench(
  firstId: number,
  options: ServerBenchOptions,
): Promise<ServerScenarioResult[]> {
  const pullTitle = "server pull, 4 KiB vault, 50 connections";
  const pushTitle = "server push (versioned), 50 vaults × 1 connection";
  const pullGoal: Goal = { kind: "ratio", min: options.pullOverCeiling };
  const pushGoal: Goal = { kind: "rate", min: options.pushPerSecond };
  const scaleTitles: readonly [string, Goal][] = [
    [
      "PostgreSQL pull, 2 processes behind a round-robin proxy",
      { kind: "ratio", min: options.twoProcessesPullOverOne },
    ],
    ["PostgreSQL push (versioned), 1 process", { kind: "ratio", min: options.postgresPushOverSqlite }],
    ["PostgreSQL push (versioned), 2 processes behind the proxy", { kind: "info", min: 0 }],
    ["SQLite pull, metrics listener on and scraped every second", { kind: "info", min: 0 }],
    ["SQLite push, metrics listener on and scraped every second", { kind: "info", min: 0 }],
  ];
  const notRun = (reason: string): ServerScenarioResult[] => [
    { id: firstId, title: pullTitle, status: "not-run", reason, goal: pullGoal },
    { id: firstId + 1, title: pushTitle, status: "not-run", reason, goal: pushGoal },
    ...scaleTitles.map(([title, goal], i): ServerScenarioResult => ({
      id: SCALE_FIRST_ID + i,
      title,
      status: "not-run",
      reason,
      goal,
    })),
  ];

  let server: LatchkeyServer | null = null;
  let metered: LatchkeyServer | null = null;
  let ceiling: { url: string; stop: () => Promise<void> } | null = null;
  const postgres: Partial<PostgresTargets> = {};
  try {
    await mkdir(options.temp, { recursive: true });
    options.progress(`${firstId}. starting latchkey-server (SQLite) and logging in`);
    // LATCHKEY_BENCH_SERVER_NODE_OPTIONS reaches the server processes alone (e.g. `--cpu-prof --cpu-prof-dir=DIR`
    // to see where a request's time goes, under exactly this load).
    const nodeOptions = process.env.LATCHKEY_BENCH_SERVER_NODE_OPTIONS;
    const serverEnv: Record<string, string> = nodeOptions ? { NODE_OPTIONS: nodeOptions } : {};
    const sqliteDir = join(options.temp, "server-data");
    server = await startLatchkeyServer({ dataDir: sqliteDir, keepLogs: false, env: serverEnv });
    let token: string;
    try {
      token = await realToken(server, join(options.temp, "sqlite-login"));
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const reason = text
        .split("\n")
        .filter((line) => line.trim() !== "")
        .slice(0, 2)
        .join(" ");
      options.progress(`${firstId}. server scenarios not run: ${reason}`);
      return notRun(`no login: ${reason}`);
    }
    // The same data directory and secret, with the metrics listener on: the same accounts, token and vaults.
    metered = await startLatchkeyServer({
      dataDir: sqliteDir,
      keepLogs: false,
      secret: server.env.LATCHKEY_SERVER_SECRET ?? "",
      env: { ...serverEnv, METRICS_LISTEN: "127.0.0.1:0" },
    });
    const metricsUrl = String((await metered.waitForEvent("metrics.listening")).url);

    // One request id for every request of the load: the server signs each answer for its request whatever the id
    // (freshness is the CLI's check), so the work per request is the same as with fresh ones.
    const requestId = randomBytes(16).toString("base64url");
    const headersFor = (bearer: string): Record<string, string> => ({
      authorization: `Bearer ${bearer}`,
      "content-type": "application/json",
      [REQUEST_ID_HEADER]: requestId,
    });
    const auth = headersFor(token);
    const blob = randomBytes(BLOB_BYTES).toString("base64");
    const wrappedKey = randomBytes(60).toString("base64");
    const body = (baseVersion: number): string => pushBody(baseVersion, blob, wrappedKey);
    const url = server.url;
    const sqlitePull = await seedPull(url, token, auth, requestId, blob, wrappedKey);
    const meteredPull = await seedPull(metered.url, token, auth, requestId, blob, wrappedKey);

    ceiling = await startCeiling(
      options.temp,
      { body: sqlitePull.text, headers: replayableHeaders(sqlitePull.response) },
      { body: sqlitePull.seedText, headers: replayableHeaders(sqlitePull.seed) },
    );
    const ceilingUrl = ceiling.url;

    // PostgreSQL: a throwaway cluster, two processes on one database sharing the data directory (secret, escrow
    // key), started one after the other so the second finds what the first wrote.
    let postgresReason: string | null = null;
    let pgToken = "";
    const available = postgresAvailable();
    if (!available.ok) {
      postgresReason = available.reason ?? "PostgreSQL is not available";
    } else {
      options.progress(`${SCALE_FIRST_ID}. starting PostgreSQL, two latchkey-server processes and the proxy`);
      postgres.cluster = await startPostgres();
      const pgDir = join(options.temp, "server-data-pg");
      postgres.one = await startLatchkeyServer({
        dataDir: pgDir,
        databaseUrl: postgres.cluster.url,
        keepLogs: false,
        env: serverEnv,
      });
      postgres.two = await startLatchkeyServer({
        dataDir: pgDir,
        databaseUrl: postgres.cluster.url,
        keepLogs: false,
        secret: postgres.one.env.LATCHKEY_SERVER_SECRET ?? "",
        env: serverEnv,
      });
      postgres.proxy = await startRoundRobinProxy(options.temp, [postgres.one.url, postgres.two.url]);
      pgToken = await realToken(postgres.one, join(options.temp, "pg-login"));
    }
    const pg = postgresReason === null ? (postgres as PostgresTargets) : null;
    const pgAuth = headersFor(pgToken);
    const pgPull =
      pg === null ? null : await seedPull(pg.one.url, pgToken, pgAuth, requestId, blob, wrappedKey);
    if (pg !== null && pgPull !== null) {
      // The second process and the proxy answer the same vault with the same bytes (and signature).
      for (const via of [pg.two.url, pg.proxy.url]) {
        const again = await fetch(`${via}${pgPull.path}`, { headers: pgAuth });
        if ((await again.text()) !== pgPull.text) throw new Error(`bench: ${via} answers another pull body`);
      }
    }

    const pidsOf =
      (...servers: readonly (LatchkeyServer | undefined)[]) =>
      (): number[] =>
        servers.flatMap((s) => (s?.child.pid === undefined ? [] : [s.child.pid]));
    const sqliteLabel = "SQLite, 1 process";
    const meteredLabel = "SQLite, 1 process, metrics on";
    const pgOneLabel = "PostgreSQL, 1 process";
    const pgTwoLabel = "PostgreSQL, 2 processes via proxy";
    const ceilingLabel = "node:http, same bytes";

    // Scraped as Prometheus would, but every second rather than every 15: the metered server's cost includes them.
    let scrapes = 0;
    let badScrapes = 0;
    const scraper = setInterval(() => {
      void fetch(`${metricsUrl}/metrics`)
        .then(async (answer) => {
          const text = await answer.text();
          if (answer.status === 200 && text.includes("latchkey_vault_pulls_total")) scrapes++;
          else badScrapes++;
        })
        .catch(() => badScrapes++);
    }, 1000);

    let pulls: Map<Load, Throughput>;
    let pushes: Map<Load, Throughput>;
    const vaultSets = new Map<string, PushVault[]>();
    const vaultsFor = (label: string): PushVault[] => {
      const vaults = Array.from({ length: CONNECTIONS }, () => ({ id: randomUUID(), version: 0 }));
      vaultSets.set(label, vaults);
      return vaults;
    };
    const pullLoads: Load[] = [
      pullLoad(sqliteLabel, url, sqlitePull.path, auth, sqlitePull.text, pidsOf(server)),
      pullLoad(meteredLabel, metered.url, meteredPull.path, auth, meteredPull.text, pidsOf(metered)),
      pullLoad(ceilingLabel, ceilingUrl, sqlitePull.path, auth, sqlitePull.text),
    ];
    const pushLoads: Load[] = [
      pushLoad(sqliteLabel, url, auth, vaultsFor(sqliteLabel), body, pidsOf(server)),
      pushLoad(meteredLabel, metered.url, auth, vaultsFor(meteredLabel), body, pidsOf(metered)),
      {
        label: "node:http, reads the body, same answer",
        options: () => ({
          url: `${ceilingUrl}${sqlitePull.path}`,
          connections: CONNECTIONS,
          method: "PUT",
          headers: auth,
          body: body(1),
        }),
      },
    ];
    if (pg !== null && pgPull !== null) {
      pullLoads.push(
        pullLoad(pgOneLabel, pg.one.url, pgPull.path, pgAuth, pgPull.text, pidsOf(pg.one)),
        pullLoad(pgTwoLabel, pg.proxy.url, pgPull.path, pgAuth, pgPull.text, pidsOf(pg.one, pg.two)),
      );
      pushLoads.push(
        pushLoad(pgOneLabel, pg.one.url, pgAuth, vaultsFor(pgOneLabel), body, pidsOf(pg.one)),
        pushLoad(pgTwoLabel, pg.proxy.url, pgAuth, vaultsFor(pgTwoLabel), body, pidsOf(pg.one, pg.two)),
      );
    }
    try {
      options.progress(`${firstId}. pull: ${pullLoads.map((l) => l.label).join(" | ")}`);
      pulls = await alternate(pullLoads, options);
      options.progress(`${firstId + 1}. push: ${pushLoads.map((l) => l.label).join(" | ")}`);
      pushes = await alternate(pushLoads, options);
    } finally {
      clearInterval(scraper);
    }
    const pullOf = (label: string): Throughput | undefined =>
      [...pulls.values()].find((t) => t.label === label);
    const pushOf = (label: string): Throughput | undefined =>
      [...pushes.values()].find((t) => t.label === label);

    options.progress(`${firstId + 1}. push: the disk's floor (node:sqlite, the same writes, no server)`);
    const diskFloor = await sqliteCommitFloor(options.temp, options.roundSeconds);

    // Every acknowledged push must be a version of its vault: pull each and compare.
    const checks = new Map<string, { lost: number; acknowledged: number }>();
    for (const [label, vaults] of vaultSets) {
      const via =
        label === meteredLabel ? metered.url : label.startsWith("PostgreSQL") ? (pg?.one.url ?? url) : url;
      const check = await checkVaults(via, label.startsWith("PostgreSQL") ? pgAuth : auth, vaults);
      if (check.lost > 0)
        throw new Error(
          `bench: ${label}: ${check.lost} vault(s) are not at the version their last push was acknowledged as`,
        );
      checks.set(label, check);
    }

    const need = (t: Throughput | undefined, what: string): Throughput => {
      if (t === undefined) throw new Error(`bench: no result for ${what}`);
      return t;
    };
    const sqlitePullT = need(pullOf(sqliteLabel), "the SQLite pull");
    const ceilingPullT = need(pullOf(ceilingLabel), "the ceiling's pull");
    const sqlitePushT = need(pushOf(sqliteLabel), "the SQLite push");
    const ceilingPushT = need(pushOf("node:http, reads the body, same answer"), "the ceiling's push");
    const pullRatio = sqlitePullT.perSecond / ceilingPullT.perSecond;
    const results: ServerScenarioResult[] = [
      {
        id: firstId,
        title: pullTitle,
        status: "ran",
        subject: sqlitePullT,
        baseline: ceilingPullT,
        goal: pullGoal,
        met: pullRatio >= pullGoal.min && isClean(sqlitePullT),
        note:
          `pull: ${sqlitePull.text.length.toLocaleString("en-US")}-byte signed answer, compared with the captured body on ` +
          `every response (server ${describe(sqlitePullT)}; ceiling ${describe(ceilingPullT)}).`,
      },
      {
        id: firstId + 1,
        title: pushTitle,
        status: "ran",
        subject: sqlitePushT,
        baseline: ceilingPushT,
        goal: pushGoal,
        met: sqlitePushT.perSecond >= pushGoal.min && isClean(sqlitePushT),
        diskFloor,
        note:
          `push: ${body(0).length.toLocaleString("en-US")}-byte bodies; ` +
          `${(checks.get(sqliteLabel)?.acknowledged ?? 0).toLocaleString("en-US")} versions acknowledged over the warm-up and both rounds, every vault ` +
          `pulled afterwards at exactly its acknowledged version (server ${describe(sqlitePushT)}). ` +
          `One durable commit per push: ${rate(diskFloor)} commits/s of the same writes straight into node:sqlite ` +
          "(WAL, synchronous=FULL, one BEGIN IMMEDIATE … COMMIT per push, no server) — the disk's limit for a " +
          "server that does not group several pushes into one commit.",
      },
    ];
    const scale = (
      i: number,
      subject: Throughput | undefined,
      baseline: Throughput | undefined,
      note: string,
    ): ServerScenarioResult => {
      const [title, goal] = scaleTitles[i] ?? ["?", { kind: "info", min: 0 }];
      const id = SCALE_FIRST_ID + i;
      if (subject === undefined || baseline === undefined) {
        return { id, title, status: "not-run", reason: postgresReason ?? "no result", goal };
      }
      const ratio = subject.perSecond / baseline.perSecond;
      const met = goal.kind === "info" ? isClean(subject) : ratio >= goal.min && isClean(subject);
      return {
        id,
        title,
        status: "ran",
        subject,
        baseline,
        goal,
        met,
        note: `${note} (${describe(subject)})`,
      };
    };
    const pgAcknowledged = (label: string): string =>
      (checks.get(label)?.acknowledged ?? 0).toLocaleString("en-US");
    results.push(
      scale(
        0,
        pullOf(pgTwoLabel),
        pullOf(pgOneLabel),
        "two processes on one PostgreSQL database, each connection of the load sent to one of them in turn by a " +
          "TCP proxy in its own process; compared with one process reached directly, so the proxy's hop counts against it",
      ),
      scale(
        1,
        pushOf(pgOneLabel),
        sqlitePushT,
        `${pgAcknowledged(pgOneLabel)} versions acknowledged, every vault pulled afterwards at exactly its acknowledged version; compared with SQLite's push of the same run`,
      ),
      scale(
        2,
        pushOf(pgTwoLabel),
        pushOf(pgOneLabel),
        `${pgAcknowledged(pgTwoLabel)} versions acknowledged and checked; compared with one process`,
      ),
      scale(
        3,
        pullOf(meteredLabel),
        sqlitePullT,
        `the same data directory as the SQLite row, with --metrics-listen; ${scrapes} scrapes answered during the run, ${badScrapes} failed`,
      ),
      scale(
        4,
        pushOf(meteredLabel),
        sqlitePushT,
        `${(checks.get(meteredLabel)?.acknowledged ?? 0).toLocaleString("en-US")} versions acknowledged and checked; compared with the SQLite row without metrics`,
      ),
    );
    if (badScrapes > 0) throw new Error(`bench: ${badScrapes} metrics scrape(s) failed`);
    return results;
  } finally {
    await ceiling?.stop();
    await postgres.proxy?.stop();
    for (const running of [server, metered, postgres.one, postgres.two]) {
      const exit = await running?.stop();
      if (exit !== undefined && exit.code !== 0) {
        options.progress(`latchkey-server exited ${exit.code ?? exit.signal}: ${running?.stderr() ?? ""}`);
      }
    }
    await postgres.cluster?.stop();
  }
}

function isClean(t: Throughput): boolean {
  return Object.keys(t.non2xx).length === 0 && t.errors === 0 && t.mismatches === 0;
}

function describe(t: Throughput): string {
  const non2xx = Object.entries(t.non2xx)
    .map(([status, n]) => `${n} × ${status}`)
    .join(", ");
  return (
    `${t.ok.toLocaleString("en-US")} × 2xx in ${t.seconds.toFixed(1)} s` +
    (non2xx === "" ? "" : `, ${non2xx}`) +
    `, ${t.errors} errors, ${t.mismatches} mismatched bodies`
  );
}

const rate = (n: number): string => Math.round(n).toLocaleString("en-US");

/** Whether a server scenario missed its goal (or did not run). */
export function serverGoalMissed(r: ServerScenarioResult): boolean {
  return r.status === "ran" && !r.met;
}

/** The markdown section of the server scenarios, appended to bench/results/latest.md. */
export function renderServerMarkdown(
  results: readonly ServerScenarioResult[],
  options: ServerBenchOptions,
): string {
  if (results.length === 0) return "";
  const goalText = (goal: Goal): string =>
    goal.kind === "info"
      ? "info"
      : goal.kind === "ratio"
        ? `≥ ${goal.min.toFixed(2)}×`
        : `≥ ${rate(goal.min)}/s`;
  const mib = (t: Throughput): string => (t.rssMiB === null ? "—" : t.rssMiB.toFixed(0));
  const lines = [
    "## Server throughput",
    "",
    `autocannon ${CONNECTIONS} keep-alive connections from the bench process against real \`latchkey-server\` ` +
      "processes (default settings) and a `node:http` process answering the same bytes, same Node. Each operation " +
      `alternates all its targets: a warm-up of ${options.warmupPerConnection} requests per connection per target, then ` +
      `two rounds of about ${options.roundSeconds} s each, in order and in reverse (the push's rounds are a number of ` +
      "requests sized from the warm-up's rate, so that none is left in flight). req/s counts 2xx answers only; p99 is " +
      "the worse round's; RSS is the peak resident memory of the target's server processes during its rounds " +
      "(sampled every 200 ms, summed over processes).",
    "",
    "| # | scenario | req/s | p99 (ms) | RSS (MiB) | compared with | its req/s | its p99 (ms) | ratio | goal | met |",
    "| -: | --- | -: | -: | -: | --- | -: | -: | -: | -: | --- |",
  ];
  for (const r of results) {
    if (r.status === "not-run") {
      lines.push(
        `| ${r.id} | ${r.title} | — | — | — | — | — | — | — | ${goalText(r.goal)} | not run (${r.reason.replaceAll("|", "\\|")}) |`,
      );
      continue;
    }
    const ratio = r.subject.perSecond / r.baseline.perSecond;
    const met = r.goal.kind === "info" ? (r.met ? "—" : "**unclean**") : r.met ? "yes" : "**no**";
    lines.push(
      `| ${r.id} | ${r.title} | ${rate(r.subject.perSecond)} | ${r.subject.p99.toFixed(1)} | ${mib(r.subject)} | ` +
        `${r.baseline.label} | ${rate(r.baseline.perSecond)} | ${r.baseline.p99.toFixed(1)} | ${ratio.toFixed(2)}× | ` +
        `${goalText(r.goal)} | ${met} |`,
    );
  }
  lines.push("");
  // Every target once per operation, from the same alternation.
  const targets = new Map<string, { pull?: Throughput; push?: Throughput }>();
  for (const r of results) {
    if (r.status !== "ran") continue;
    const op = r.title.includes("pull") ? "pull" : "push";
    for (const t of [r.subject, r.baseline]) {
      const key = t.label.startsWith("node:http") ? "node:http ceiling" : t.label;
      targets.set(key, { ...targets.get(key), [op]: t });
    }
  }
  lines.push(
    "| target | pull req/s | pull p99 (ms) | pull RSS (MiB) | push req/s | push p99 (ms) | push RSS (MiB) |",
    "| --- | -: | -: | -: | -: | -: | -: |",
  );
  const cell = (t: Throughput | undefined): string =>
    t === undefined ? "— | — | —" : `${rate(t.perSecond)} | ${t.p99.toFixed(1)} | ${mib(t)}`;
  for (const [label, { pull, push }] of targets) {
    lines.push(
      `| ${label.startsWith("node:http") ? "node:http ceiling" : label} | ${cell(pull)} | ${cell(push)} |`,
    );
  }
  lines.push("");
  const notes = results.flatMap((r) => (r.status === "ran" ? [`- ${r.id}: ${r.note}`] : []));
  if (notes.length > 0) lines.push(...notes, "");
  return lines.join("\n");
}
