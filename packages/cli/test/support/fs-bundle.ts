/**
 * Bundles the fs modules into plain JavaScript so child processes (see fs-child.ts) can run the real code:
 * Node strips types but cannot follow `.js` specifiers to `.ts` sources or resolve @latchkey/core's `source`
 * export.
 */
import { bundleForTest } from "../../../../e2e/support/bundle.js";
import { fileURLToPath } from "node:url";

const fsDir = fileURLToPath(new URL("../../src/fs/", import.meta.url));

/** Absolute path of the child helper, to run with `process.execPath`. */
export const fsChildScript = fileURLToPath(new URL("./fs-child.ts", import.meta.url));

/** Writes `safe-file.js` and `lock.js` (dependencies included) into `outdir`. */
export async function bundleFsModules(outdir: string): Promise<void> {
  await bundleForTest({ entryPoints: [`${fsDir}safe-file.ts`, `${fsDir}lock.ts`], outdir });
}
