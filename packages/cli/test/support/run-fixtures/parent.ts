/**
 * A stand-in for `latchkey run` in the run tests, bundled by child.test.ts and run with `process.execPath`:
 * `parent.js [--mask NAME,NAME] -- command args…` runs the command through runChild with this process's
 * environment, masking the values of the named variables (named, so secrets stay out of argv here too), then
 * ends through exitLikeChild. A LatchkeyError prints `CODE message` on stderr and exits with its exit code.
 */
import { isLatchkeyError } from "@latchkey/core";
import { exitLikeChild, runChild } from "../../../src/run/child.js";

const argv = process.argv.slice(2);
const separator = argv.indexOf("--");
const [command, ...args] = argv.slice(separator + 1);
if (separator === -1 || command === undefined)
  throw new Error("usage: parent.js [--mask NAME,NAME] -- command args…");
const maskIndex = argv.indexOf("--mask");
const maskNames = maskIndex === -1 || maskIndex > separator ? null : (argv[maskIndex + 1] ?? "").split(",");

const env: Record<string, string> = {};
for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;

try {
  const result = await runChild({
    command,
    args,
    env,
    mask: maskNames === null ? null : maskNames.map((name) => env[name] ?? ""),
  });
  exitLikeChild(result);
} catch (error) {
  if (!isLatchkeyError(error)) throw error;
  process.stderr.write(`${error.code} ${error.message}\n`);
  process.exit(error.exitCode);
}
