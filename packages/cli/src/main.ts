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
  const outcome = await main(argv);
  if (outcome.signal) {
    // `latchkey run`'s child died of a signal: die of the same one, so the shell sees what it would have
    // seen without Latchkey in between. 128 + signal number is the fallback if the signal is ignored.
    const { constants } = await import("node:os");
    process.kill(process.pid, outcome.signal);
    process.exit(128 + (constants.signals[outcome.signal] ?? 0));
  }
  if ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.abandonedNativeCall")] === true) {
    // A keychain call abandoned at its time limit still blocks a thread-pool thread, and Node joins those at
    // exit, so process.exit() would hang with it. Replacing the process image is the one way out that keeps the
    // exit code (see keystore/keyring.ts).
    if (process.execve) process.execve("/bin/sh", ["sh", "-c", `exit ${outcome.exitCode}`]);
    process.kill(process.pid, "SIGKILL");
  }
  process.exit(outcome.exitCode);
}
