// `npm run bench`: each scenario measured side by side with its floor (`node -e 0`, same binary) or peer
// (`secret-tool`, `dotenvx`, the same command on a small vault) in the same run, alternating in random order per round; medians, ratios, goals. Writes
// bench/results/latest.md and prints the same markdown on stdout (progress goes to stderr).
//
// Options (flags win over the environment):
//   --runs N     timed runs per command (BENCH_RUNS, default 30, at least 10)
//   --warmup N   warm-up rounds thrown away (BENCH_WARMUP, default 3)
//   --strict     exit 1 when a goal is not met or a scenario could not run (otherwise both are only reported)
//   --cli PATH   bench another build of the CLI (default packages/cli/bin/latchkey.mjs, the installed launcher)
//   --only cli|server|teams|ci   run only the CLI scenarios (1–8), the server's (9, 10; bench/server.ts), the
//                organisations' (11, 12; bench/teams.ts) or the CI job's pull (18; bench/ci.ts), and write
//                bench/results/latest-<part>.md instead of latest.md
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startKeychain, type KeychainSession } from "./lib/keychain.ts";
import {
  renderMarkdown,
  verdict,
  type Baseline,
  type ComparisonResult,
  type RunInfo,
  type ScenarioResult,
} from "./lib/report.ts";
import { alternate, runChecked, type BenchCommand } from "./lib/spawn.ts";
import { pairedRatio, summarize } from "./lib/stats.ts";
import { runCiBench } from "./ci.ts";
import { runTeamsBench } from "./teams.ts";
import {
  renderServerMarkdown,
  runServerBench,
  serverGoalMissed,
  type ServerBenchOptions,
  type ServerScenarioResult,
} from "./server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEFAULT_CLI = join(ROOT, "packages/cli/bin/latchkey.mjs");
const RESULTS = join(ROOT, "bench/results/latest.md");
/** The Node the bench runs on (Node 24 from the root devDependency under npm scripts): CLI and floor alike. */
const NODE = process.execPath;
const ACCOUNT = "bench-account";
/** Secrets in the vault of `latchkey run` and in dotenvx's encrypted .env (issue 3). */
const RUN_SECRETS = 20;
/** Vault sizes `env set` is timed on: the subject and its baseline. */
const LARGE_VAULT = 10_000;
const SMALL_VAULT = 10;
/** The one key every timed `env set` writes (the same key and value each run, so the vault never grows). */
const SET_ASSIGNMENT = "BENCH_SET=bench-value";

/** Goals: upper bounds on median(scenario) / median(baseline). See bench/README.md for the reasoning. */
const GOALS = {
  version: 1.15,
  fileGet: 1.5,
  keychainGetOverFloorPlusPeer: 1.25,
  runOverNode: 1.6,
  /** Latchkey at least 5× faster than dotenvx: latchkey / dotenvx ≤ 0.2. */
  runOverDotenvx: 0.2,
  setLargeVaultOverSmall: 1.5,
  /** Issue 4: `latchkey token --registry URL`, the path every credential helper call takes. */
  tokenFile: 1.3,
  tokenKeychain: 1.6,
  /** Issue 6: server pull req/s at least 40% of a plain node:http server's answering the same bytes (a lower bound). */
  serverPullOverCeiling: 0.4,
  /** Issue 6: acknowledged versioned pushes per second on SQLite, 50 connections (a lower bound). */
  serverPushPerSecond: 2500,
  /** Operations: pull req/s of two server processes on PostgreSQL behind a round-robin proxy over one process's. */
  serverTwoProcessesPullOverOne: 1.6,
  /** Operations: PostgreSQL's acknowledged versioned pushes per second over SQLite's, same run. */
  serverPostgresPushOverSqlite: 0.8,
  /** Teams: `env share --org` to an organisation of 1,000 members, median ms (an absolute bound, the issue's). */
  orgShareMs: 2000,
  /** Teams: `env pull --org` by one member over the same member's personal `env pull`. */
  orgPullOverPersonal: 1.2,
} as const;

/** Which parts of the bench `--only` selects. */
type Part = "cli" | "server" | "teams" | "ci";
const PARTS: readonly Part[] = ["cli", "server", "teams", "ci"];

interface Options {
  readonly runs: number;
  readonly warmup: number;
  readonly strict: boolean;
  readonly cli: string;
  readonly only: Part | null;
}

