// The shipped bundles (packages/cli/dist and packages/server/dist, as `npm run build` makes them) carry none of the
// tests' hooks: the crash points of `env rotate-key`, the CLI's clock offset and direct adoption of a key, the
// server's held-request route and its API clock live in the tests' own builds
// (packages/cli/test/support/crash-cli.ts, packages/server/test/support/test-routes-main.ts), so nothing in a
// user's environment can turn them on.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt } from "./support/latchkey-server.js";
import { expectSuccess, tempProject, type TempProject } from "./support/project.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Every file of the shipped bundles, with its text. */
async function shippedFiles(): Promise<{ file: string; text: string }[]> {
  assertBuilt();
  const files: { file: string; text: string }[] = [];
  for (const dist of ["packages/cli/dist", "packages/server/dist"]) {
    for (const name of await readdir(join(root, dist))) {
      const file = join(dist, name);
      files.push({ file, text: await readFile(join(root, file), "utf8") });
    }
  }
  return files;
}

describe("the shipped bundles", () => {
  it("name none of the tests' hooks", async () => {
    const files = await shippedFiles();
    expect(files.map((f) => f.file)).toEqual(
      expect.arrayContaining(["packages/cli/dist/cli.mjs", "packages/server/dist/main.mjs"]),
    );
    const found = files.flatMap(({ file, text }) =>
      [
        "LATCHKEY_TEST_CRASH_AT",
        "LATCHKEY_TEST_CLOCK_OFFSET_MS",
        "LATCHKEY_SERVER_TEST_ROUTES",
        "/__test/",
        "__test-adopt-key",
      ]
        .filter((hook) => text.includes(hook))
        .map((hook) => `${file}: ${hook}`),
    );
    expect(found).toEqual([]);
  });
});

describe("the shipped CLI", () => {
  let p: TempProject;
  beforeAll(async () => {
    p = await tempProject({ marker: "package.json" });
  });
  afterAll(() => p.cleanup());

  it("finishes `env rotate-key` whatever its environment says (the variable that once stopped it included)", async () => {
    expectSuccess(await p.cli(["env", "set", "SECRET=value"]));
    const rotated = await p.cli(["env", "rotate-key", "--json"], {
      env: { LATCHKEY_TEST_CRASH_AT: "pending-stored" },
    });
    expectSuccess(rotated);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ rotated: true, resumed: false, unreadable: [] });
    const exported = await p.cli(["env", "export", "--format", "json"]);
    expectSuccess(exported);
    expect(JSON.parse(exported.stdout)).toEqual({ SECRET: "value" });
  });
});
