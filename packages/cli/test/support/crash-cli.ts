// The `latchkey` command as the crash tests run it: the real commands in a real process, plus crash points.
// LATCHKEY_TEST_CRASH_AT=<step>[:<n>] makes the process SIGKILL itself right after the n-th <step> (default the
// first) of `env rotate-key` or of adopting a paired wrapping key (RotateStep, sync/rotate.ts). This entry exists
// only in the tests' own bundle (crash-cli-bundle.ts): the shipped bundles read no such variable, so no user's
// environment can stop a command halfway.
import { runCliForOutcome } from "../../src/cli.js";
import { createNodeContext, flushOutputs } from "../../src/node-context.js";
import type { RotateStep } from "../../src/sync/rotate.js";

function crashAt(spec: string | undefined): ((step: RotateStep) => void) | undefined {
  if (spec === undefined || spec === "") return undefined;
  const [at, nth] = spec.split(":");
  let left = Number(nth ?? "1");
  return (step) => {
    if (step === at && --left === 0) process.kill(process.pid, "SIGKILL");
  };
}

const crash = crashAt(process.env.LATCHKEY_TEST_CRASH_AT);
const ctx = createNodeContext();
const { exitCode } = await runCliForOutcome(
  process.argv.slice(2),
  crash === undefined ? ctx : { ...ctx, afterRotateStep: crash },
);
// process.exit() would drop what a full pipe has not taken yet.
await flushOutputs();
process.exit(exitCode);
