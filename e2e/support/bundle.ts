/**
 * Bundles TypeScript sources into plain JavaScript for tests that run the real code in child processes: Node
 * strips types but cannot follow `.js` specifiers to `.ts` sources or resolve @latchkey/core's `source` export.
 */
import { createRequire } from "node:module";
import { build, type BuildOptions, type Plugin } from "esbuild";

const require = createRequire(import.meta.url);

// N-API addons cannot be bundled: they stay imports of their installed entry, by absolute path because the bundle
// is written to a temporary directory, where no node_modules is found.
const nativeAddonsExternal: Plugin = {
  name: "native-addons-external",
  setup(b) {
    b.onResolve({ filter: /^(@napi-rs\/keyring|@node-rs\/argon2)$/ }, (args) => ({
      path: require.resolve(args.path),
      external: true,
    }));
  },
};

/** esbuild options every test bundle shares; callers add entry points and the output. */
const testBundleOptions: BuildOptions = {
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

/** Bundles `options` (entry points and output) with the shared settings (`options.plugins` come after ours). */
export async function bundleForTest(options: BuildOptions): Promise<void> {
  await build({
    ...testBundleOptions,
    ...options,
    plugins: [nativeAddonsExternal, ...(options.plugins ?? [])],
  });
}
