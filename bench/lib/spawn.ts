// Whole-process timings: each run is one spawn, timed from just before spawn() to the child's exit.
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";

/** One command line the bench runs, with the exact environment it gets (nothing inherited). */
export interface BenchCommand {
  /** Short name used in the tables, e.g. `latchkey --version`. */
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Working directory (a temporary project for the vault and dotenvx scenarios); default: the bench's own. */
  readonly cwd?: string;
  /** Context shown after the command in the tables, e.g. `10,000-key vault`. */
  readonly detail?: string;
}

/** What a command run to completion left behind. */
export interface RunOutput {
  readonly stdout: string;
  readonly stderr: string;
}

function describe(command: BenchCommand): string {
  const line = [command.file, ...command.args].join(" ");
  return command.cwd === undefined ? line : `${line} in ${command.cwd}`;
}

function failure(
  command: BenchCommand,
  code: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
): Error {
  const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
  const detail = stderr.trim() === "" ? "" : `\n--- stderr ---\n${stderr.trimEnd()}`;
  return new Error(`bench: \`${command.label}\` (${describe(command)}) failed with ${how}${detail}`);
}

/**
 * Runs a command once with output captured and an optional stdin (how secrets are seeded: never argv). Rejects
 * unless it exits 0. Not timed: this is for seeding and for checking what a timed command prints.
 */
export function runChecked(command: BenchCommand, input?: string): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, {
      env: command.env,
      cwd: command.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(failure(command, code, signal, stderr));
    });
  });
}

/**
 * Times one run in milliseconds: from just before spawn() to the child's `exit` event. stdin and stdout go to
 * /dev/null; stderr is piped (for every command alike) only so a failure can say why. Rejects unless exit 0.
 */
export function timeOnce(command: BenchCommand): Promise<number> {
  return new Promise((resolve, reject) => {
    let elapsed = Number.NaN;
    let stderr = "";
    const start = performance.now();
    const child = spawn(command.file, command.args, {
      env: command.env,
      cwd: command.cwd,
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.on("exit", () => {
      elapsed = performance.now() - start;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(elapsed);
      else reject(failure(command, code, signal, stderr));
    });
  });
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates on node:crypto's randomInt). */
export function shuffledIndices(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

/** Timings of a group of commands measured side by side: `samples[c][r]` is command c's time in round r. */
export interface GroupTimings {
  readonly samples: number[][];
  /** How many rounds each command ran first in (a check that the order really was mixed). */
  readonly firstCounts: number[];
}

/**
 * Runs the commands in rounds. Each round runs every command once, one after the other, in a fresh random order,
 * so no command always goes first (or always follows a particular other one) and slow drifts in the machine
 * hit all of them alike. The first `warmup` rounds are run the same way and thrown away (page cache, CPU
 * frequency, the keyring daemon's first D-Bus activation).
 */
export async function alternate(
  commands: readonly BenchCommand[],
  options: { readonly runs: number; readonly warmup: number; readonly onRound?: (round: number) => void },
): Promise<GroupTimings> {
  const samples: number[][] = commands.map(() => []);
  const firstCounts = commands.map(() => 0);
  for (let round = -options.warmup; round < options.runs; round++) {
    const order = shuffledIndices(commands.length);
    for (const index of order) {
      const ms = await timeOnce(commands[index] as BenchCommand);
      if (round >= 0) samples[index]?.push(ms);
    }
    if (round >= 0) {
      const first = order[0] as number;
      firstCounts[first] = (firstCounts[first] ?? 0) + 1;
    }
    options.onRound?.(round);
  }
  return { samples, firstCounts };
}
