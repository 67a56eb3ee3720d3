// Shell completion as a user gets it: the script the built CLI prints, loaded in a real shell, completing a
// project's vault environments and the registries of config.toml through the built CLI's `__complete`, which
// must name things and never show a secret.
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { availableShells, completeLine } from "../packages/cli/test/support/completion-shells.js";
import { CLI } from "./support/cli.js";
import { expectSuccess, tempProject, type TempProject } from "./support/project.js";

const SECRET = "completion-canary-value-7d2e";

const projects: TempProject[] = [];
afterEach(async () => {
  await Promise.all(projects.splice(0).map((p) => p.cleanup()));
});

/** A project with two environments, a registry in config.toml, and `latchkey` on PATH as the built CLI. */
async function setUp(): Promise<{ p: TempProject; env: NodeJS.ProcessEnv }> {
  const p = await tempProject();
  projects.push(p);
  expectSuccess(await p.cli(["env", "set", `DB=${SECRET}`]));
  expectSuccess(await p.cli(["env", "set", "--env", "staging", `DB=${SECRET}`]));
  await writeFile(join(p.latchkeyHome, "config.toml"), '[registries."https://npm.example.com/team/"]\n');
  const bin = join(p.root, "bin");
  await mkdir(bin);
  await writeFile(join(bin, "latchkey"), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  await chmod(join(bin, "latchkey"), 0o755);
  return { p, env: { ...p.env(), PATH: `${bin}:${process.env.PATH ?? ""}` } };
}

describe("latchkey completion, end to end", () => {
  it("__complete lists environment and registry names only", async () => {
    const { p } = await setUp();
    const envs = await p.cli(["__complete", "envs"]);
    expectSuccess(envs);
    expect(envs.stdout).toBe("default\nstaging\n");
    const registries = await p.cli(["__complete", "registries"]);
    expectSuccess(registries);
    expect(registries.stdout).toBe("https://npm.example.com/team/\n");
    for (const r of [envs, registries]) expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it.each(availableShells())(
    "completes the project's names in %s through the installed latchkey",
    async (shell) => {
      const { p, env } = await setUp();
      const printed = await p.cli(["completion", shell]);
      expectSuccess(printed);
      expect(printed.stdout).not.toContain(SECRET);
      const script = join(p.root, `latchkey.${shell}`);
      await writeFile(script, printed.stdout);
      const complete = (line: string) => completeLine(shell, script, line, { cwd: p.dir, env });
      expect(complete("latchkey run -e st")).toEqual(["staging"]);
      expect(complete("latchkey env get --env=d")).toEqual(["--env=default"]);
      expect(complete("latchkey token --registry https://npm.ex")).toEqual(["https://npm.example.com/team/"]);
      expect(complete("latchkey compl")).toEqual(["completion"]);
    },
  );
});
