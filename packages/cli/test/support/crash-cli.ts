// The `latchkey` command as the tests' own build runs it: the real commands in a real process (the fast commands
// on the fast path, as the shipped launcher runs them), plus hooks no shipped entry has:
// - LATCHKEY_TEST_CRASH_AT=<step>[:<n>] makes the process SIGKILL itself right after the n-th <step> (default the
//   first) of `env rotate-key` (RotateStep, sync/rotate.ts) or of `env rotate-sharing-key` (SharingKeyRotateStep,
//   sharing/sharing-key.ts);
// - LATCHKEY_TEST_CLOCK_OFFSET_MS=<ms> sets the command's clock that far ahead of the real one, so a test can see
//   what `run --offline` does with a copy synced a day ago without waiting a day;
// - `latchkey __test-adopt-key`, the base64 wrapping key on stdin, adopts it by adoptWrappingKey, exactly as
//   `latchkey pair` does once it has opened the sealed key, so a crash test can stop adoption at each step without
//   a whole pairing (a password, a code, two machines) for every crash.
// This entry exists only in the tests' own bundle (crash-cli-bundle.ts): the shipped bundles read no such
// variable, so no user's environment can stop a command halfway or move its clock.
import { fromBase64, isLatchkeyError } from "@latchkey/core";
import { runCliForOutcome } from "../../src/cli.js";
import type { Context } from "../../src/context.js";
import { parseFastPath, runFastCommand } from "../../src/fast-path.js";
import { createNodeContext, flushOutputs } from "../../src/node-context.js";
import { exitLikeChild } from "../../src/run/child.js";
import type { SharingKeyRotateStep } from "../../src/sharing/sharing-key.js";
import { adoptWrappingKey, type RotateStep } from "../../src/sync/rotate.js";

function crashAt(spec: string | undefined): ((step: RotateStep | SharingKeyRotateStep) => void) | undefined {
  if (spec === undefined || spec === "") return undefined;
  const [at, nth] = spec.split(":");
  let left = Number(nth ?? "1");
  return (step) => {
    if (step === at && --left === 0) process.kill(process.pid, "SIGKILL");
  };
}

function clockAhead(ctx: Context, spec: string | undefined): Context {
  if (spec === undefined || spec === "") return ctx;
  const offset = Number(spec);
  if (!Number.isSafeInteger(offset))
    throw new Error(`LATCHKEY_TEST_CLOCK_OFFSET_MS is not an integer: ${spec}`);
  return { ...ctx, clock: { ...ctx.clock, now: () => Date.now() + offset } };
}

const argv = process.argv.slice(2);
const crash = crashAt(process.env.LATCHKEY_TEST_CRASH_AT);
const base = clockAhead(createNodeContext(), process.env.LATCHKEY_TEST_CLOCK_OFFSET_MS);
const ctx = crash === undefined ? base : { ...base, afterRotateStep: crash };
if (argv[0] === "__test-adopt-key") {
  let text = "";
  for await (const chunk of process.stdin) text += String(chunk);
  const adopted = await adoptWrappingKey(ctx, fromBase64(text.trim())).catch((error: unknown) => {
    process.stderr.write(`error ${isLatchkeyError(error) ? error.code : String(error)}\n`);
    return null;
  });
  if (adopted !== null) process.stdout.write(`${JSON.stringify(adopted)}\n`);
  await flushOutputs();
  process.exit(adopted === null ? 1 : 0);
}
const fast = parseFastPath(argv);
const outcome = fast === null ? await runCliForOutcome(argv, ctx) : await runFastCommand(fast, ctx);
if (outcome.signal) exitLikeChild({ code: null, signal: outcome.signal });
// process.exit() would drop what a full pipe has not taken yet.
await flushOutputs();
process.exit(outcome.exitCode);
