// Packs the two installable commands, @latchkey/cli (latchkey, docker-credential-latchkey) and @latchkey/server
// (latchkey-server), into tarballs from the built dist/ (`npm run pack` builds first), so that
// `npm install -g ./packs/*.tgz` installs them like any published CLI. @latchkey/core is bundled into both, so the
// tarballs depend only on packages of the npm registry.
//
// Usage: node scripts/pack.mjs [--out DIR]   (default DIR: ./packs). Prints the tarballs' paths, one a line.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string" } } });
const out = resolve(values.out ?? `${root}packs`);
const workspaces = ["packages/cli", "packages/server"];

for (const file of ["packages/cli/dist/latchkey.mjs", "packages/server/dist/main.mjs"]) {
  if (!existsSync(`${root}${file}`)) throw new Error(`pack: ${file} is missing: run \`npm run build\` first`);
}
await mkdir(out, { recursive: true });
// Our older tarballs would be installed too by `npm install -g ./packs/*.tgz`, so they go; nothing else in DIR does,
// which may be a directory the user keeps other tarballs in. npm names a tarball `<name>-<version>.tgz`, the
// name's scope joined with "-" (@latchkey/cli: latchkey-cli-1.2.3.tgz); a version starts with a digit, which keeps
// a package whose name merely starts the same (latchkey-cli-extra-1.0.0.tgz) out.
const prefixes = await Promise.all(
  workspaces.map(async (dir) => {
    const { name } = JSON.parse(await readFile(`${root}${dir}/package.json`, "utf8"));
    return `${name.replace(/^@/, "").replace("/", "-")}-`;
  }),
);
const ours = (file) =>
  file.endsWith(".tgz") &&
  prefixes.some((prefix) => file.startsWith(prefix) && /\d/.test(file.charAt(prefix.length)));
for (const name of await readdir(out)) if (ours(name)) await unlink(resolve(out, name));

const packed = JSON.parse(
  execFileSync(
    "npm",
    [
      "pack",
      "--json",
      "--ignore-scripts",
      "--pack-destination",
      out,
      ...workspaces.flatMap((dir) => ["-w", dir]),
    ],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  ),
);
for (const { filename } of packed) process.stdout.write(`${resolve(out, filename)}\n`);
