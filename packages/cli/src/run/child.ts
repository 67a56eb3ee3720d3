/**
 * The process side of `latchkey run [--mask] -- cmd args…`: start the program with the secrets in its
 * environment, stay out of its way while it runs, and let the CLI end the way the program ended.
 *
 * - No shell: `command` and `args` go to execve as given, so nothing is re-parsed and secrets, which travel
 *   only in `env`, never appear in any process's argv. The program is looked up on `env.PATH`.
 * - stdin is always inherited, so an interactive program keeps the terminal. Without masking, stdout and
 *   stderr are inherited too (the program still sees a TTY, colours and progress bars keep working). With
 *   masking they are pipes read by this process, so the program sees pipes, not a TTY: it may drop colour,
 *   block-buffer its output, and stdout/stderr interleave only as finely as each stream's chunks.
 * - Signals: see FORWARDED_SIGNALS. Exit status: see exitLikeChild.
 */
import type { ChildProcess, StdioOptions } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { LatchkeyError } from "@latchkey/core";
import { checkExecSize } from "./exec-limits.js";

/**
 * Signals the parent passes on to the program while it runs, instead of dying from them: the program decides
 * (an editor may ignore SIGINT, a server may drain on SIGTERM), and the parent then ends the way it did.
 * Caveat: a Ctrl-C (or Ctrl-\) typed at the terminal already reaches the whole foreground process group, so
 * the program then receives it twice, once from the terminal and once forwarded; Node cannot tell the two
 * sources apart, and forwarding is what makes `kill -INT <latchkey pid>` work.
 */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/** Where the program's standard streams go; the defaults are what `latchkey run` uses. */
export interface RunChildStdio {
  /** The program's stdin: inherited (default) or /dev/null. */
  readonly stdin?: "inherit" | "ignore";
  /** Receives the program's stdout through a pipe (masked when masking). Default: inherited, or this process's stdout when masking. */
  readonly stdout?: Writable;
  /** Receives the program's stderr through a pipe (masked when masking). Default: inherited, or this process's stderr when masking. */
  readonly stderr?: Writable;
}

/** What to run and how. */
export interface RunChildOptions {
  /** The program: a name looked up on `env.PATH`, or a path. */
  readonly command: string;
  /** Its arguments, passed as they are (no shell). Never secrets. */
  readonly args: readonly string[];
  /** The program's entire environment: nothing from this process's environment is added. */
  readonly env: Readonly<Record<string, string>>;
  /** Values to mask in the program's stdout and stderr; null or absent: no masking, streams inherited. */
  readonly mask?: readonly string[] | null;
  /** Working directory; default this process's. It must exist: spawn reports a missing one as a missing program. */
  readonly cwd?: string;
  /** Stream overrides, for tests. */
  readonly stdio?: RunChildStdio;
}

/** How the program ended: exactly one of the two is non-null. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Runs the program to completion and reports how it ended, after its (masked) output has been written out.
 * Signals in FORWARDED_SIGNALS are passed on while it runs; the handlers are removed as soon as it exits, so
 * a Ctrl-C while a left-behind grandchild keeps the output pipes open still ends this process.
 * Throws LK_RUN_NOT_FOUND (exit 127) when the program cannot be found, LK_RUN_ENV_TOO_LARGE (126) when its
 * environment and arguments are more than execve can carry, and LK_RUN_FAILED (126) when it cannot be started
 * (not executable, a directory, an unusable environment), all naming only the program and variable names.
 */
export async function runChild(options: RunChildOptions): Promise<ChildExit> {
  checkEnvironment(options.env);
  checkExecSize(options.command, options.args, options.env);
  const masking = options.mask !== null && options.mask !== undefined;
  const stdoutSink = options.stdio?.stdout ?? (masking ? process.stdout : undefined);
  const stderrSink = options.stdio?.stderr ?? (masking ? process.stderr : undefined);
  const stdio: StdioOptions = [
    options.stdio?.stdin ?? "inherit",
    stdoutSink === undefined ? "inherit" : "pipe",
    stderrSink === undefined ? "inherit" : "pipe",
  ];

  // Loaded here rather than at the top: this module is on the start-up path of commands that never spawn.
  const { spawn } = await import("node:child_process");

  // Installed before spawning: a signal is handled on a later event-loop turn, by when `child` is set, so no
  // window exists in which a signal kills this process and leaves the program orphaned.
  let child: ChildProcess | undefined;
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = (): void => {
      try {
        child?.kill(signal);
      } catch {
        // The program has already gone; its exit is on its way.
      }
    };
    process.on(signal, handler);
    return { signal, handler };
  });
  const removeHandlers = (): void => {
    for (const { signal, handler } of handlers) process.removeListener(signal, handler);
  };

  try {
    child = spawn(options.command, [...options.args], {
      env: { ...options.env },
      stdio,
      cwd: options.cwd,
      shell: false,
    });
  } catch (error) {
    removeHandlers();
    throw startFailure(options.command, error);
  }
  const started = child;

  if (started.pid === undefined) {
    const error = await new Promise<unknown>((resolve) => started.once("error", resolve));
    removeHandlers();
    throw startFailure(options.command, error);
  }
  // Later errors only concern signalling a process that is already exiting; its exit event still comes.
  started.on("error", () => {});

  const exited = new Promise<ChildExit>((resolve) => {
    started.once("exit", (code, signal) => {
      removeHandlers();
      resolve({ code, signal });
    });
  });
  const copies: Promise<void>[] = [];
  if (stdoutSink !== undefined && started.stdout)
    copies.push(copyOutput(started.stdout, stdoutSink, options.mask));
  if (stderrSink !== undefined && started.stderr)
    copies.push(copyOutput(started.stderr, stderrSink, options.mask));
  const [result] = await Promise.all([exited, ...copies]);
  return result;
}

