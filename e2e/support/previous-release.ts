/**
 * A previous release of `latchkey-server`, built from git for the upgrade suite (e2e/server-upgrade.test.ts): the
 * server's and core's sources of an older commit, taken with `git archive` (read-only: no worktree, no checkout),
 * bundled like the test server (test-routes-bundle.ts) with today's installed dependencies. Only the code is
 * that release's; npm packages are today's, whose versions the server pins exactly.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";
import { installedExternal } from "../../packages/server/test/support/test-routes-bundle.js";
import { bundleForTest } from "./bundle.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The migrations `commit`'s server ships, in order, read from its sources. */
export function releaseMigrations(commit: string): string[] {
  const text = execFileSync("git", ["show", `${commit}:packages/server/src/db/migrations.ts`], {
    cwd: root,
    encoding: "utf8",
  });
  return [...text.matchAll(/^ {2}"(\d{4}_[a-z0-9_]+)":/gm)].map((m) => m[1]!).sort();
}

/**
 * Bundles the server of `commit` into `outdir` (sources unpacked under `outdir/src`); resolves with the script
 * to run with node. Throws when the commit is not in this clone (a shallow clone): the suite needs the history.
 */
export async function buildRelease(commit: string, outdir: string): Promise<string> {
  const sources = join(outdir, "src");
  execFileSync("mkdir", ["-p", sources]);
  const archive = execFileSync(
    "git",
    [
      "archive",
      "--format=tar",
      commit,
      "packages/core/src",
      "packages/server/src",
      "packages/server/package.json",
    ],
    { cwd: root, maxBuffer: 256 * 1024 * 1024 },
  );
  execFileSync("tar", ["-x", "-C", sources], { input: archive });
  const serverPackage = JSON.parse(await readFile(join(sources, "packages/server/package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  // That release's core, not today's (which node_modules/@latchkey/core links to).
  const releaseCore: Plugin = {
    name: "release-core",
    setup(b) {
      b.onResolve({ filter: /^@latchkey\/core$/ }, () => ({
        path: join(sources, "packages/core/src/index.ts"),
      }));
    },
  };
  await bundleForTest({
    entryPoints: {
      main: join(sources, "packages/server/src/main.ts"),
      "sync-writer": join(sources, "packages/server/src/sync/writer-worker.ts"),
    },
    outdir,
    outExtension: { ".js": ".mjs" },
    // The unpacked sources have no node_modules above them: packages resolve from the repository's.
    nodePaths: [join(root, "node_modules")],
    plugins: [releaseCore, installedExternal(Object.keys(serverPackage.dependencies))],
  });
  return join(outdir, "main.mjs");
}