/** Whether this run includes `part` (every part without --only). */
const wants = (options: Options, part: Part): boolean => options.only === null || options.only === part;

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: "string" },
      warmup: { type: "string" },
      strict: { type: "boolean", default: false },
      cli: { type: "string" },
      only: { type: "string" },
    },
    strict: true,
  });
  const int = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`bench: ${name} must be an integer ≥ ${min}, got "${raw}"`);
    return n;
  };
  return {
    runs: int("--runs / BENCH_RUNS", values.runs ?? process.env.BENCH_RUNS, 30, 10),
    warmup: int("--warmup / BENCH_WARMUP", values.warmup ?? process.env.BENCH_WARMUP, 3, 0),
    strict: values.strict === true,
    cli: values.cli === undefined ? DEFAULT_CLI : resolve(values.cli),
    only: parseOnly(values.only),
  };
}

function parseOnly(raw: string | undefined): Part | null {
  if (raw === undefined) return null;
  const part = PARTS.find((p) => p === raw);
  if (part === undefined) throw new Error(`bench: --only must be ${PARTS.join(", ")}, got "${raw}"`);
  return part;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/**
 * A minimal environment, nothing inherited from the developer's session beyond PATH: no real HOME, no real
 * D-Bus (so the real keychain is never touched). Floors get the same environment as the command they floor.
 */
function isolatedEnv(home: string, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    HOME: home,
    LATCHKEY_HOME: join(home, ".latchkey"),
    ...extra,
  };
}

const latchkey = (
  cli: string,
  label: string,
  args: readonly string[],
  env: Record<string, string>,
): BenchCommand => ({ label, file: NODE, args: [cli, ...args], env });
const nodeFloor = (env: Record<string, string>): BenchCommand => ({
  label: "node -e 0",
  file: NODE,
  args: ["-e", "0"],
  env,
});

