import type { Context, InputStream, OutputStream, Prompts, Spawn } from "./context.js";
import { resolveKeystore } from "./keystore/resolve.js";
import { resolvePaths } from "./paths.js";
import { LatchkeyError } from "@latchkey/core";
import { nativeRandomBytes } from "./crypto/native.js";
import { importExternal, type ExternalModules } from "./external.js";

// process.stdout and process.stderr are built on first access (~4 ms for a pipe: the net and streams machinery),
// so the context writes to the file descriptor itself while it can, which is all the short commands other
// programs call ever need. For a pipe, a file or a TTY on Linux a stream write is synchronous too, so the bytes and
// their order are the same. The stream takes over (for good, so nothing overtakes what it has queued) when a
// direct write cannot finish (a non-blocking descriptor whose pipe is full).
// main.ts flushes the streams used. The set is process-global: the fast-path and full-CLI bundles each carry
// their own copy of this module.
const usedStreams = ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.usedStreams")] ??=
  new Set<NodeJS.WriteStream>()) as Set<NodeJS.WriteStream>;

const fs = () => process.getBuiltinModule("node:fs");

/** What {@link descriptorOutput} writes through; tests replace the system calls. */
export interface DescriptorOutputDeps {
  fd: number;
  /** fs.writeSync: the number of bytes written; throws with `code` EAGAIN, EPIPE… */
  writeSync: (fd: number, bytes: Buffer) => number;
  /** Whether `fd` is a terminal; asked once, and only while no stream exists. */
  isTerminal: (fd: number) => boolean;
  /** The stream for `fd` (process.stdout or process.stderr), built on first call. */
  stream: () => NodeJS.WritableStream & { isTTY?: boolean };
}

/** An OutputStream that writes to the descriptor directly until the stream has to take over (see above). */
export function descriptorOutput(deps: DescriptorOutputDeps): OutputStream {
  let streamed: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined;
  // A reader that went away (`latchkey token … | true`) is not an error of ours: later writes are dropped and the
  // command ends as usual, as the stream's EPIPE listener does.
  let readerGone = false;
  let terminal: boolean | undefined;
  const stream = () => (streamed ??= deps.stream());
  /** Writes what it can straight to the descriptor; returns what is left for the stream (empty when done). */
  const writeDirect = (chunk: string): Buffer => {
    let bytes = Buffer.from(chunk, "utf8");
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(deps.writeSync(deps.fd, bytes));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EPIPE") {
          readerGone = true;
          return Buffer.alloc(0);
        }
        // EAGAIN (a non-blocking pipe that is full) and anything unexpected: the stream knows how to wait, and
        // reports what it cannot do the way it always has.
        return bytes;
      }
    }
    return bytes;
  };
  return {
    write: (chunk) => {
      if (readerGone) return;
      if (streamed === undefined) {
        const rest = writeDirect(chunk);
        if (rest.length > 0) stream().write(rest);
        return;
      }
      streamed.write(chunk);
    },
    get isTTY() {
      if (streamed !== undefined) return streamed.isTTY === true;
      terminal ??= deps.isTerminal(deps.fd);
      return terminal;
    },
  };
}

function outputOf(name: "stdout" | "stderr"): OutputStream {
  return descriptorOutput({
    fd: name === "stdout" ? 1 : 2,
    writeSync: (fd, bytes) => fs().writeSync(fd, bytes),
    isTerminal: (fd) => {
      // Every terminal is a character device, so anything else (a pipe, a file, a socket) is answered by one
      // fstat; node:tty (~2 ms to load) is asked only about character devices, /dev/null among them.
      try {
        return fs().fstatSync(fd).isCharacterDevice() && process.getBuiltinModule("node:tty").isatty(fd);
      } catch {
        return false;
      }
    },
    stream: () => {
      const s = process[name];
      if (!usedStreams.has(s)) {
        usedStreams.add(s);
        // Without a listener the EPIPE would crash the process with a stack trace.
        s.on("error", (error: NodeJS.ErrnoException) => {
          if (error.code !== "EPIPE") throw error;
        });
      }
      return s;
    },
  });
}

/**
 * Resolves once everything written to stdout and stderr through a context has been handed to the OS: a pipe
 * takes 64 KiB before a write has to wait for its reader, and process.exit() would drop the rest.
 */
export function flushOutputs(): Promise<void> {
  return Promise.all(
    [...usedStreams].map((s) => new Promise<void>((resolve) => s.write("", () => resolve()))),
  ).then(() => undefined);
}

// process.stdin is created on first access, which costs milliseconds (and, for a pipe, starts reading); most
// commands never touch it, so neither does the context until a command asks.
function lazyStdin(): InputStream {
  return {
    get isTTY() {
      return process.stdin.isTTY === true;
    },
    readAll: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
  };
}

