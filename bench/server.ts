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
import { mkdir, writeFile } from "node:fs/promises";
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
}

/** A server scenario: ran (subject, its ceiling, the goal) or not run with the reason. */
export type ServerScenarioResult =
  | {
      readonly id: number;
      readonly title: string;
      readonly status: "ran";
      readonly subject: Throughput;
      readonly baseline: Throughput;
      /** Either a lower bound on subject/baseline or on the subject's own req/s. */
      readonly goal: { readonly kind: "ratio" | "rate"; readonly min: number };
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
      readonly goal: { readonly kind: "ratio" | "rate"; readonly min: number };
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
}

function combine(label: string, rounds: readonly Round[]): Throughput {
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
  };
}

/**
 * Warms both loads up, then runs them in the order subject, ceiling, ceiling, subject (so drift during the run
 * weighs on both alike) and combines each one's two rounds of about `roundSeconds`.
 */
async function sideBySide(
  subject: Load,
  ceiling: Load,
  options: ServerBenchOptions,
): Promise<{ subject: Throughput; ceiling: Throughput }> {
  const sizing = new Map<Load, { amount: number } | { duration: number }>();
  for (const load of [subject, ceiling]) {
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
  const results = new Map<Load, Round[]>([
    [subject, []],
    [ceiling, []],
  ]);
  for (const load of [subject, ceiling, ceiling, subject]) {
    // options() is called afresh for each run: the push load's setupClient numbers its connections per run.
    results.get(load)?.push(await autocannon({ ...load.options(), ...sizing.get(load) }));
  }
  return {
    subject: combine(subject.label, results.get(subject) ?? []),
    ceiling: combine(ceiling.label, results.get(ceiling) ?? []),
  };
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

/** Runs the pull and push scenarios (ids `firstId` and `firstId + 1`). */
export async function runServerBench(
  firstId: number,
  options: ServerBenchOptions,
): Promise<ServerScenarioResult[]> {
  const pullTitle = "server pull, 4 KiB vault, 50 connections";
  const pushTitle = "server push (versioned), 50 vaults × 1 connection";
  const pullGoal = { kind: "ratio" as const, min: options.pullOverCeiling };
  const pushGoal = { kind: "rate" as const, min: options.pushPerSecond };
  const notRun = (reason: string): ServerScenarioResult[] => [
    { id: firstId, title: pullTitle, status: "not-run", reason, goal: pullGoal },
    { id: firstId + 1, title: pushTitle, status: "not-run", reason, goal: pushGoal },
  ];

  let server: LatchkeyServer | null = null;
  let ceiling: { url: string; stop: () => Promise<void> } | null = null;
  try {
    await mkdir(options.temp, { recursive: true });
    options.progress(`${firstId}. starting latchkey-server (SQLite) and logging in`);
    // LATCHKEY_BENCH_SERVER_NODE_OPTIONS reaches the server process alone (e.g. `--cpu-prof --cpu-prof-dir=DIR`
    // to see where a request's time goes, under exactly this load).
    const nodeOptions = process.env.LATCHKEY_BENCH_SERVER_NODE_OPTIONS;
    server = await startLatchkeyServer({
      dataDir: join(options.temp, "server-data"),
      keepLogs: false,
      ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {}),
    });
    let token: string;
    try {
      token = await realToken(server, options.temp);
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
    // One request id for every request of the load: the server signs each answer for its request whatever the id
    // (freshness is the CLI's check), so the work per request is the same as with fresh ones.
    const requestId = randomBytes(16).toString("base64url");
    const auth = {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      [REQUEST_ID_HEADER]: requestId,
    };
    const blob = randomBytes(BLOB_BYTES).toString("base64");
    const wrappedKey = randomBytes(60).toString("base64");
    const url = server.url;

    // The pulled vault, pushed once before timing; its answer is captured and checked.
    const pullId = randomUUID();
    const seed = await fetch(`${url}${API_PREFIX}/vaults/${pullId}`, {
      method: "PUT",
      headers: auth,
      body: pushBody(0, blob, wrappedKey),
    });
    const seedText = await seed.text();
    if (seed.status !== 200) throw new Error(`bench: seeding push answered ${seed.status}: ${seedText}`);
    const pullPath = `${API_PREFIX}/vaults/${pullId}`;
    const pullResponse = await fetch(`${url}${pullPath}`, { headers: auth });
    const pullText = await pullResponse.text();
    if (pullResponse.status !== 200) throw new Error(`bench: pull answered ${pullResponse.status}`);
    const expected = createHmac("sha256", createHash("sha256").update(token).digest())
      .update(`${SIGNATURE_VERSION}\nGET\n${pullPath}\n${requestId}\n200\n`)
      .update(pullText)
      .digest("base64");
    if (pullResponse.headers.get(SIGNATURE_HEADER) !== expected) {
      throw new Error(`bench: the pull answer's ${SIGNATURE_HEADER} does not verify`);
    }
    if ((JSON.parse(pullText) as { encryptedBlob?: string }).encryptedBlob !== blob) {
      throw new Error("bench: the pull answer does not carry the pushed blob");
    }

    ceiling = await startCeiling(
      options.temp,
      { body: pullText, headers: replayableHeaders(pullResponse) },
      { body: seedText, headers: replayableHeaders(seed) },
    );
    const ceilingUrl = ceiling.url;

    options.progress(`${firstId}. pull: latchkey-server | node:http ceiling`);
    const pull = await sideBySide(
      {
        label: `latchkey-server GET ${API_PREFIX}/vaults/:id`,
        options: () => ({
          url: `${url}${API_PREFIX}/vaults/${pullId}`,
          connections: CONNECTIONS,
          headers: auth,
          expectBody: pullText,
        }),
      },
      {
        label: "node:http, same bytes",
        options: () => ({
          url: `${ceilingUrl}${API_PREFIX}/vaults/${pullId}`,
          connections: CONNECTIONS,
          headers: auth,
          expectBody: pullText,
        }),
      },
      options,
    );

    // One vault per connection, its version carried from push to push (and from round to round).
    options.progress(`${firstId + 1}. push: latchkey-server | node:http ceiling`);
    const vaults = Array.from({ length: CONNECTIONS }, () => ({ id: randomUUID(), version: 0 }));
    const pushLoad: Load = {
      label: `latchkey-server PUT ${API_PREFIX}/vaults/:id`,
      byAmount: true,
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
                headers: auth,
                setupRequest: (request) => ({ ...request, body: pushBody(vault.version, blob, wrappedKey) }),
                onResponse: (status, body) => {
                  if (status === 200) vault.version = (JSON.parse(body) as { version: number }).version;
                  // Never expected (each connection owns its vault); counted against the goal, and the client
                  // learns the current version as a real one would rather than failing every push after it.
                  if (status === 409) {
                    const current = (JSON.parse(body) as { currentVersion?: number }).currentVersion;
                    if (typeof current === "number") vault.version = current;
                  }
                },
              },
            ]);
          },
        };
      },
    };
    const push = await sideBySide(
      pushLoad,
      {
        label: "node:http, reads the body, same answer",
        options: () => ({
          url: `${ceilingUrl}${API_PREFIX}/vaults/${pullId}`,
          connections: CONNECTIONS,
          method: "PUT",
          headers: auth,
          body: pushBody(1, blob, wrappedKey),
        }),
      },
      options,
    );

    options.progress(`${firstId + 1}. push: the disk's floor (node:sqlite, the same writes, no server)`);
    const diskFloor = await sqliteCommitFloor(options.temp, options.roundSeconds);

    // Every acknowledged push must be a version of its vault: pull each and compare.
    let lost = 0;
    let acknowledged = 0;
    for (const vault of vaults) {
      const answer = await fetch(`${url}${API_PREFIX}/vaults/${vault.id}`, { headers: auth });
      const version =
        answer.status === 200 ? (JSON.parse(await answer.text()) as { version: number }).version : 0;
      acknowledged += vault.version;
      if (version !== vault.version) lost++;
    }
    if (lost > 0)
      throw new Error(`bench: ${lost} vault(s) are not at the version their last push was acknowledged as`);

    const pullRatio = pull.subject.perSecond / pull.ceiling.perSecond;
    const results: ServerScenarioResult[] = [
      {
        id: firstId,
        title: pullTitle,
        status: "ran",
        subject: pull.subject,
        baseline: pull.ceiling,
        goal: pullGoal,
        met: pullRatio >= pullGoal.min && isClean(pull.subject),
        note:
          `pull: ${pullText.length.toLocaleString("en-US")}-byte signed answer, compared with the captured body on ` +
          `every response (server ${describe(pull.subject)}; ceiling ${describe(pull.ceiling)}).`,
      },
      {
        id: firstId + 1,
        title: pushTitle,
        status: "ran",
        subject: push.subject,
        baseline: push.ceiling,
        goal: pushGoal,
        met: push.subject.perSecond >= pushGoal.min && isClean(push.subject),
        diskFloor,
        note:
          `push: ${pushBody(0, blob, wrappedKey).length.toLocaleString("en-US")}-byte bodies; ` +
          `${acknowledged.toLocaleString("en-US")} versions acknowledged over the warm-up and both rounds, every vault ` +
          `pulled afterwards at exactly its acknowledged version (server ${describe(push.subject)}). ` +
          `One durable commit per push: ${rate(diskFloor)} commits/s of the same writes straight into node:sqlite ` +
          "(WAL, synchronous=FULL, one BEGIN IMMEDIATE … COMMIT per push, no server) — the disk's limit for a " +
          "server that does not group several pushes into one commit.",
      },
    ];
    return results;
  } finally {
    await ceiling?.stop();
    const exit = await server?.stop();
    if (exit !== undefined && exit.code !== 0) {
      options.progress(`latchkey-server exited ${exit.code ?? exit.signal}: ${server?.stderr() ?? ""}`);
    }
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
  const goalText = (goal: { kind: "ratio" | "rate"; min: number }): string =>
    goal.kind === "ratio" ? `≥ ${goal.min.toFixed(2)}× of ceiling` : `≥ ${rate(goal.min)}/s`;
  const lines = [
    "## Server throughput",
    "",
    `autocannon ${CONNECTIONS} keep-alive connections from the bench process; the real \`latchkey-server\` process ` +
      `(SQLite, default settings) and a \`node:http\` process answering the same bytes, same Node. Each load: ` +
      `a warm-up of ${options.warmupPerConnection} requests per connection per target, then two rounds of about ` +
      `${options.roundSeconds} s each in the order server, ceiling, ceiling, server (the push's rounds are a number of ` +
      "requests sized from the warm-up's rate, so that none is left in flight). " +
      "req/s counts 2xx answers only; p99 is the worse round's.",
    "",
    "| # | scenario | server req/s | server p99 (ms) | ceiling | ceiling req/s | ceiling p99 (ms) | ratio | goal | met |",
    "| -: | --- | -: | -: | --- | -: | -: | -: | -: | --- |",
  ];
  for (const r of results) {
    if (r.status === "not-run") {
      lines.push(
        `| ${r.id} | ${r.title} | — | — | — | — | — | — | ${goalText(r.goal)} | not run (${r.reason.replaceAll("|", "\\|")}) |`,
      );
      continue;
    }
    const ratio = r.subject.perSecond / r.baseline.perSecond;
    lines.push(
      `| ${r.id} | ${r.title} | ${rate(r.subject.perSecond)} | ${r.subject.p99.toFixed(1)} | ${r.baseline.label} | ` +
        `${rate(r.baseline.perSecond)} | ${r.baseline.p99.toFixed(1)} | ${ratio.toFixed(2)}× | ${goalText(r.goal)} | ` +
        `${r.met ? "yes" : "**no**"} |`,
    );
  }
  lines.push("");
  const notes = results.flatMap((r) => (r.status === "ran" ? [`- ${r.id}: ${r.note}`] : []));
  if (notes.length > 0) lines.push(...notes, "");
  return lines.join("\n");
}
