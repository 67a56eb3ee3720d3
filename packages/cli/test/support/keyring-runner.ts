// A keystore script run in a fresh process per Secret Service session, for the keychain suites that must see
// what a real first call does (module loads, libdbus state, time limits): the script is bundled with the native
// module left external, reads its ops on stdin (values never go through argv) and prints its results as JSON.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForTest } from "../../../../e2e/support/bundle.js";
import {
  startSecretService,
  type SecretServiceSession,
  type SecretServiceVariant,
} from "./secret-service.js";

/** Bundles `source` (TypeScript, resolved from packages/cli/src/keystore) into `dir`; returns the script's path. */
export async function bundleKeyringRunner(source: string, dir: string): Promise<string> {
  const runner = join(dir, "runner.mjs");
  await bundleForTest({
    stdin: {
      contents: source,
      resolveDir: fileURLToPath(new URL("../../src/keystore/", import.meta.url)),
      loader: "ts",
    },
    outfile: runner,
  });
  return runner;
}

/** Runs the bundled `runner` with `ops` in a fresh process whose environment is `env` alone (plus PATH). */
export function runKeyringRunner<Op, Result>(
  runner: string,
  env: Record<string, string>,
  ops: Op[],
  timeoutMs = 3000,
): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [runner],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`runner failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Result[]);
      },
    );
    // A child that dies before reading its input is reported by execFile's callback; the write's EPIPE is not news.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(JSON.stringify({ ops, timeoutMs }));
  });
}

/** Runs `body` against a fresh private Secret Service session of `variant`, stopped afterwards. */
export async function withSecretService<T>(
  variant: SecretServiceVariant,
  body: (s: SecretServiceSession) => Promise<T>,
): Promise<T> {
  const session = await startSecretService({ variant });
  try {
    return await body(session);
  } finally {
    await session.stop();
  }
}