/**
 * Copies the program's output to `sink`, masked when `secrets` is given, and resolves once the last byte has
 * been handed to the sink. Never rejects: if the sink fails (EPIPE: whoever read our stdout went away), the
 * pipe from the program is closed, so the program's next write fails as it would have on the descriptor
 * itself, and its exit status tells the rest. One difference: Node's pipes are socket pairs, so with output
 * still unread the program gets ECONNRESET rather than EPIPE and SIGPIPE.
 */
async function copyOutput(
  source: Readable,
  sink: Writable,
  secrets: readonly string[] | null | undefined,
): Promise<void> {
  // The sink (normally process.stdout) is not ours to end or destroy, so it is written to, not piped into.
  const drain = async (chunks: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of chunks) await writeChunk(sink, chunk);
  };
  // A failed write is also emitted as an 'error' event, which would crash the process without a listener.
  const ignore = (): void => {};
  sink.on("error", ignore);
  try {
    // Loaded here, not at the top: a plain `run` inherits stdio and never needs streams or the mask.
    const [{ pipeline }, { createMaskingTransform }] = await Promise.all([
      import("node:stream/promises"),
      import("./mask.js"),
    ]);
    if (secrets === null || secrets === undefined) await pipeline(source, drain);
    else await pipeline(source, createMaskingTransform(secrets), drain);
    sink.removeListener("error", ignore);
  } catch {
    // The listener stays: the sink's 'error' event comes a tick after the write callback has failed.
    source.destroy();
  }
}

function writeChunk(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Rejects what execve cannot carry before spawning: Node's own error for a NUL byte in a value would quote
 * the value, which is a secret.
 */
export function checkEnvironment(env: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(env)) {
    if (name === "" || name.includes("=") || name.includes("\0") || value.includes("\0")) {
      throw new LatchkeyError("LK_RUN_FAILED", {
        message: `The environment variable ${JSON.stringify(name.replaceAll("\0", "\\0"))} cannot be passed to a program: names must be non-empty without "=" or NUL, values without NUL.`,
        hint: "Rename the variable, or store the value without NUL bytes (base64-encode binary data).",
        details: { variable: name.replaceAll("\0", "\\0") },
      });
    }
  }
}

/** Turns a spawn error into the catalogue error, naming the program and never the environment. */
function startFailure(command: string, error: unknown): LatchkeyError {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  const details = { command, ...(errno === undefined ? {} : { errno }) };
  const name = JSON.stringify(command);
  if (errno === "ENOENT") {
    return new LatchkeyError("LK_RUN_NOT_FOUND", {
      message: `Could not start ${name}: no such program.`,
      cause: error,
      details,
    });
  }
  if (errno === "E2BIG") {
    // checkExecSize refuses what it knows execve would; this is a system whose limits it does not know.
    return new LatchkeyError("LK_RUN_ENV_TOO_LARGE", {
      message: `Could not start ${name}: its environment and arguments are larger than this system allows (E2BIG).`,
      cause: error,
      details,
    });
  }
  const reason = errno === "EACCES" ? "permission denied (is it executable?)" : (errno ?? "unknown error");
  return new LatchkeyError("LK_RUN_FAILED", {
    message: `Could not start ${name}: ${reason}.`,
    cause: error,
    details,
  });
}

/**
 * Signals this process may safely re-raise on itself: their default action is to terminate, without a core
 * dump. A core-dumping signal (SIGSEGV, SIGABRT, SIGQUIT…) is not re-raised because this process's core would
 * hold the secrets in plaintext; SIGUSR1 is not, because Node starts its inspector on it.
 */
const RERAISABLE: ReadonlySet<string> = new Set([
  "SIGHUP",
  "SIGINT",
  "SIGKILL",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGUSR2",
  "SIGPOLL",
  "SIGIO",
  "SIGPROF",
  "SIGVTALRM",
  "SIGSTKFLT",
  "SIGPWR",
  "SIGLOST",
]);

/** The shell's view of how the program ended: its exit code, or 128 + the signal number. */
export function exitStatus(result: ChildExit): number {
  if (result.code !== null) return result.code;
  // node:os only here, where a child died of a signal: loading it costs every start ~0.4 ms.
  const number =
    result.signal === null ? undefined : process.getBuiltinModule("node:os").constants.signals[result.signal];
  return number === undefined ? 1 : 128 + number;
}

/**
 * Ends this process the way the program ended, for the CLI to call once it has cleaned up. An exit code is
 * passed through. A signal is re-raised on this process, so a shell or supervisor sees the same termination
 * (`WIFSIGNALED`, "Terminated", no "exited 143"), except for the signals RERAISABLE leaves out; if it does
 * not end the process, the exit code is 128 + the signal number, as a shell reports it.
 */
export function exitLikeChild(result: ChildExit): never {
  const signal = result.signal;
  if (result.code === null && signal !== null && RERAISABLE.has(signal)) {
    if (signal !== "SIGKILL") {
      // Adding and removing a listener leaves the disposition at SIG_DFL (libuv resets it when its last
      // watcher goes), which undoes Node's SIG_IGN for SIGPIPE and its own exit handlers for SIGINT/SIGTERM.
      // Someone else's listener keeps its handler installed; then the fallback below applies.
      const noop = (): void => {};
      process.on(signal, noop);
      process.removeListener(signal, noop);
    }
    try {
      process.kill(process.pid, signal);
      // kill(2) on one's own process normally delivers before it returns; the pause covers the kernel
      // picking another of Node's threads, so the fallback exit does not race the signal.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    } catch {
      // Not deliverable on this platform; the exit code below says the same thing.
    }
  }
  process.exit(exitStatus(result));
}
