/**
 * Builds the process tests' `latchkey-server` with its test-only route (test-routes-main.ts), apart from the
 * shipped dist/, which never carries it. Like scripts/build.mjs, it leaves the server's dependencies to
 * node_modules, and puts the writer thread's script beside the entry.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";
import { bundleForTest } from "../../../../e2e/support/bundle.js";

/**
 * Leaves `names` (and their subpaths) outside the bundle, imported by absolute path: the bundle is written to a
 * temporary directory, where no node_modules is found.
 */
export function installedExternal(names: readonly string[]): Plugin {
  const resolving = Symbol("resolving");
  return {
    name: "installed-external",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === resolving) return undefined;
        if (!names.some((name) => args.path === name || args.path.startsWith(`${name}/`))) return undefined;
        const resolved = await b.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: resolving,
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        return { path: resolved.path, external: true };
      });
    },
  };
}

/** Bundles test-routes-main.ts and the writer thread into `outdir`; resolves with the script to run with node. */
export async function bundleServerWithTestRoutes(outdir: string): Promise<string> {
  const serverPackage = JSON.parse(
    await readFile(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8"),
  ) as { dependencies: Record<string, string> };
  await bundleForTest({
    entryPoints: {
      "test-routes-main": fileURLToPath(new URL("./test-routes-main.ts", import.meta.url)),
      "sync-writer": fileURLToPath(new URL("../../src/sync/writer-worker.ts", import.meta.url)),
    },
    outdir,
    outExtension: { ".js": ".mjs" },
    plugins: [installedExternal(Object.keys(serverPackage.dependencies))],
  });
  return join(outdir, "test-routes-main.mjs");
}
