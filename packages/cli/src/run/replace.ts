// `latchkey run` (and `exec`) without --mask hands the terminal, the signals and the exit status to the program simply by
// becoming it: execve(2) replaces this process, as `env(1)`, `envchain` or `aws-vault exec` do. No child to wait
// for, no signals to forward, and no cost of loading node:child_process and spawning (~8 ms of every run).
// execve does no PATH search and, on Node 24, aborts the process when it fails, so the program is found and
// checked here first, the way execvp(3) would; anything execve could refuse falls back to spawning.
import fs from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { checkEnvironment, runChild, type ChildExit } from "./child.js";
import { checkExecSize } from "./exec-limits.js";

/** The PATH execvp(3) searches when the environment has none (glibc's confstr(_CS_PATH)). */
const DEFAULT_PATH = "/bin:/usr/bin";

type Probe = "ok" | "missing" | "denied" | "not-a-file";

function probe(path: string): Probe {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(path, { throwIfNoEntry: false });
  } catch {
    return "denied";
  }
  if (stat === undefined) return "missing";
  if (!stat.isFile()) return "not-a-file";
  try {
    fs.accessSync(path, fs.constants.X_OK);
    return "ok";
  } catch {
    return "denied";
  }
}

/**
 * Finds `command` the way execvp(3) and Node's spawn do: a name with a slash is taken relative to `cwd`; a bare
 * name is searched in the PATH of the program's own environment. Throws LK_RUN_NOT_FOUND (127) when nothing
 * matches and LK_RUN_FAILED (126) when the only matches cannot be executed.
 */
export function findProgram(command: string, env: Readonly<Record<string, string>>, cwd: string): string {
  const name = JSON.stringify(command);
  const denied = (): LatchkeyError =>
    new LatchkeyError("LK_RUN_FAILED", {
      message: `Could not start ${name}: permission denied (is it executable?).`,
      details: { command, errno: "EACCES" },
    });
  if (command.includes("/")) {
    const path = isAbsolute(command) ? command : resolve(cwd, command);
    const found = probe(path);
    if (found === "ok") return path;
    if (found === "missing") throw notFound(command);
    throw denied();
  }
  let sawDenied = false;
  for (const dir of (env.PATH ?? DEFAULT_PATH).split(delimiter)) {
    // An empty PATH entry means the current directory, as it does to execvp.
    const path = resolve(cwd, join(dir === "" ? "." : dir, command));
    const found = probe(path);
    if (found === "ok") return path;
    if (found === "denied") sawDenied = true;
  }
  throw sawDenied ? denied() : notFound(command);
}

function notFound(command: string): LatchkeyError {
  return new LatchkeyError("LK_RUN_NOT_FOUND", {
    message: `Could not start ${JSON.stringify(command)}: no such program.`,
    details: { command, errno: "ENOENT" },
  });
}

/**
 * Whether execve(2) itself can start `path`: an ELF binary or a script with a `#!` line. A script without one
 * is run by execvp's fallback to /bin/sh, which execve lacks, so such programs are spawned instead.
 */
export function execveCanStart(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r");
    const head = Buffer.alloc(4);
    const read = fs.readSync(fd, head, 0, 4, 0);
    if (read >= 2 && head[0] === 0x23 && head[1] === 0x21) return true; // "#!"
    return read === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46; // ELF
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** What {@link runProgram} runs. */
export interface ProgramOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** The program's entire environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Secret values to mask in its output; masking needs this process to stay between program and terminal. */
  readonly mask?: readonly string[] | null;
  /** The caller has work left once the program ends (removing its secret files): spawn it, never become it. */
  readonly stayParent?: boolean;
}

/**
 * Runs a program for `run` and `exec`: this process becomes it when nothing is left to do once it starts (no
 * masking, no stayParent, and the context can replace the process); otherwise it is spawned and waited for.
 * Only in the second case does this return.
 */
export async function runProgram(ctx: Context, options: ProgramOptions): Promise<ChildExit> {
  const masking = options.mask !== null && options.mask !== undefined;
  if (!masking && options.stayParent !== true && ctx.replaceProcess !== undefined) {
    checkEnvironment(options.env);
    // execve aborts this process on E2BIG (Node 24), so what it would refuse is refused here first.
    checkExecSize(options.command, options.args, options.env);
    const file = findProgram(options.command, options.env, ctx.cwd);
    if (execveCanStart(file))
      return ctx.replaceProcess(file, [options.command, ...options.args], options.env);
  }
  return runChild({
    command: options.command,
    args: options.args,
    env: options.env,
    mask: options.mask ?? null,
    cwd: ctx.cwd,
  });
}
