/**
 * The `latchkey-server` process: wires the real process into runServer (server.ts) or runAdmin (admin.ts). main.ts,
 * the shipped entry, runs it as it is; the process tests' own entry adds test-only routes.
 */
import { randomBytes } from "node:crypto";
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import type { TestRoutes } from "./app.js";

/** What an entry adds to the real process. */
export interface ProcessOptions {
  /** Adds test-only routes; only the tests' own entry passes it (test/support/test-routes-main.ts). */
  testRoutes?: TestRoutes;
  /** The API routes' clock; only the tests' own entry passes one (test-routes-main.ts). */
  now?: () => Date;
}

/**
 * Why this Node cannot run the server, or null. The server's SQLite is node:sqlite, which Node has without a
 * flag from 22.13 (and 23.4) on: before that, importing server.ts would fail with ERR_UNKNOWN_BUILTIN_MODULE and
 * a stack. Asked of Node itself rather than of its version, so a Node started with --experimental-sqlite passes.
 */
function unsupportedNode(): LatchkeyError | null {
  if (process.getBuiltinModule?.("node:sqlite") !== undefined) return null;
  return new LatchkeyError("LK_NODE_UNSUPPORTED", {
    message: `latchkey-server needs Node's built-in SQLite (node:sqlite), which Node ${process.versions.node} does not have.`,
    hint:
      "Install Node 22.13 or newer (Node 24 LTS recommended) and put it first on PATH; in the repository, " +
      "`npm start` runs the server on the project's own Node 24.",
  });
}

/** Prints an error the way the CLI does (output.ts): code, message and hint; anything else is a bug. */
function printError(err: unknown): number {
  if (isLatchkeyError(err)) {
    process.stderr.write(`latchkey-server: error ${err.code}: ${err.message}\n  hint: ${err.hint}\n`);
    return err.exitCode;
  }
  // Startup failures outside the catalogue (a database that refuses the connection) land here; their messages
  // carry no secrets: DATABASE_URL itself is never logged.
  process.stderr.write(`latchkey-server: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/**
 * Runs `latchkey-server` with this process's argv, environment and signals; sets process.exitCode. Resolves once
 * the server has shut down (or the admin command has finished).
 */
export async function runServerProcess(options: ProcessOptions = {}): Promise<void> {
  try {
    const unsupported = unsupportedNode();
    if (unsupported) throw unsupported;
    // Imported only now, so that an unsupported Node gets the error above instead of a failed import.
    const [{ readPasswordFromProcess, runAdmin }, { parseServerArgs, runServer, USAGE }, { spawnTool }] =
      await Promise.all([import("./admin.js"), import("./server.js"), import("./backup.js")]);
    const argv = process.argv.slice(2);
    if (argv[0] === "admin") {
      process.exitCode = await runAdmin(argv.slice(1), {
        env: process.env,
        cwd: process.cwd(),
        stdout: process.stdout,
        stderr: process.stderr,
        readPassword: readPasswordFromProcess,
        randomBytes: (n) => randomBytes(n),
        runTool: spawnTool,
      });
    } else {
      const config = parseServerArgs(argv, process.env, process.cwd());
      if (config === null) {
        process.stdout.write(USAGE);
      } else {
        const { stopped } = await runServer(config, {
          env: process.env,
          randomBytes: (n) => randomBytes(n),
          onSignal: (signal, handler) => process.on(signal, handler),
          exit: (code) => process.exit(code),
          // Beside the bundle this code is in (dist/main.mjs, or the test entry's bundle).
          syncWriterWorker: new URL("./sync-writer.mjs", import.meta.url),
          ...(options.testRoutes ? { testRoutes: options.testRoutes } : {}),
          ...(options.now ? { now: options.now } : {}),
        });
        await stopped;
        // Nothing is left on the event loop once the listener, the connections and the database are closed; the
        // exit code stays 0 and Node exits by itself after the last log line is written.
      }
    }
  } catch (err) {
    process.exitCode = printError(err);
  }
}
