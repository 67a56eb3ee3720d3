#!/usr/bin/env node
// The bundle's entry point. `--version` is answered before anything else loads: it is the floor every other
// start-up is measured against (bench/), so it must cost no more than Node itself.
import { VERSION } from "./version.js";

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`${VERSION}\n`);
} else {
  const { main } = await import("./cli.js");
  const code = await main(argv);
  // Exit explicitly: a keychain call abandoned at its time limit may still hold a libuv thread.
  process.exit(code);
}
