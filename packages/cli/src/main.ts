#!/usr/bin/env node
// The bundle's entry point. `--version` is answered before anything else loads: it is the floor every other
// start-up is measured against (bench/), so it must cost no more than Node itself.
import type * as FastPath from "./fast-path.js";
import { codeCacheDir, codeCacheKind, enableCompileCache, loadCachedScript } from "./launcher/code-cache.js";

declare const __LATCHKEY_VERSION__: string;
/** A hash of fast.cjs, set by build.mjs: a code cache belongs to one build of the bundle. */
declare const __LATCHKEY_FAST_BUNDLE_ID__: string;

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  // Read from the bundler's define directly: importing version.ts would make it a shared chunk, and the
  // launcher would pay for loading a second module.
  // Straight to the descriptor: building process.stdout costs ~4 ms for a pipe (node-context.ts does the same).
  // A reader that already left (`latchkey --version | true`) gets nothing, and that is not worth a stack trace;
  // a non-blocking pipe that is full (EAGAIN) gets the stream, which waits.
  try {
    process.getBuiltinModule("node:fs").writeSync(1, `${__LATCHKEY_VERSION__}\n`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPIPE") {
      process.stdout.on("error", () => undefined);
      process.stdout.write(`${__LATCHKEY_VERSION__}\n`);
    }
  }
} else {
  const cacheDir = codeCacheDir(process.env);
  // Commands other programs call often take the path without commander; everything else gets the full CLI.
  const kind = codeCacheKind(argv);
  const fast = loadCachedScript<typeof FastPath>(
    process.getBuiltinModule("node:url").fileURLToPath(new URL("./fast.cjs", import.meta.url)),
    cacheDir === null
      ? null
      : {
          dir: cacheDir,
          prefix: `fast-${kind}-`,
          key: `${__LATCHKEY_FAST_BUNDLE_ID__}-${process.version}-${process.arch}.v8`,
        },
    // Packages outside the bundle are imported from here: a classic script cannot import() (external.ts).
    (specifier) => import(specifier),
  );
  // `run` replaces this process (execve) and never comes back here: it saves first, through this hook.
  (globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.saveCodeCache")] = fast.save;
  const { fastMain, flushOutputs } = fast.exports;
  const fastExitCode = await fastMain(argv);
  if (fastExitCode === null && cacheDir !== null) {
    // The full CLI keeps Node's compile cache, in the same private directory (never the shared OS temp dir);
    // only now, as loading node:module costs the fast commands ~0.3 ms for nothing.
    enableCompileCache(cacheDir);
  }
  const exitCode = fastExitCode ?? (await (await import("./cli.js")).main(argv));
  // process.exit() would drop what a full pipe has not taken yet.
  await flushOutputs();
  // A fast kind's cache must come from a run of that command: `keystore get --help`, say, runs none of it.
  if ((fastExitCode !== null) === (kind !== "other")) fast.save();
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.abandonedNativeCall")] === true) {
    // A keychain call abandoned at its time limit still blocks a thread-pool thread, and Node joins those at
    // exit, so process.exit() would hang with it. Replacing the process image is the one way out that keeps the
    // exit code (see keystore/keyring.ts).
    if (process.execve) process.execve("/bin/sh", ["sh", "-c", `exit ${exitCode}`]);
    process.kill(process.pid, "SIGKILL");
  }
  process.exit(exitCode);
}