/** Runs a program without a shell, collecting its output, killing it at the deadline. */
export const spawnProcess: Spawn = async (command, args, options = {}) => {
  // Loaded on first use: most commands never start a program.
  const { spawn: nodeSpawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = nodeSpawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    timer?.unref();
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on("error", () => {
      // The child may exit without reading its input; that is its answer, not our failure.
    });
    child.stdin.end(options.input ?? "");
  });
};

/**
 * Runs one clack prompt on the terminal. Clack answers Ctrl-C and Escape with its cancel symbol, but Ctrl-D at an
 * empty line, or the end of input, makes readline end the prompt's interface without telling clack, whose
 * promise would then never settle: Node exits 13 on the unsettled top-level await, mid-command. Readline pauses
 * the input when it ends the interface; clack's own ending does too, but settles the prompt first, so a pause
 * the prompt outlives is the one that means "no more input" and cancels it.
 */
async function ask<T>(
  show: (
    clack: ExternalModules["@clack/prompts"],
    common: { input: NodeJS.ReadStream; output: NodeJS.WriteStream; signal: AbortSignal },
  ) => Promise<T | symbol>,
): Promise<T> {
  const clack = await importExternal("@clack/prompts");
  const input = process.stdin;
  const stop = new AbortController();
  if (input.readableEnded) stop.abort();
  let settled = false;
  const onPause = () =>
    setImmediate(() => {
      if (!settled) stop.abort();
    });
  input.on("pause", onPause);
  let answer: T | symbol;
  try {
    answer = await show(clack, { input, output: process.stderr, signal: stop.signal });
  } finally {
    settled = true;
    input.off("pause", onPause);
  }
  if (clack.isCancel(answer)) throw new LatchkeyError("LK_CANCELLED");
  return answer as T;
}

function clackPrompts(): Prompts {
  return {
    secret: (message) => ask<string>((clack, common) => clack.password({ message, ...common })),
    confirm: (message, initial = false) =>
      ask<boolean>((clack, common) => clack.confirm({ message, initialValue: initial, ...common })),
    text: (message) => ask<string>((clack, common) => clack.text({ message, defaultValue: "", ...common })),
  };
}

/** process.execve where this platform and Node have it (POSIX, Node ≥ 22.15). */
async function replaceProcess(
  file: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
): Promise<never> {
  await flushOutputs();
  // The launcher stores the fast bundle's code cache after a command; this one never gets back to it.
  const saveCodeCache = (globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.saveCodeCache")];
  if (typeof saveCodeCache === "function") (saveCodeCache as () => void)();
  // Node ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across execve, while a caught one goes
  // back to its default: listening to them now gives the program the dispositions a freshly spawned child has.
  for (const signal of ["SIGPIPE", "SIGXFSZ"] as const) process.on(signal, () => undefined);
  process.execve!(file, [...argv], { ...env });
  throw new Error("process.execve returned");
}

/**
 * Builds the real context for this process: the only place the CLI reaches for globals. The full CLI hands in the
 * interactive logins; the fast path leaves them out, as loading them would cost its commands start-up time.
 */
export function createNodeContext(options: Pick<Context, "interactiveGrants"> = {}): Context {
  const env = { ...process.env };
  const paths = resolvePaths(env);
  let keystore: ReturnType<Context["keystore"]> | undefined;
  const context: Context = {
    env,
    cwd: process.cwd(),
    paths,
    stdin: lazyStdin(),
    stdout: outputOf("stdout"),
    stderr: outputOf("stderr"),
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    random: { bytes: nativeRandomBytes },
    fetch: (...args) => globalThis.fetch(...args),
    spawn: spawnProcess,
    prompts: clackPrompts(),
    platform: {
      nodeVersion: process.versions.node,
      os: process.platform,
      uid: typeof process.getuid === "function" ? process.getuid() : null,
      machineIdPaths: ["/etc/machine-id", "/var/lib/dbus/machine-id"],
      cliPath: process.argv[1],
      get hostname() {
        return process.getBuiltinModule("node:os").hostname();
      },
    },
    ...(process.platform !== "win32" && typeof process.execve === "function" ? { replaceProcess } : {}),
    onInterrupt: (listener) => {
      process.on("SIGINT", listener);
      return () => process.removeListener("SIGINT", listener);
    },
    keystore: (prefetch) =>
      (keystore ??= resolveKeystore(context, prefetch === undefined ? {} : { prefetch })),
    ...(options.interactiveGrants === undefined ? {} : { interactiveGrants: options.interactiveGrants }),
  };
  return context;
}
