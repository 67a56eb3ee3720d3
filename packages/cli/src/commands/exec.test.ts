import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import { resolvePaths } from "../paths.js";
import { handoffVariable } from "../registry/handoff.js";
import { execWithTokens, planExec } from "./exec.js";

let dir: string;
let home: string;
let app: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-exec-"));
  home = join(dir, "home");
  app = join(dir, "app");
  await mkdir(home);
  await mkdir(app);
  await writeFile(join(app, "package.json"), "{}");
  await writeFile(
    join(app, ".npmrc"),
    "@a:registry=http://127.0.0.1:4873/\n@b:registry=https://b.example/npm/\n",
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function context(stored: Record<string, string>, env: Record<string, string> = {}, os?: NodeJS.Platform) {
  const fullEnv = { HOME: home, LATCHKEY_HOME: join(dir, "lk"), PATH: process.env.PATH ?? "", ...env };
  const keystore = createMemoryKeystore(stored);
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  return createTestContext({
    env: fullEnv,
    paths: resolvePaths(fullEnv),
    cwd: app,
    keystore: () => Promise.resolve(resolution),
    ...(os === undefined ? {} : { platform: { nodeVersion: "24.0.0", uid: null, machineIdPaths: [], os } }),
  });
}

describe("planExec", () => {
  it("hands each stored token over under its registry's keys and notes the registries without one", async () => {
    const ctx = context({ "registry://127.0.0.1:4873/": "tok-a" });
    const plan = await planExec(ctx, { strict: false, verbose: 0 });
    expect(plan.env).toEqual({
      "npm_config_//127.0.0.1:4873/:_authToken": "tok-a",
      "pnpm_config_//127.0.0.1:4873/:_authToken": "tok-a",
      [handoffVariable("//127.0.0.1:4873/")]: "tok-a",
    });
    expect(plan.registries.map((r) => [r.registry.nerfDart, r.source])).toEqual([
      ["//registry.npmjs.org/", null],
      ["//127.0.0.1:4873/", "keystore"],
      ["//b.example/npm/", null],
    ]);
    const notes = ctx.stderr.text();
    expect(notes).toContain("no token for //registry.npmjs.org/ (npm's default registry)");
    expect(notes).toContain(`no token for //b.example/npm/ (@b registry in ${join(app, ".npmrc")})`);
    expect(notes).not.toContain("tok-a");
    expect(ctx.stdout.text()).toBe("");
  });

  it("uses NPM_TOKEN for npmjs only, as resolveRegistryToken decides", async () => {
    const ctx = context({}, { NPM_TOKEN: "npm-tok" });
    const plan = await planExec(ctx, { strict: false, verbose: 1 });
    expect(plan.env["npm_config_//registry.npmjs.org/:_authToken"]).toBe("npm-tok");
    expect(Object.values(plan.env).filter((v) => v === "npm-tok")).toHaveLength(3);
    expect(ctx.stderr.text()).toContain("Passing the env token for //registry.npmjs.org/");
    expect(ctx.stderr.text()).not.toContain("npm-tok");
  });

  it("under --strict refuses when a named registry has no token, but not for the implicit npmjs", async () => {
    const missing = context({ "registry://127.0.0.1:4873/": "tok-a" });
    await expect(planExec(missing, { strict: true, verbose: 0 })).rejects.toSatisfy(
      (e) =>
        isLatchkeyError(e, "LK_TOKEN_MISSING") &&
        e.message.includes("//b.example/npm/") &&
        !e.message.includes("npmjs"),
    );
    const complete = context({ "registry://127.0.0.1:4873/": "tok-a", "registry://b.example/npm/": "tok-b" });
    const plan = await planExec(complete, { strict: true, verbose: 0 });
    expect(plan.env["npm_config_//b.example/npm/:_authToken"]).toBe("tok-b");
  });
});

describe("a project's tokenEnv", () => {
  const SECRET = "aws-canary-77ab";
  beforeEach(async () => {
    // The @b registry the project's .npmrc names, with the user's AWS secret as its token.
    await writeFile(
      join(app, "latchkey.json"),
      JSON.stringify({ registries: { "https://b.example/npm/": { tokenEnv: "AWS_SECRET_ACCESS_KEY" } } }),
    );
  });

  it("is not handed to the program without approval", async () => {
    const ctx = context({ "registry://127.0.0.1:4873/": "tok-a" }, { AWS_SECRET_ACCESS_KEY: SECRET });
    await expect(planExec(ctx, { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_ENV_NOT_APPROVED") && !e.message.includes(SECRET),
    );
    const state = { exitCode: 0 };
    await expect(
      execWithTokens(ctx, state, { command: [process.execPath, "-e", "0"], strict: false, verbose: 0 }),
    ).rejects.toSatisfy((e) => isLatchkeyError(e, "LK_TOKEN_ENV_NOT_APPROVED"));

    // The registry's own token, when there is one, is what goes.
    const stored = context({ "registry://b.example/npm/": "tok-b" }, { AWS_SECRET_ACCESS_KEY: SECRET });
    const plan = await planExec(stored, { strict: false, verbose: 0 });
    expect(plan.env["npm_config_//b.example/npm/:_authToken"]).toBe("tok-b");
    expect(Object.values(plan.env)).not.toContain(SECRET);
  });
});

describe("a project file that would send a handed token elsewhere", () => {
  const A = "//127.0.0.1:4873/";
  const stored = { "registry://127.0.0.1:4873/": "tok-a" };
  const npmrc = (extra: string) =>
    writeFile(
      join(app, ".npmrc"),
      `@a:registry=http://127.0.0.1:4873/\n@b:registry=https://b.example/npm/\n${extra}\n`,
    );

  it("refuses an .npmrc line that names a handed variable other than as its registry's own token", async () => {
    for (const line of [
      `//b.example/npm/:_authToken=\${${handoffVariable(A)}}`,
      `//b.example/npm/:_authToken=\${npm_config_${A}:_authToken}`,
      `registry=https://b.example/\${${handoffVariable(A)}}/`,
      `${A}:_authToken=prefix-\${${handoffVariable(A)}}`,
      // npm's optional form, pnpm's and yarn's fallback forms expand the same variable.
      `//b.example/npm/:_authToken=\${${handoffVariable(A)}?}`,
      `//b.example/npm/:_authToken=\${${handoffVariable(A)}:-none}`,
      `//b.example/npm/:_authToken=\${${handoffVariable(A)}-none}`,
    ]) {
      await npmrc(line);
      await expect(planExec(context(stored), { strict: false, verbose: 0 }), line).rejects.toSatisfy(
        (e) =>
          isLatchkeyError(e, "LK_TOKEN_REROUTED") &&
          e.message.includes(`${join(app, ".npmrc")}:3`) &&
          !e.message.includes("tok-a"),
      );
    }
  });

  it("accepts the registry's own line, other variables and escaped references", async () => {
    for (const line of [
      `${A}:_authToken=\${${handoffVariable(A)}}`,
      "//b.example/npm/:_authToken=${B_TOKEN}",
      `; a comment naming \${${handoffVariable(A)}}`,
      `//b.example/npm/:always-auth=\\\${${handoffVariable(A)}}`,
    ]) {
      await npmrc(line);
      const plan = await planExec(context(stored), { strict: false, verbose: 0 });
      expect(plan.env[handoffVariable(A)], line).toBe("tok-a");
    }
  });

  it("compares variable names the way the platform does", async () => {
    await npmrc(`//b.example/npm/:_authToken=\${${handoffVariable(A).toLowerCase()}}`);
    await expect(planExec(context(stored, {}, "win32"), { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_REROUTED"),
    );
    // Elsewhere that is another, unset variable: npm would expand nothing.
    expect((await planExec(context(stored, {}, "linux"), { strict: false, verbose: 0 })).env).toHaveProperty(
      handoffVariable(A),
    );
  });

  it("checks .yarnrc.yml here and above: only the registry's own npmAuthToken may name its variable", async () => {
    const own = [
      "npmRegistries:",
      '  "//127.0.0.1:4873/":',
      `    npmAuthToken: "\${${handoffVariable(A)}}"`,
      `  "https://127.0.0.1:4873/": { npmAuthToken: "\${${handoffVariable(A)}}" }`,
      "",
    ].join("\n");
    await writeFile(join(app, ".yarnrc.yml"), own);
    expect((await planExec(context(stored), { strict: false, verbose: 0 })).env).toHaveProperty(
      handoffVariable(A),
    );
    for (const [where, text, line] of [
      [app, `npmRegistries:\n  "//b.example/npm/":\n    npmAuthToken: "\${${handoffVariable(A)}}"\n`, 3],
      [app, `npmRegistries:\n  "//b.example/npm/": { npmAuthToken: "\${${handoffVariable(A)}}" }\n`, 2],
      [app, `npmAuthToken: "\${${handoffVariable(A)}}"\n`, 1],
      [app, `npmRegistries:\n  "//b.example/npm/":\n    npmAuthToken: "\${${handoffVariable(A)}:-}"\n`, 3],
      [dir, `npmScopes:\n  evil:\n    npmRegistryServer: "https://b.example/\${${handoffVariable(A)}}"\n`, 3],
    ] as const) {
      await writeFile(join(app, ".yarnrc.yml"), where === app ? text : own);
      if (where !== app) await writeFile(join(where, ".yarnrc.yml"), text);
      await expect(planExec(context(stored), { strict: false, verbose: 0 })).rejects.toSatisfy(
        (e) =>
          isLatchkeyError(e, "LK_TOKEN_REROUTED") &&
          e.message.includes(`${join(where, ".yarnrc.yml")}:${line}`),
      );
    }
  });
});

describe("execWithTokens", () => {
  it("runs the program with the tokens in its environment and returns its exit code", async () => {
    const ctx = context({ "registry://127.0.0.1:4873/": "tok-a" });
    const check =
      'process.exit(process.env["npm_config_//127.0.0.1:4873/:_authToken"] === "tok-a" && ' +
      `process.env.${handoffVariable("//127.0.0.1:4873/")} === "tok-a" && !process.argv.join(" ").includes("tok-a") ? 42 : 1)`;
    const state = { exitCode: 0 };
    expect(
      await execWithTokens(ctx, state, {
        command: [process.execPath, "-e", check],
        strict: false,
        verbose: 0,
      }),
    ).toBe(42);
  });

  it("refuses an empty command line", async () => {
    await expect(
      execWithTokens(context({}), { exitCode: 0 }, { command: [], strict: false, verbose: 0 }),
    ).rejects.toSatisfy((e) => isLatchkeyError(e, "LK_USAGE"));
  });
});
