// A context for in-process command tests. Every side effect not supplied by the test throws
// `Unexpected call to X`, so a test states exactly what a command may touch (pnpm's login tests do the same).
import { randomFillSync } from "node:crypto";
import type { Context, OutputStream } from "../../src/context.js";
import type { KeystoreResolution } from "../../src/keystore/resolve.js";
import { resolvePaths } from "../../src/paths.js";

function unexpected(name: string): never {
  throw new Error(`Unexpected call to ${name}`);
}

/** An output stream that records what was written. */
export interface CapturedStream extends OutputStream {
  readonly text: () => string;
}

/** Creates a recording stream. */
export function captureStream(isTTY = false): CapturedStream {
  let buffer = "";
  return {
    isTTY,
    write: (chunk) => {
      buffer += chunk;
    },
    text: () => buffer,
  };
}

/** A test context: overrides plus recording stdout/stderr; everything else throws when touched. */
export function createTestContext(
  overrides: Partial<Omit<Context, "stdout" | "stderr">> & { stdoutTTY?: boolean; stderrTTY?: boolean } = {},
): Context & { stdout: CapturedStream; stderr: CapturedStream } {
  const env = overrides.env ?? { LATCHKEY_HOME: "/nonexistent/latchkey-test-home" };
  return {
    env,
    cwd: overrides.cwd ?? "/nonexistent/project",
    paths: overrides.paths ?? resolvePaths(env),
    stdin: overrides.stdin ?? { isTTY: false, readAll: () => unexpected("stdin.readAll") },
    stdout: captureStream(overrides.stdoutTTY),
    stderr: captureStream(overrides.stderrTTY),
    clock: overrides.clock ?? { now: () => unexpected("clock.now"), sleep: () => unexpected("clock.sleep") },
    random: overrides.random ?? { bytes: (n) => randomFillSync(new Uint8Array(n)) },
    fetch: overrides.fetch ?? (() => unexpected("fetch")),
    spawn: overrides.spawn ?? (() => unexpected("spawn")),
    prompts: overrides.prompts ?? {
      secret: () => unexpected("prompts.secret"),
      confirm: () => unexpected("prompts.confirm"),
      text: () => unexpected("prompts.text"),
    },
    platform: overrides.platform ?? {
      nodeVersion: "24.0.0",
      uid: process.getuid?.() ?? null,
      machineIdPaths: ["/etc/machine-id"],
    },
    keystore: overrides.keystore ?? ((): Promise<KeystoreResolution> => unexpected("keystore")),
    interactiveGrants: overrides.interactiveGrants ?? {
      authorization_code: () => unexpected("interactiveGrants.authorization_code"),
      device_code: () => unexpected("interactiveGrants.device_code"),
    },
  };
}