function expectOutput(what: string, actual: string, expected: string): void {
  if (actual !== expected) {
    throw new Error(`bench: ${what} printed ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/** Measures a scenario's commands side by side and compares command 0 (the subject) with each baseline. */
async function measure(
  id: number,
  title: string,
  commands: readonly BenchCommand[],
  baselines: readonly Baseline[],
  options: Options,
): Promise<ScenarioResult> {
  progress(`${id}. ${title}: ${commands.map((c) => c.label).join(" | ")}`);
  const timings = await alternate(commands, {
    runs: options.runs,
    warmup: options.warmup,
    onRound: (round) => {
      if (round + 1 === options.runs)
        progress(`${id}. done (${options.runs} rounds + ${options.warmup} warm-up)`);
    },
  });
  const subject = timings.samples[0] ?? [];
  const comparisons: ComparisonResult[] = baselines.map((b) => {
    const perRound = subject.map((_, r) =>
      b.indices.reduce((sum, i) => sum + (timings.samples[i]?.[r] ?? 0), 0),
    );
    const baselineMedian = b.indices.reduce((sum, i) => sum + summarize(timings.samples[i] ?? []).median, 0);
    const subjectMedian = summarize(subject).median;
    return {
      against: b.against,
      subjectMedian,
      baselineMedian,
      ratio: subjectMedian / baselineMedian,
      paired: pairedRatio(subject, perRound),
      goal: b.goal,
      ...(b.goalMs === undefined ? {} : { goalMs: b.goalMs }),
      ...(b.note === undefined ? {} : { note: b.note }),
    };
  });
  return {
    id,
    title,
    status: "ran",
    commands: commands.map((c, i) => ({
      label: c.label,
      ...(c.detail === undefined ? {} : { detail: c.detail }),
      summary: summarize(timings.samples[i] ?? []),
      first: timings.firstCounts[i] ?? 0,
    })),
    comparisons,
  };
}

/** A dotenv file of `n` keys KEY_1..KEY_n (zero-padded to `pad` digits) with values `value-i`, padded to `width`. */
function dotenvLines(n: number, pad: number, width: number): string {
  let text = "";
  for (let i = 1; i <= n; i++) text += `${secretKey(i, pad)}=${secretValue(i, width)}\n`;
  return text;
}
const secretKey = (i: number, pad: number): string => `KEY_${String(i).padStart(pad, "0")}`;
const secretValue = (i: number, width: number): string => `value-${i}`.padEnd(width, "x");

/** dotenvx's CLI entry (its package.json `bin`), run by the bench's own Node like the CLI and the floor. */
function dotenvxEntry(): { path: string; version: string } {
  const manifestPath = createRequire(import.meta.url).resolve("@dotenvx/dotenvx/package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
    version: string;
    bin: Record<string, string>;
  };
  const bin = manifest.bin.dotenvx;
  if (bin === undefined) throw new Error(`bench: ${manifestPath} has no \`dotenvx\` bin`);
  return { path: join(dirname(manifestPath), bin), version: manifest.version };
}

/** A check run once before timing: the command exits 0 only when the child saw KEY_1 and KEY_n. */
function injectedCheck(n: number): string[] {
  const condition = [1, n].map(
    (i) => `process.env.${secretKey(i, 0)} === ${JSON.stringify(secretValue(i, 0))}`,
  );
  return [NODE, "-e", `process.exit(${condition.join(" && ")} ? 0 : 1)`];
}

/** The vault id a project's latchkey.json holds. */
function readVaultId(project: string): string {
  return (JSON.parse(readFileSync(join(project, "latchkey.json"), "utf8")) as { vault: string }).vault;
}

function commandOutput(file: string, args: readonly string[]): string | null {
  try {
    return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

function runInfo(options: Options, durationSeconds: number, loadAverage: string): RunInfo {
  return {
    date: new Date().toISOString(),
    nproc: commandOutput("nproc", []) ?? `${os.availableParallelism()} (os.availableParallelism)`,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown CPU",
    node: `${process.version} (${NODE})`,
    kernel: commandOutput("uname", ["-srm"]) ?? `${os.type()} ${os.release()} ${os.machine()}`,
    loadAverage,
    runs: options.runs,
    warmup: options.warmup,
    durationSeconds,
  };
}

async function main(): Promise<number> {
  const options = parseOptions();
  const cli = options.cli;
  if (!existsSync(cli))
    throw new Error(`bench: ${cli} is missing; run \`npm run build\` (npm run bench does).`);
  const version = (
    JSON.parse(readFileSync(join(ROOT, "packages/cli/package.json"), "utf8")) as { version: string }
  ).version;
  const loadAverage = os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");
  const started = performance.now();
  const temp = await mkdtemp(join(os.tmpdir(), "latchkey-bench-"));
  let keychain: KeychainSession | null = null;
  const cleanup = async (): Promise<void> => {
    const session = keychain;
    keychain = null;
    await session?.stop();
    await rm(temp, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const results: ScenarioResult[] = [];
  const serverResults: ServerScenarioResult[] = [];
  const serverOptions: ServerBenchOptions = {
    roundSeconds: 5,
    warmupPerConnection: 40,
    pullOverCeiling: GOALS.serverPullOverCeiling,
    pushPerSecond: GOALS.serverPushPerSecond,
    twoProcessesPullOverOne: GOALS.serverTwoProcessesPullOverOne,
    postgresPushOverSqlite: GOALS.serverPostgresPushOverSqlite,
    temp: join(temp, "server"),
    progress,
  };
  let keychainEnv: Record<string, string> | null = null;
  let keychainReason = "the keychain scenario (3) did not start gnome-keyring";
  try {
    // A fresh secret per run, from node:crypto; it only ever travels on stdin.
    const value = `bench-${randomBytes(12).toString("hex")}`;

    // 1. Start-up: `latchkey --version` against bare Node.
    if (wants(options, "cli")) {
      const env = isolatedEnv(join(temp, "version"), {});
      await mkdir(env.HOME as string, { recursive: true });
      const cmd = latchkey(cli, "latchkey --version", ["--version"], env);
      expectOutput("latchkey --version", (await runChecked(cmd)).stdout, `${version}\n`);
      results.push(
        await measure(
          1,
          "start-up (`--version`)",
          [cmd, nodeFloor(env)],
          [{ against: "`node -e 0`", indices: [1], goal: GOALS.version }],
          options,
        ),
      );
    }

    // 2. `keystore get` on the encrypted file store, with D-Bus pointed at a socket that does not exist.
    if (wants(options, "cli")) {
      const home = join(temp, "file");
      await mkdir(home, { recursive: true });
      const env = isolatedEnv(home, {
        LATCHKEY_KEYSTORE: "file",
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, "no-such-bus")}`,
      });
      await runChecked(latchkey(cli, "latchkey keystore set", ["keystore", "set", ACCOUNT], env), value);
      const get = latchkey(cli, `latchkey keystore get ${ACCOUNT}`, ["keystore", "get", ACCOUNT], env);
      expectOutput("latchkey keystore get (file store)", (await runChecked(get)).stdout, value);
      results.push(
        await measure(
          2,
          "`keystore get`, file store",
          [get, nodeFloor(env)],
          [{ against: "`node -e 0`", indices: [1], goal: GOALS.fileGet }],
          options,
        ),
      );
    }

    // 3. `keystore get` on the real keychain: gnome-keyring in a private D-Bus session, against bare Node and
    //    against secret-tool (libsecret's own client, a C program) reading the same item in the same session.
    if (wants(options, "cli")) {
      const title = "`keystore get`, keychain (gnome-keyring)";
      const goals = [
        { against: "`node -e 0`", goal: null },
        { against: "`secret-tool lookup`", goal: null },
        { against: "`node -e 0` + `secret-tool lookup`", goal: GOALS.keychainGetOverFloorPlusPeer },
      ];
      const home = join(temp, "keychain");
      await mkdir(home, { recursive: true });
      const service = await startKeychain();
      if (!service.ok) {
        keychainReason = service.reason;
        progress(`3. keychain scenario not run: ${service.reason}`);
        results.push({ id: 3, title, status: "not-run", reason: service.reason, goals });
      } else {
        keychain = service.session;
        keychainEnv = service.session.env;
        const env = isolatedEnv(home, { ...service.session.env, LATCHKEY_KEYSTORE: "keyring" });
        await runChecked(latchkey(cli, "latchkey keystore set", ["keystore", "set", ACCOUNT], env), value);
        const get = latchkey(cli, `latchkey keystore get ${ACCOUNT}`, ["keystore", "get", ACCOUNT], env);
        expectOutput("latchkey keystore get (keychain)", (await runChecked(get)).stdout, value);
        const lookup: BenchCommand = {
          label: `secret-tool lookup service latchkey username ${ACCOUNT}`,
          file: "secret-tool",
          args: ["lookup", "service", "latchkey", "username", ACCOUNT],
          env,
        };
        // The peer must read the very item latchkey wrote, or it is not the same work.
        expectOutput("secret-tool lookup", (await runChecked(lookup)).stdout.replace(/\n$/, ""), value);
        results.push(
          await measure(
            3,
            title,
            [get, nodeFloor(env), lookup],
            [
              {
                against: "`node -e 0`",
                indices: [1],
                goal: null,
                note: "vs `node -e 0`: informational; the keychain's own cost is in the floor + peer row.",
              },
              {
                against: "`secret-tool lookup`",
                indices: [2],
                goal: null,
                note: "vs `secret-tool lookup`: informational; secret-tool is a C program with no runtime to start.",
              },
              {
                against: "`node -e 0` + `secret-tool lookup`",
                indices: [1, 2],
                goal: GOALS.keychainGetOverFloorPlusPeer,
              },
            ],
            options,
          ),
        );
      }
    }
    // 4 and 5. `latchkey run -- true` with 20 secrets in the vault (file store), a temporary project with its
    //    latchkey.json: against bare Node, and against dotenvx running the same child on a 20-key .env encrypted
    //    by dotenvx itself (private key in .env.keys).
    if (wants(options, "cli")) {
      const home = join(temp, "run");
      const project = join(home, "project");
      await mkdir(project, { recursive: true });
      const env = isolatedEnv(home, {
        LATCHKEY_KEYSTORE: "file",
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, "no-such-bus")}`,
      });
      const inProject = (label: string, args: readonly string[]): BenchCommand => ({
        ...latchkey(cli, label, args, env),
        cwd: project,
      });
      await runChecked(
        inProject("latchkey env import -", ["env", "import", "-"]),
        dotenvLines(RUN_SECRETS, 0, 0),
      );
      if (!existsSync(join(project, "latchkey.json")))
        throw new Error("bench: `latchkey env import` created no latchkey.json in the project");
      // The child must really get the secrets, or `run -- true` is not the work being measured.
      await runChecked(
        inProject("latchkey run (injection check)", ["run", "--", ...injectedCheck(RUN_SECRETS)]),
      );
      const run: BenchCommand = {
        ...inProject("latchkey run -- true", ["run", "--", "true"]),
        detail: `${RUN_SECRETS} secrets`,
      };
      results.push(
        await measure(
          4,
          `\`run -- true\`, ${RUN_SECRETS} secrets`,
          [run, nodeFloor(env)],
          [{ against: "`node -e 0`", indices: [1], goal: GOALS.runOverNode }],
          options,
        ),
      );

      const dotenvx = dotenvxEntry();
      const dotenvxProject = join(home, "dotenvx-project");
      await mkdir(dotenvxProject, { recursive: true });
      const dx = (label: string, args: readonly string[]): BenchCommand => ({
        label,
        file: NODE,
        args: [dotenvx.path, ...args],
        env,
        cwd: dotenvxProject,
      });
      // dotenvx's own encryption: a plaintext .env, then `dotenvx encrypt` (every value becomes
      // `encrypted:…` under the file's public key; the private key goes to .env.keys).
      await writeFile(join(dotenvxProject, ".env"), dotenvLines(RUN_SECRETS, 0, 0));
      await runChecked(dx("dotenvx encrypt", ["encrypt"]));
      const encrypted = readFileSync(join(dotenvxProject, ".env"), "utf8");
      const encryptedKeys = encrypted.split("\n").filter((l) => /^KEY_\d+="?encrypted:/.test(l)).length;
      if (encryptedKeys !== RUN_SECRETS || encrypted.includes("value-"))
        throw new Error(`bench: dotenvx encrypt left ${encryptedKeys}/${RUN_SECRETS} keys encrypted in .env`);
      if (!/^DOTENV_PRIVATE_KEY=/m.test(readFileSync(join(dotenvxProject, ".env.keys"), "utf8")))
        throw new Error("bench: dotenvx encrypt wrote no DOTENV_PRIVATE_KEY to .env.keys");
      await runChecked(dx("dotenvx run (decryption check)", ["run", "--", ...injectedCheck(RUN_SECRETS)]));
      const dxRun: BenchCommand = {
        ...dx("dotenvx run -- true", ["run", "--", "true"]),
        detail: `dotenvx ${dotenvx.version}, ${RUN_SECRETS}-key encrypted .env`,
      };
      results.push(
        await measure(
          5,
          `\`run -- true\`, ${RUN_SECRETS} secrets, vs dotenvx`,
          [run, dxRun],
          [
            {
              against: "`dotenvx run -- true`",
              indices: [1],
              goal: GOALS.runOverDotenvx,
              note: `vs \`dotenvx run -- true\`: the goal "Latchkey ≥ 5× faster" is a ratio ≤ 0.20×; dotenvx ${dotenvx.version} runs from its JS entry on the same Node.`,
            },
          ],
          options,
        ),
      );
    }

    // 6. `env set` of one key into a 10,000-key vault against the same into a 10-key vault (file store). Every
    //    timed run writes the same key and value, so both vaults keep their size (10,001 and 11 keys).
    if (wants(options, "cli")) {
      const home = join(temp, "set");
      const env = isolatedEnv(home, {
        LATCHKEY_KEYSTORE: "file",
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, "no-such-bus")}`,
      });
      const vaults = [LARGE_VAULT, SMALL_VAULT].map((size) => ({
        size,
        project: join(home, `vault-${size}`),
      }));
      const sets: BenchCommand[] = [];
      for (const { size, project } of vaults) {
        await mkdir(project, { recursive: true });
        const inProject = (label: string, args: readonly string[]): BenchCommand => ({
          ...latchkey(cli, label, args, env),
          cwd: project,
        });
        // Same shape of keys and values in both vaults (KEY_00001=value-1xxx…, 32-character values).
        await runChecked(
          inProject("latchkey env import -", ["env", "import", "-"]),
          dotenvLines(size, 5, 32),
        );
        const set = inProject(`latchkey env set ${SET_ASSIGNMENT}`, ["env", "set", SET_ASSIGNMENT]);
        await runChecked(set);
        for (const [key, value] of [
          [secretKey(size, 5), secretValue(size, 32)],
          ["BENCH_SET", "bench-value"],
        ] as const) {
          const got = (await runChecked(inProject(`latchkey env get ${key}`, ["env", "get", key]))).stdout;
          expectOutput(`latchkey env get ${key} (${size}-key vault)`, got, value);
        }
        sets.push({ ...set, detail: `${size.toLocaleString("en-US")}-key vault` });
      }
      const largeBlob = statSync(
        join(env.LATCHKEY_HOME as string, "vaults", `${readVaultId(vaults[0]?.project ?? "")}.enc`),
      ).size;
      results.push(
        await measure(
          6,
          "`env set` one key, large vault vs small",
          sets,
          [
            {
              against: `same into a ${SMALL_VAULT}-key vault`,
              indices: [1],
              goal: GOALS.setLargeVaultOverSmall,
              note: `${LARGE_VAULT.toLocaleString("en-US")}-key vault: ${(largeBlob / 1024).toFixed(0)} KiB encrypted; every run rewrites the same key, so neither vault grows.`,
            },
          ],
          options,
        ),
      );
    }

    // 7 and 8. `latchkey token --registry URL` (issue 4), the path npm's credential provider, pnpm's tokenHelper
    //    shim and scripts take: on the file store and on the keychain, against bare Node and against
    //    `gh auth token` answering from GH_TOKEN (GitHub's CLI doing the same job from the environment).
    if (wants(options, "cli")) {
      const registry = "https://npm.bench.example/";
      const account = "registry://npm.bench.example/";
      const ghVersion = commandOutput("gh", ["--version"])?.split("\n")[0] ?? null;
      const scenarios = [
        {
          id: 7,
          backend: "file store",
          goal: GOALS.tokenFile,
          extra: null as Record<string, string> | null,
        },
        { id: 8, backend: "keychain (gnome-keyring)", goal: GOALS.tokenKeychain, extra: keychainEnv },
      ];
      for (const scenario of scenarios) {
        const title = `\`token --registry\`, ${scenario.backend}`;
        const goals = [
          { against: "`node -e 0`", goal: scenario.goal },
          { against: "`gh auth token`", goal: null },
        ];
        const home = join(temp, `token-${scenario.id}`);
        await mkdir(home, { recursive: true });
        const backendEnv: Record<string, string> | null =
          scenario.id === 7
            ? {
                LATCHKEY_KEYSTORE: "file",
                DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, "no-such-bus")}`,
              }
            : scenario.extra === null
              ? null
              : { ...scenario.extra, LATCHKEY_KEYSTORE: "keyring" };
        if (backendEnv === null) {
          results.push({ id: scenario.id, title, status: "not-run", reason: keychainReason, goals });
          continue;
        }
        const env = isolatedEnv(home, backendEnv);
        await runChecked(latchkey(cli, "latchkey keystore set", ["keystore", "set", account], env), value);
        const token = latchkey(
          cli,
          `latchkey token --registry ${registry}`,
          ["token", "--registry", registry],
          env,
        );
        expectOutput(
          `latchkey token (${scenario.backend})`,
          (await runChecked(token)).stdout.trimEnd(),
          value,
        );
        const commands = [token, nodeFloor(env)];
        const baselines: Baseline[] = [{ against: "`node -e 0`", indices: [1], goal: scenario.goal }];
        if (scenario.id === 7) {
          // What no implementation on Node can skip for a file-store read: load node:crypto, read the store, its
          // key file and the machine id, derive the key (HKDF-SHA256) and open the AES-256-GCM envelope. It shows
          // how much of the goal's budget Node's crypto alone takes.
          const store = join(env.LATCHKEY_HOME!, "store.enc");
          const key = join(env.LATCHKEY_HOME!, "store.key");
          const script = [
            'const fs = process.getBuiltinModule("node:fs");',
            'const c = process.getBuiltinModule("node:crypto");',
            `const k = fs.readFileSync(${JSON.stringify(key)}), s = fs.readFileSync(${JSON.stringify(store)});`,
            "const read = (p) => { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return ''; } };",
            "const id = read('/etc/machine-id') || read('/var/lib/dbus/machine-id');",
            'const dk = Buffer.from(c.hkdfSync("sha256", k, id, "latchkey file store v1: machine-bound key", 32));',
            "const d = c.createDecipheriv('aes-256-gcm', dk, s.subarray(9, 21), { authTagLength: 16 });",
            "d.setAAD(s.subarray(0, 5)); d.setAuthTag(s.subarray(s.length - 16)); d.update(s.subarray(21, s.length - 16));",
            "try { d.final(); } catch {}",
            `fs.writeSync(1, ${JSON.stringify(`${value}\n`)});`,
          ].join(" ");
          commands.push({
            label: "node + node:crypto opening the store (floor)",
            file: NODE,
            args: ["-e", script],
            env,
          });
          baselines.push({
            against: "node + node:crypto opening the store",
            indices: [commands.length - 1],
            goal: null,
            note: "vs node + node:crypto opening the store: informational; the same read (load node:crypto, read three files, HKDF, AES-256-GCM) as a script of a few lines. Loading node:crypto alone costs more than the goal allows, which is why the CLI opens small stores in JavaScript, with @noble/ciphers and @noble/hashes (packages/cli/src/crypto/pure.ts).",
          });
          // The launcher's code cache (packages/cli/src/launcher/code-cache.ts) is written by the warm-up rounds;
          // this row shows what a command's first call, which runs without one, costs.
          commands.push({
            ...token,
            label: `${token.label} (code cache off)`,
            env: { ...env, NODE_DISABLE_COMPILE_CACHE: "1" },
          });
          baselines.push({
            against: "the same with the code cache off",
            indices: [commands.length - 1],
            goal: null,
            note: "vs the same with the code cache off: informational; NODE_DISABLE_COMPILE_CACHE=1 turns off the launcher's code cache, which each command writes on its first call.",
          });
        }
        if (ghVersion === null) {
          progress(`${scenario.id}. gh is not installed: the \`gh auth token\` peer is left out`);
        } else {
          const gh: BenchCommand = {
            label: "gh auth token (GH_TOKEN set)",
            file: "gh",
            args: ["auth", "token"],
            env: { ...env, GH_TOKEN: value, GH_CONFIG_DIR: join(home, "gh") },
          };
          expectOutput("gh auth token", (await runChecked(gh)).stdout.trimEnd(), value);
          commands.push(gh);
          baselines.push({
            against: "`gh auth token`",
            indices: [commands.length - 1],
            goal: null,
            note: `vs \`gh auth token\`: informational; ${ghVersion}, a Go binary answering from GH_TOKEN without a keychain.`,
          });
        }
        results.push(await measure(scenario.id, title, commands, baselines, options));
      }
    }

    // 11 and 12. Organisations: `env share --org` to 1,000 members beside the same share to an organisation of
    //    one, and `env pull --org` by a member beside their personal `env pull` (bench/teams.ts).
    if (wants(options, "teams")) {
      results.push(
        ...(await runTeamsBench(11, {
          temp: join(temp, "teams"),
          shareMs: GOALS.orgShareMs,
          orgPullOverPersonal: GOALS.orgPullOverPersonal,
          progress,
          measure: (id, title, commands, baselines, rounds) =>
            measure(id, title, commands, baselines, rounds === null ? options : { ...options, ...rounds }),
        })),
      );
    }

    // 18. A CI job's `env pull --oidc` (the runner's ID token, the exchange, the CI pull) beside the vault owner's
    //    personal `env pull` (bench/ci.ts).
    if (wants(options, "ci")) {
      results.push(
        ...(await runCiBench(18, {
          temp: join(temp, "ci"),
          progress,
          measure: (id, title, commands, baselines, rounds) =>
            measure(id, title, commands, baselines, rounds === null ? options : { ...options, ...rounds }),
        })),
      );
    }

    // 9 and 10. The server (issue 6): pull and versioned push through the real process with a real token, side
    //    by side with a node:http ceiling answering the same bytes (bench/server.ts).
    if (wants(options, "server")) {
      serverResults.push(...(await runServerBench(9, serverOptions)));
    }
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  const markdown =
    renderMarkdown(results, runInfo(options, (performance.now() - started) / 1000, loadAverage)) +
    renderServerMarkdown(serverResults, serverOptions);
  await mkdir(join(ROOT, "bench/results"), { recursive: true });
  // A partial run (--only) never replaces the full table.
  const resultsFile = options.only === null ? RESULTS : RESULTS.replace(/\.md$/, `-${options.only}.md`);
  await writeFile(`${resultsFile}.tmp`, markdown);
  await rename(`${resultsFile}.tmp`, resultsFile);
  process.stdout.write(markdown);
  progress(`wrote ${resultsFile}`);

  const missed = [
    ...results.flatMap((r) =>
      r.status === "ran" ? r.comparisons.filter((c) => verdict(c) === "**no**") : [],
    ),
    ...serverResults.filter(serverGoalMissed),
  ];
  const notRun =
    results.filter((r) => r.status === "not-run").length +
    serverResults.filter((r) => r.status === "not-run").length;
  if (missed.length > 0) progress(`${missed.length} goal(s) not met`);
  if (notRun > 0) progress(`${notRun} scenario(s) not run`);
  return options.strict && missed.length + notRun > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
