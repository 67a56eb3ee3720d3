/**
 * Bundles TypeScript sources into plain JavaScript for tests that run the real code in child processes: Node
 * strips types but cannot follow `.js` specifiers to `.ts` sources or resolve @latchkey/core's `source` export.
 */
import { build, type BuildOptions } from "esbuild";

/** esbuild options every test bundle shares; callers add entry points and the output. */
export const testBundleOptions: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  conditions: ["source"],
  logLevel: "silent",
  // proper-lockfile and its dependencies are CommonJS and call require(), which an ESM bundle lacks.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
};

/** Bundles `options` (entry points and output) with the shared settings. */
export async function bundleForTest(options: BuildOptions): Promise<void> {
  await build({ ...testBundleOptions, ...options });
}
