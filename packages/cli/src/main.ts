#!/usr/bin/env node
// The bundle's entry point. `--version` is answered before anything else loads: it is the floor every other
// start-up is measured against (bench/), so it must cost no more than Node itself.
declare const __LATCHKEY_VERSION__: string;

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
  // V8 keeps the compiled code of the bundle between runs (in Node's cache under the OS temp dir: code only,
  // never data), which saves a few milliseconds of every start. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  // getBuiltinModule rather than import(): the ESM wrapper of node:module would evaluate all of its exports.
  process.getBuiltinModule("node:module").enableCompileCache?.();
  // Commands other programs call often take the path without commander; everything else gets the full CLI.
  const { fastMain, flushOutputs } = await import("./fast-path.js");
  const exitCode = (await fastMain(argv)) ?? (await (await import("./cli.js")).main(argv));
  // process.exit() would drop what a full pipe has not taken yet.
  await flushOutputs();
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.abandonedNativeCall")] === true) {
    // A keychain call abandoned at its time limit still blocks a thread-pool thread, and Node joins those at
    // exit, so process.exit() would hang with it. Replacing the process image is the one way out that keeps the
    // exit code (see keystore/keyring.ts).
    if (process.execve) process.execve("/bin/sh", ["sh", "-c", `exit ${exitCode}`]);
    process.kill(process.pid, "SIGKILL");
  }
  process.exit(exitCode);
}
