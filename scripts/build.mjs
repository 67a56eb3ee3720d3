// Builds the bundles. The CLI ships as a small launcher (answers --version on its own) plus one bundled chunk
// with everything else, so no command pays for module resolution in node_modules at start-up; only the
// N-API addons stay external, because they cannot be bundled.
import { build } from "esbuild";
import { chmod, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

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
  plugins: [builtinsViaGetBuiltinModule],
  define: { __LATCHKEY_VERSION__: JSON.stringify(cliPackage.version) },
  banner: { js: requireShim },
});
// The shim costs a little start-up time; keep it only in the chunks whose bundled CommonJS
// code really calls require(). The launcher must never have it: `--version` is measured against bare `node`.
const launcher = `${root}packages/cli/dist/latchkey.mjs`;
const outputs = [
  launcher,
  ...(await readdir(`${root}packages/cli/dist/chunks`)).map((f) => `${root}packages/cli/dist/chunks/${f}`),
];
for (const file of outputs) {
  const text = await readFile(file, "utf8");
  if (!text.includes(requireShim))
    throw new Error(`build: the require shim was not where expected in ${file}`);
  const body = text.replace(`${requireShim}\n`, "");
  if (file === launcher && /\brequire\b/.test(body))
    throw new Error("build: the launcher must not need require()");
  if (file === launcher || !/\brequire\b/.test(body)) await writeFile(file, body);
}
await chmod(launcher, 0o755);
