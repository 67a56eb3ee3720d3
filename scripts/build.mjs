// Builds the bundles. No command pays for module resolution in node_modules at start-up: everything is
// bundled except the N-API addons, which cannot be.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { buildWeb } from "./build-web.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const cliPackage = JSON.parse(await readFile(`${root}packages/cli/package.json`, "utf8"));

// CommonJS dependencies bundled into ESM still call require() for Node built-ins.
const requireShim = 'const require = process.getBuiltinModule("node:module").createRequire(import.meta.url);';

// Node's ESM wrappers of built-ins evaluate every export up front: `import … from "node:fs"` alone costs ~4 ms,
// because it reads fs.promises and so loads the promise API and the streams stack. process.getBuiltinModule
// hands over the CommonJS object without touching its getters; each name becomes a pure, lazily-kept read, so
// what the bundle does not use is dropped and never evaluated.
const builtinsViaGetBuiltinModule = {
  name: "builtins-via-getBuiltinModule",
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "latchkey-builtin" }));
    b.onLoad({ filter: /.*/, namespace: "latchkey-builtin" }, async (args) => {
      const names = Object.keys(await import(args.path)).filter(
        (name) => name !== "default" && /^[A-Za-z_$][\w$]*$/.test(name),
      );
      const lines = [
        `const builtin = process.getBuiltinModule(${JSON.stringify(args.path)});`,
        "export default builtin;",
        ...names.map((name) => `export const ${name} = /* @__PURE__ */ (() => builtin.${name})();`),
      ];
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

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

// The browser dashboard (scripts/build-web.mjs): core bundled from source, served by latchkey-server.
await buildWeb(root);

await rm(`${root}packages/cli/dist`, { recursive: true, force: true });
const cliDist = `${root}packages/cli/dist`;

// Three files, each one module: Node pays 1–2 ms for every module it resolves, reads and links, so the hot
// commands must not be split into shared chunks. The launcher answers --version alone; fast.cjs holds the
// commands other programs call often (fast-path.ts); cli.mjs the full commander CLI. The two bundles share
// source but not module instances, which is why what must be shared (the streams to flush) is process-global.
const cliCommon = {
  ...common,
  platform: "node",
  target: "node22.12",
  // The N-API addons cannot be bundled; the platform adapters' SDKs (libsodium's WebAssembly, AWS's clients) are
  // large and loaded by import() only when that platform is pushed, so bundling them would make every command's
  // start-up read them.
  external: [
    "@napi-rs/keyring",
    "@node-rs/argon2",
    "libsodium-wrappers",
    "@aws-sdk/client-ssm",
    "@aws-sdk/client-secrets-manager",
  ],
  define: { __LATCHKEY_VERSION__: JSON.stringify(cliPackage.version) },
};

// fast.cjs is CommonJS because the launcher runs it as a classic script through node:vm, to keep a code cache
// taken after the command ran (launcher/code-cache.ts). Such a script can neither require() nor import():
// built-ins come through process.getBuiltinModule, the packages left external through external.ts.
const fastBundle = `${cliDist}/fast.cjs`;
// The fast commands reach prompts and locks only off their hot path (a missing value on a TTY, a first write):
// loaded from node_modules then, they keep ~160 KB out of the bundle every helper call reads.
const fastExternal = [...cliCommon.external, "@clack/prompts", "proper-lockfile"];
// The hot commands read their files with zod-free readers (packages/cli/src/fast-readers.ts): zod would be most of
// their start-up. A module of theirs that reaches a schema of core's (not only its type) brings it back; refuse it.
const withoutZod = (result, name) => {
  const [output] = Object.values(result.metafile.outputs);
  const zod = Object.entries(output.inputs).find(
    ([input, { bytesInOutput }]) => /(^|\/)node_modules\/zod\//.test(input) && bytesInOutput > 0,
  );
  if (zod) throw new Error(`build: ${name} must not contain zod, but bundles ${zod[0]}`);
};
withoutZod(
  await build({
    ...cliCommon,
    format: "cjs",
    external: fastExternal,
    entryPoints: [`${root}packages/cli/src/fast-path.ts`],
    outfile: fastBundle,
    plugins: [builtinsViaGetBuiltinModule],
    metafile: true,
  }),
  "fast.cjs",
);
// esbuild escapes every non-ASCII character in code (its default charset) but copies the few comments it keeps
// inside expressions verbatim, and @noble's cite their specifications with a "§". Such a character after `//` is
// therefore in a comment, never in a string, and is spelled there as a \u escape; any other still fails the
// ASCII check below.
const fastText = (await readFile(fastBundle, "utf8")).replace(/\/\/[^\n]*/g, (comment) =>
  comment.replace(/\P{ASCII}/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
);
await writeFile(fastBundle, fastText);
// external.ts's imports of the packages left external are allowed: inside the launcher's script it uses the
// launcher's import() instead, so they never run.
const allowed = fastExternal.map((name) => JSON.stringify(name).replace(/[/.]/g, "\\$&")).join("|");
const scriptBreaker = new RegExp(`\\b(require|import)\\((?!(${allowed})\\))`).exec(fastText);
if (scriptBreaker) throw new Error(`build: fast.cjs calls ${scriptBreaker[1]}(), which a vm script cannot`);
// The launcher reads it as latin1, which is only right for ASCII (esbuild escapes everything else by default).
if ([...fastText].some((c) => c.charCodeAt(0) > 0x7f)) throw new Error("build: fast.cjs must be ASCII");
// An installed CLI has only its package's dependencies: whatever a bundle leaves to node_modules must be one.
for (const name of new Set([...fastExternal, ...cliCommon.external])) {
  if (!(name in cliPackage.dependencies))
    throw new Error(
      `build: ${name} is left outside the CLI bundles but is not a dependency of @latchkey/cli`,
    );
}
const fastBundleId = createHash("sha256").update(fastText).digest("hex").slice(0, 16);

await build({
  ...cliCommon,
  entryPoints: [`${root}packages/cli/src/cli.ts`],
  outfile: `${cliDist}/cli.mjs`,
  plugins: [builtinsViaGetBuiltinModule],
  banner: { js: requireShim },
});
{
  // The shim costs a little start-up time; keep it only where bundled CommonJS code really calls require().
  const file = `${cliDist}/cli.mjs`;
  const text = await readFile(file, "utf8");
  if (!text.includes(requireShim))
    throw new Error(`build: the require shim was not where expected in ${file}`);
  const body = text.replace(`${requireShim}\n`, "");
  if (!/\brequire\b/.test(body)) await writeFile(file, body);
}

await build({
  ...cliCommon,
  define: { ...cliCommon.define, __LATCHKEY_FAST_BUNDLE_ID__: JSON.stringify(fastBundleId) },
  entryPoints: [`${root}packages/cli/src/main.ts`],
  outfile: `${cliDist}/latchkey.mjs`,
  plugins: [
    {
      name: "launcher-imports",
      setup(b) {
        b.onResolve({ filter: /^\.\/cli\.js$/ }, () => ({ path: "./cli.mjs", external: true }));
      },
    },
  ],
});
// The launcher must never need the require shim: `--version` is measured against bare `node`.
const launcher = `${cliDist}/latchkey.mjs`;
if (/\brequire\b/.test(await readFile(launcher, "utf8")))
  throw new Error("build: the launcher must not need require()");
await chmod(launcher, 0o755);

// --- docker-credential-latchkey (issue 4): docker's credential helper, its own one-module bundle so that docker's
// calls before every pull and push load neither commander nor the rest of the CLI.
{
  const helper = `${cliDist}/docker-credential.mjs`;
  withoutZod(
    await build({
      ...cliCommon,
      // As for fast.mjs: the helper never prompts, and takes a lock only when it writes.
      external: [...cliCommon.external, "@clack/prompts", "proper-lockfile"],
      entryPoints: [`${root}packages/cli/src/helpers/docker-credential-main.ts`],
      outfile: helper,
      plugins: [builtinsViaGetBuiltinModule],
      banner: { js: requireShim },
      metafile: true,
    }),
    "docker-credential.mjs",
  );
  const text = await readFile(helper, "utf8");
  if (!text.includes(requireShim))
    throw new Error(`build: the require shim was not where expected in ${helper}`);
  const body = text.replace(`${requireShim}\n`, "");
  if (!/\brequire\b/.test(body)) await writeFile(helper, body);
}

// --- latchkey-server: the server process. Not one bundle like the CLI: start-up time is not its product, and its
// dependencies (fastify, kysely, pg) stay in node_modules, where `npm install` put them. @latchkey/core is bundled
// like in the CLI: it is a workspace, never published, so an installed server must not import it.
// Splitting keeps db/postgres.ts and pg in their own chunk, loaded only when DATABASE_URL selects PostgreSQL.
{
  const serverPackage = JSON.parse(await readFile(`${root}packages/server/package.json`, "utf8"));
  const serverDist = `${root}packages/server/dist`;
  await rm(serverDist, { recursive: true, force: true });
  await build({
    ...common,
    // The writer thread (sync/writer-thread.ts) is a script of its own, beside main.mjs.
    entryPoints: {
      main: `${root}packages/server/src/main.ts`,
      "sync-writer": `${root}packages/server/src/sync/writer-worker.ts`,
    },
    outdir: serverDist,
    outExtension: { ".js": ".mjs" },
    splitting: true,
    platform: "node",
    target: "node22.12",
    // The runtime dependencies stay outside, to be installed beside it; everything else is bundled.
    external: Object.keys(serverPackage.dependencies),
  });
}
