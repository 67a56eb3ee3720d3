// Packs the two installable commands, @latchkey/cli (latchkey, docker-credential-latchkey) and @latchkey/server
// (latchkey-server), into tarballs from the built dist/ (`npm run pack` builds first), so that
// `npm install -g packs/*.tgz` installs them like any published CLI. @latchkey/core is bundled into both, so the
// tarballs depend only on packages of the npm registry.
//
// Usage: node scripts/pack.mjs [--out DIR]   (default DIR: ./packs). Prints the tarballs' paths, one a line.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, unlink } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string" } } });
const out = resolve(values.out ?? `${root}packs`);

for (const file of ["packages/cli/dist/latchkey.mjs", "packages/server/dist/main.mjs"]) {
  if (!existsSync(`${root}${file}`)) throw new Error(`pack: ${file} is missing: run \`npm run build\` first`);
}
await mkdir(out, { recursive: true });
// Older tarballs would be installed too by `npm install -g packs/*.tgz`.
for (const name of await readdir(out)) if (name.endsWith(".tgz")) await unlink(resolve(out, name));

const packed = JSON.parse(
  execFileSync(
    "npm",
    [
      "pack",
      "--json",
      "--ignore-scripts",
      "--pack-destination",
      out,
      "-w",
      "packages/cli",
      "-w",
      "packages/server",
    ],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  ),
);
for (const { filename } of packed) process.stdout.write(`${resolve(out, filename)}\n`);
