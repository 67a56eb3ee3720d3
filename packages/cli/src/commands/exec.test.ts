import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
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

describe("a project file that makes the client read configuration the check cannot see", () => {
  const A = "//127.0.0.1:4873/";
  const stored = { "registry://127.0.0.1:4873/": "tok-a" };
  const refusal = (file: string, line: number) => (e: unknown) =>
    isLatchkeyError(e, "LK_PROJECT_CONFIG_UNCHECKED") &&
    e.message.includes(`${file}:${line}`) &&
    !e.message.includes("tok-a");

  it("refuses an .npmrc setting userconfig, globalconfig or prefix, which make npm load another file", async () => {
    // npm loads the project file first: these choose the user and global files it then reads and expands, where
    // `//its-host/:_authToken=${LATCHKEY_TOKEN_…}` is never seen by the line check.
    await writeFile(join(app, "other.rc"), `//b.example/npm/:_authToken=\${${handoffVariable(A)}}\n`);
    for (const line of [
      "userconfig=./other.rc",
      "globalconfig = ./other.rc",
      "prefix=./p",
      '"userconfig"="./other.rc"',
      "${SETTING}=./other.rc",
    ]) {
      await writeFile(join(app, ".npmrc"), `@a:registry=http://127.0.0.1:4873/\n${line}\n`);
      await expect(
        planExec(context(stored, { SETTING: "globalconfig" }), { strict: false, verbose: 0 }),
        line,
      ).rejects.toSatisfy(refusal(join(app, ".npmrc"), 2));
    }
    // With no token to hand over there is nothing to protect.
    await expect(planExec(context({}), { strict: false, verbose: 0 })).resolves.toMatchObject({ env: {} });
  });

  it("checks the .npmrc of a workspace root, and of every directory above, not only the package's", async () => {
    // npm reads the root's .npmrc inside a workspace package; yarn 1 reads every directory's up to /.
    const pkg = join(app, "packages", "a");
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, "package.json"), "{}");
    await writeFile(join(app, "package.json"), JSON.stringify({ workspaces: ["packages/*"] }));
    const line = `//b.example/npm/:_authToken=\${${handoffVariable(A)}}`;
    await writeFile(join(app, ".npmrc"), `@a:registry=http://127.0.0.1:4873/\n${line}\n`);
    const inPkg = (env: Record<string, string> = {}) => ({ ...context(stored, env), cwd: pkg });
    await expect(planExec(inPkg(), { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_REROUTED") && e.message.includes(`${join(app, ".npmrc")}:2`),
    );
    await writeFile(join(app, ".npmrc"), "");
    await writeFile(join(pkg, ".npmrc"), "@a:registry=http://127.0.0.1:4873/\n");
    await writeFile(join(app, "package.json"), "{}");
    await writeFile(join(dir, ".npmrc"), `${line}\n`);
    await expect(planExec(inPkg(), { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_REROUTED") && e.message.includes(`${join(dir, ".npmrc")}:1`),
    );
    await writeFile(join(dir, ".npmrc"), "userconfig=./x\n");
    await expect(planExec(inPkg(), { strict: false, verbose: 0 })).rejects.toSatisfy(
      refusal(join(dir, ".npmrc"), 1),
    );
    // The user's own .npmrc is theirs, wherever it is.
    expect(
      (await planExec(inPkg({ npm_config_userconfig: join(dir, ".npmrc") }), { strict: false, verbose: 0 }))
        .env,
    ).toHaveProperty(handoffVariable(A));
  });

  it("reads .yarnrc.yml as YAML, as yarn does before it expands ${VAR}: escapes and line folding hide nothing", async () => {
    const v = handoffVariable(A);
    const other = (value: string) => `npmRegistries:\n  "//b.example/npm/":\n    npmAuthToken: ${value}\n`;
    for (const [text, line] of [
      [other(`"\\x24{${v}}"`), 3],
      [other(`"\\u0024{${v}}"`), 3],
      [other(`"\\U00000024{${v}\\x7d"`), 3],
      [other(`"\${${v.replace("_TOKEN_", "\\x5fTOKEN_")}}"`), 3],
      [other(`"$\\\n      {${v}}"`), 3],
      [other(`|-\n      #\${${v}}`), 3],
      [
        `npmScopes:\n  evil:\n    npmRegistryServer: "https://b.example/"\n    npmAuthToken: "\\u0024{${v}}"\n`,
        4,
      ],
      [`npmAuthToken: "\\x24{${v}}"\n`, 1],
    ] as const) {
      await writeFile(join(app, ".yarnrc.yml"), text);
      await expect(planExec(context(stored), { strict: false, verbose: 0 }), text).rejects.toSatisfy(
        (e) =>
          isLatchkeyError(e, "LK_TOKEN_REROUTED") &&
          e.message.includes(`${join(app, ".yarnrc.yml")}:${line}`),
      );
    }
  });

  it("refuses a .yarnrc.yml whose own line lends its value elsewhere, or that names the variable anywhere else", async () => {
    const v = handoffVariable(A);
    const own = `npmRegistries:\n  "${A}":\n    npmAuthToken: &t "\${${v}}"\n`;
    for (const [text, line] of [
      [`${own}npmScopes:\n  evil:\n    npmAuthToken: *t\n`, 6],
      [`${own}# npmAuthToken: "\${${v}}"\n`, 4],
    ] as const) {
      await writeFile(join(app, ".yarnrc.yml"), text);
      await expect(planExec(context(stored), { strict: false, verbose: 0 }), text).rejects.toSatisfy(
        (e) =>
          isLatchkeyError(e, "LK_TOKEN_REROUTED") &&
          e.message.includes(`${join(app, ".yarnrc.yml")}:${line}`),
      );
    }
  });

  it("refuses a .yarnrc.yml it cannot read as yarn would, or that makes yarn read other files", async () => {
    for (const [text, line] of [
      ['npmRegistryServer: "a"\nnpmRegistryServer: "b"\n', 2],
      ["npmRegistryServer: [unclosed\n", 2],
      ["# yarn lockfile v1\nnpmRegistryServer x\n", 1],
      ["npmRegistryServer: !!binary aGk=\n", 1],
      ["a: b\n---\nc: d\n", 2],
      ['injectEnvironmentFiles: [".env"]\n', 1],
    ] as const) {
      await writeFile(join(app, ".yarnrc.yml"), text);
      await expect(planExec(context(stored), { strict: false, verbose: 0 }), text).rejects.toSatisfy(
        refusal(join(app, ".yarnrc.yml"), line),
      );
    }
  });

  it("refuses a .env.yarn that names a handed variable: yarn 4 expands .yarnrc.yml's ${NAME} from it", async () => {
    await writeFile(join(app, ".env.yarn"), `# defaults\nNAME=\${${handoffVariable(A)}}\n`);
    await writeFile(join(app, ".yarnrc.yml"), 'npmScopes:\n  evil:\n    npmAuthToken: "${NAME}"\n');
    await expect(planExec(context(stored), { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_REROUTED") && e.message.includes(`${join(app, ".env.yarn")}:2`),
    );
  });

  it("follows a symbolic link to a .yarnrc.yml, as yarn does, and leaves the home directory's alone", async () => {
    const v = handoffVariable(A);
    await writeFile(join(dir, "elsewhere.yml"), `npmAuthToken: "\${${v}}"\n`);
    await symlink(join(dir, "elsewhere.yml"), join(app, ".yarnrc.yml"));
    await expect(planExec(context(stored), { strict: false, verbose: 0 })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_TOKEN_REROUTED") && e.message.includes(`${join(app, ".yarnrc.yml")}:1`),
    );
    await rm(join(app, ".yarnrc.yml"));
    // The user's ~/.yarnrc.yml is read from everywhere, like ~/.npmrc: theirs, not the project's.
    const inHome = join(home, "project");
    await mkdir(inHome);
    await writeFile(join(inHome, ".npmrc"), "@a:registry=http://127.0.0.1:4873/\n");
    await writeFile(join(home, ".yarnrc.yml"), 'injectEnvironmentFiles: [".env"]\n');
    expect(
      (await planExec({ ...context(stored), cwd: inHome }, { strict: false, verbose: 0 })).env,
    ).toHaveProperty(v);
  });

  it("accepts what `latchkey setup` documents, in block and flow style, beside unrelated settings", async () => {
    const v = handoffVariable(A);
    await writeFile(
      join(app, ".yarnrc.yml"),
      [
        "# Registries",
        'npmRegistryServer: "https://registry.yarnpkg.com"',
        "npmRegistries:",
        `  "${A}":`,
        `    npmAuthToken: "\${${v}}"`,
        `  "https://127.0.0.1:4873": { npmAuthToken: '\${${v}}' }`,
        '  "//b.example/npm/":',
        '    npmAuthToken: "${B_TOKEN:-}"',
        "nodeLinker: node-modules",
        "",
      ].join("\n"),
    );
    await writeFile(join(app, ".env.yarn"), "NODE_OPTIONS=--max-old-space-size=4096\n");
    expect((await planExec(context(stored), { strict: false, verbose: 0 })).env).toHaveProperty(v);
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
