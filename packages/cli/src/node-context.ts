import type { Context, InputStream, OutputStream, Prompts, Spawn } from "./context.js";
import { resolveKeystore } from "./keystore/resolve.js";
import { resolvePaths } from "./paths.js";
import { LatchkeyError, randomBytes } from "@latchkey/core";

function outputOf(stream: NodeJS.WriteStream): OutputStream {
  return {
    write: (chunk) => {
      stream.write(chunk);
    },
    isTTY: stream.isTTY === true,
  };
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

function clackPrompts(): Prompts {
  return {
    secret: async (message) => {
      const clack = await import("@clack/prompts");
      const answer = await clack.password({ message, output: process.stderr });
      if (clack.isCancel(answer))
        throw new LatchkeyError("LK_USAGE", { message: "Cancelled at the prompt." });
      return answer;
    },
    confirm: async (message, initial = false) => {
      const clack = await import("@clack/prompts");
      const answer = await clack.confirm({ message, initialValue: initial, output: process.stderr });
      if (clack.isCancel(answer))
        throw new LatchkeyError("LK_USAGE", { message: "Cancelled at the prompt." });
      return answer;
    },
  };
}

/** Builds the real context for this process: the only place the CLI reaches for globals. */
export function createNodeContext(): Context {
  const env = { ...process.env };
  const paths = resolvePaths(env);
  let keystore: ReturnType<Context["keystore"]> | undefined;
  const context: Context = {
    env,
    cwd: process.cwd(),
    paths,
    stdin: lazyStdin(),
    stdout: outputOf(process.stdout),
    stderr: outputOf(process.stderr),
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    random: { bytes: (length) => randomBytes(length) },
    fetch: (...args) => globalThis.fetch(...args),
    spawn: spawnProcess,
    prompts: clackPrompts(),
    platform: {
      nodeVersion: process.versions.node,
      uid: typeof process.getuid === "function" ? process.getuid() : null,
      machineIdPaths: ["/etc/machine-id", "/var/lib/dbus/machine-id"],
    },
    keystore: () => (keystore ??= resolveKeystore(context)),
  };
  return context;
}
