/**
 * Builds the crash tests' `latchkey` (crash-cli.ts): the CLI's sources with crash points, bundled apart from the
 * shipped dist/ so that those never carry them.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForTest } from "../../../../e2e/support/bundle.js";

/** Bundles crash-cli.ts into `outdir`; resolves with the script to run with `process.execPath`. */
export async function bundleCrashCli(outdir: string): Promise<string> {
  const outfile = join(outdir, "crash-cli.mjs");
  await bundleForTest({
    entryPoints: [fileURLToPath(new URL("./crash-cli.ts", import.meta.url))],
    outfile,
  });
  return outfile;
}
