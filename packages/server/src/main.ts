/** The `latchkey-server` entry: wires the real process into runServer (server.ts) or runAdmin (admin.ts). */
import { randomBytes } from "node:crypto";
import { isLatchkeyError } from "@latchkey/core";
import { readPasswordFromProcess, runAdmin } from "./admin.js";
import { parseServerArgs, runServer, USAGE } from "./server.js";

try {
  const argv = process.argv.slice(2);
  if (argv[0] === "admin") {
    process.exitCode = await runAdmin(argv.slice(1), {
      env: process.env,
      cwd: process.cwd(),
      stdout: process.stdout,
      stderr: process.stderr,
      readPassword: readPasswordFromProcess,
      randomBytes: (n) => randomBytes(n),
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
        syncWriterWorker: new URL("./sync-writer.mjs", import.meta.url),
      });
      await stopped;
      // Nothing is left on the event loop once the listener, the connections and the database are closed; the
      // exit code stays 0 and Node exits by itself after the last log line is written.
    }
  }
} catch (err) {
  if (isLatchkeyError(err)) {
    process.stderr.write(`latchkey-server: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ""}`);
    process.exitCode = err.exitCode;
  } else {
    // Startup failures (a database that refuses the connection, a port in use) land here; their messages carry
    // no secrets: DATABASE_URL itself is never logged.
    process.stderr.write(`latchkey-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
