// Builds the bundles. The CLI ships as a small launcher (answers --version on its own) plus one bundled chunk
// with everything else, so no command pays for module resolution in node_modules at start-up; only the
// N-API addons stay external, because they cannot be bundled.
import { build } from "esbuild";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const cliPackage = JSON.parse(await readFile(`${root}packages/cli/package.json`, "utf8"));

// CommonJS dependencies bundled into ESM still call require() for Node built-ins.
const requireShim =
  'import { createRequire as __latchkeyCreateRequire } from "node:module"; const require = __latchkeyCreateRequire(import.meta.url);';

const common = {
  bundle: true,
  format: "esm",
  conditions: ["source"],
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
};

await rm(`${root}packages/core/dist`, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: [`${root}packages/core/src/index.ts`],
  outfile: `${root}packages/core/dist/index.js`,
  platform: "neutral",
});

await rm(`${root}packages/cli/dist`, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { latchkey: `${root}packages/cli/src/main.ts` },
  outdir: `${root}packages/cli/dist`,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  platform: "node",
  target: "node22.12",
  external: ["@napi-rs/keyring", "@node-rs/argon2"],
  define: { __LATCHKEY_VERSION__: JSON.stringify(cliPackage.version) },
  banner: { js: requireShim },
});
// The launcher itself requires nothing, and `--version` is measured against bare `node`: loading node:module
// there costs a few milliseconds for nothing, so the shim is taken out of that one file.
const launcher = `${root}packages/cli/dist/latchkey.mjs`;
const launcherText = await readFile(launcher, "utf8");
if (!launcherText.includes(requireShim)) throw new Error("build: the require shim was not where expected");
await writeFile(launcher, launcherText.replace(`${requireShim}\n`, ""));
await chmod(launcher, 0o755);
