#!/usr/bin/env node
// The bundle's entry point. `--version` is answered before anything else loads: it is the floor every other
// start-up is measured against (bench/), so it must cost no more than Node itself.
declare const __LATCHKEY_VERSION__: string;

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  // Read from the bundler's define directly: importing version.ts would make it a shared chunk, and the
  // launcher would pay for loading a second module.
  process.stdout.write(`${__LATCHKEY_VERSION__}\n`);
} else {
  const { main } = await import("./cli.js");
  const exitCode = await main(argv);
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.abandonedNativeCall")] === true) {
    // A keychain call abandoned at its time limit still blocks a thread-pool thread, and Node joins those at
    // exit, so process.exit() would hang with it. Replacing the process image is the one way out that keeps the
    // exit code (see keystore/keyring.ts).
    if (process.execve) process.execve("/bin/sh", ["sh", "-c", `exit ${exitCode}`]);
    process.kill(process.pid, "SIGKILL");
  }
  process.exit(exitCode);
}
