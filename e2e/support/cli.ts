// Runs the built CLI as a separate process, the way users and helper protocols do.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { collect, type ProcessResult } from "./latchkey-server.js";

export { collect };

/** The installed command: the bin launcher over the bundle that `npm run build` produces. */
export const CLI = fileURLToPath(new URL("../../packages/cli/bin/latchkey.mjs", import.meta.url));

if (!existsSync(fileURLToPath(new URL("../../packages/cli/dist/latchkey.mjs", import.meta.url)))) {
  throw new Error("packages/cli/dist is missing: run `npm run build` first (npm test does).");
}

/** What a finished CLI process left behind. */
export type CliResult = ProcessResult;

/** Options for one CLI run. */
export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  /** Runs under this umask (through sh), for the file-mode tests. */
  umask?: string;
}

/**
 * A minimal environment: PATH and the test's own variables, nothing from the developer's session (no real
 * D-Bus, no real HOME), so tests never touch the machine's real keychain.
 */
export function isolatedEnv(extra: Record<string, string | undefined>): Record<string, string | undefined> {
  return { PATH: process.env.PATH, LANG: "C.UTF-8", NO_COLOR: "1", ...extra };
}

/** Starts the CLI; the caller owns the process. */
export function startCli(args: readonly string[], options: CliOptions = {}): ChildProcess {
  const env = options.env ?? isolatedEnv({});
  const child =
    options.umask === undefined
      ? spawn(process.execPath, [CLI, ...args], { env, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] })
      : spawn("sh", ["-c", `umask ${options.umask} && exec "$0" "$@"`, process.execPath, CLI, ...args], {
          env,
          cwd: options.cwd,
          stdio: ["pipe", "pipe", "pipe"],
        });
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(options.input ?? "");
  return child;
}

/** Runs the CLI to completion. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = startCli(args, options);
  return collect(child);
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** A D-Bus address where nothing listens: the CLI finds no keychain, as on a headless server. */
export const NO_DBUS = "unix:path=/nonexistent/latchkey-test-no-bus";
