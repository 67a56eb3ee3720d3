// One prompt of the real context (node-context.ts) on whatever terminal this program was started on, for
// e2e/prompts.test.ts: `prompt-driver.js secret|confirm`. Prints the answer as JSON on stdout, or the error the
// way the CLI does, and exits with the CLI's exit code for it.
import { createNodeContext, flushOutputs } from "../../src/node-context.js";
import { printError } from "../../src/output/output.js";

const ctx = createNodeContext();
let exitCode = 0;
try {
  const answer =
    process.argv[2] === "confirm"
      ? await ctx.prompts.confirm("Go ahead?", false)
      : await ctx.prompts.secret("Secret value");
  ctx.stdout.write(`answer: ${JSON.stringify(answer)}\n`);
} catch (error) {
  exitCode = printError(ctx, error, 0);
}
await flushOutputs();
process.exit(exitCode);
