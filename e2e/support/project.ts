// Temporary projects for the vault suites: a project directory (git repository or npm package), a HOME and a
// LATCHKEY_HOME of its own, all under one temporary root, and the built CLI run against them.
import { execFile, type ChildProcess } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "vitest";
import {
  CLI,
  NO_DBUS,
  isolatedEnv,
  runCli,
  startCli,
  tempDir,
  type CliOptions,
  type CliResult,
} from "./cli.js";
import { answerOnTerminal } from "./pty.js";

const exec = promisify(execFile);

/** UUID v4 in its canonical lower-case form. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Options for `tempProject`. */
export interface TempProjectOptions {
  /** What marks the project root: `git init` (default) or a package.json. */
  marker?: "git" | "package.json";
  /**
   * The keystore's part of the environment. Default: the encrypted file store (LATCHKEY_KEYSTORE=file and a
   * D-Bus address where nothing listens). A keychain suite passes its session's variables instead.
   */
  keystoreEnv?: Record<string, string>;
}

/** A temporary project and the homes the CLI uses for it. */
export interface TempProject {
  /** The temporary root holding everything below; removed by cleanup. */
  readonly root: string;
  /** The project directory. */
  dir: string;
  readonly home: string;
  readonly latchkeyHome: string;
  readonly vaultsDir: string;
  /** The CLI's environment, plus `extra`. */
  env(extra?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Runs the CLI in the project directory (or `options.cwd`) with this project's environment. */
  cli(
    args: readonly string[],
    options?: Omit<CliOptions, "env"> & { env?: Record<string, string | undefined> },
  ): Promise<CliResult>;
  /** Starts the CLI like `cli`, for the caller to drive. */
  start(
    args: readonly string[],
    options?: Omit<CliOptions, "env"> & { env?: Record<string, string | undefined> },
  ): ChildProcess;
  /** latchkey.json's path. */
  readonly file: string;
  /** The vault id in latchkey.json. */
  vaultId(): Promise<string>;
  /** The vault blob of this project's vault. */
  vaultFile(): Promise<string>;
  cleanup(): Promise<void>;
}

/** Makes a temporary project (no latchkey.json yet) with an empty HOME and LATCHKEY_HOME. */
export async function tempProject(options: TempProjectOptions = {}): Promise<TempProject> {
  const tmp = await tempDir("lk-e2e-vault-");
  const home = join(tmp.path, "home");
  const latchkeyHome = join(tmp.path, "latchkey-home");
  await mkdir(home);
  const project: TempProject = {
    root: tmp.path,
    dir: join(tmp.path, "work", "app"),
    home,
    latchkeyHome,
    vaultsDir: join(latchkeyHome, "vaults"),
    get file() {
      return join(project.dir, "latchkey.json");
    },
    env: (extra = {}) =>
      isolatedEnv({
        HOME: home,
        LATCHKEY_HOME: latchkeyHome,
        ...(options.keystoreEnv ?? { LATCHKEY_KEYSTORE: "file", DBUS_SESSION_BUS_ADDRESS: NO_DBUS }),
        ...extra,
      }),
    cli: (args, opts = {}) =>
      runCli(args, { ...opts, cwd: opts.cwd ?? project.dir, env: project.env(opts.env) }),
    start: (args, opts = {}) =>
      startCli(args, { ...opts, cwd: opts.cwd ?? project.dir, env: project.env(opts.env) }),
    vaultId: async () => (JSON.parse(await readFile(project.file, "utf8")) as { vault: string }).vault,
    vaultFile: async () => join(project.vaultsDir, `${await project.vaultId()}.enc`),
    cleanup: tmp.cleanup,
  };
  await mkdir(project.dir, { recursive: true });
  if ((options.marker ?? "git") === "git") await exec("git", ["init", "-q", project.dir]);
  else await writeFile(join(project.dir, "package.json"), '{ "name": "app", "private": true }\n');
  return project;
}

/** Every regular file under `root`, recursively (absolute paths, sorted). */
export async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(path);
    }
  };
  await walk(root);
  return out.sort();
}

/**
 * Every directory and file under `root` with the files' contents: compare two to prove nothing was written.
 * The launcher's code cache (`~/.cache/latchkey`, compiled code, no state; startup.test.ts) is left out: any
 * command may write it on its first call.
 */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name === "latchkey" && dir.endsWith("/.cache")) continue;
      if (entry.isDirectory()) {
        // ~/.cache itself may be created for it, too.
        if (entry.name !== ".cache") out[`${path}/`] = "dir";
        await walk(path);
      } else out[path] = (await readFile(path)).toString("base64");
    }
  };
  await walk(root);
  return out;
}

/** Asserts a failed command: the LK code on stderr, nothing on stdout, a non-zero exit. */
export function expectFailure(result: CliResult, code: string): void {
  expect(result.stderr, result.stderr).toContain(`error ${code}`);
  expect(result.stdout).toBe("");
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
}

/** Asserts a successful command, showing its stderr otherwise. */
export function expectSuccess(result: CliResult): void {
  expect(result.code, `exit ${result.code} (${result.signal}): ${result.stderr}`).toBe(0);
}

/**
 * Approves, as a person would on a terminal, the project at `cwd` using the vault its latchkey.json names where
 * this LATCHKEY_HOME already uses that vault for another directory (a second checkout, a moved project, a copied
 * home): the CLI asks once per directory. `env` is the CLI's whole environment.
 */
export async function approveVaultOnTerminal(
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<void> {
  const result = await answerOnTerminal(process.execPath, [CLI, "env", "envs"], {
    env,
    cwd,
    question: "for this project?",
    answer: "y",
  });
  if (result.code !== 0) throw new Error(`approving the vault in ${cwd} failed:\n${result.output}`);
}

/** Resolves with `child`'s stdout so far once it contains `text`; rejects if the child ends first. */
export function waitForOutput(child: ChildProcess, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer | string): void => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        child.stdout?.off("data", onData);
        resolve(seen);
      }
    };
    child.stdout?.on("data", onData);
    child.once("close", () =>
      reject(new Error(`the process ended before printing ${JSON.stringify(text)}: ${seen}`)),
    );
  });
}
