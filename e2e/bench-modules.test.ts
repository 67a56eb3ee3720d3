// `npm run bench` runs bench/*.ts with plain Node (type stripping, no bundler), which resolves imports as
// written: a `./x.js` that names a .ts file works under vitest and fails there. The bench is not part of
// `npm test`, so this keeps its modules loadable (a review once broke it unnoticed).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

describe("the bench's modules", () => {
  it("load under plain Node, as `npm run bench` runs them", async () => {
    // run.ts itself starts the bench when imported; everything it imports is here.
    const modules = [
      "bench/server.ts",
      "bench/teams.ts",
      "bench/ci.ts",
      ...["keychain", "report", "spawn", "stats"].map((m) => `bench/lib/${m}.ts`),
    ];
    const script = `for (const m of ${JSON.stringify(modules)}) await import(new URL(m, ${JSON.stringify(`file://${root}`)}).href); console.log("loaded");`;
    const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", script], { cwd: root });
    expect(stdout.trim()).toBe("loaded");
  });
});
