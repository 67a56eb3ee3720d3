import { lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import { resolvePaths } from "../paths.js";
import { handoffVariable, pnpmShimPath } from "../registry/handoff.js";
import { setupNpmrc, setupPnpm } from "./setup.js";

let dir: string;
let home: string;
let app: string;
let lkHome: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-setup-"));
  home = join(dir, "home");
  app = join(dir, "app");
  lkHome = join(dir, "lk");
  await mkdir(home);
  await mkdir(app);
  await writeFile(join(app, "package.json"), "{}");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TOKEN = "npm_SeCrEt0123456789";

function context(
  stored: Record<string, string> = {},
  extra: { env?: Record<string, string>; home?: string } = {},
) {
  const env = { HOME: home, LATCHKEY_HOME: extra.home ?? lkHome, ...extra.env };
  const keystore = createMemoryKeystore(stored);
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  return createTestContext({
    env,
    paths: resolvePaths(env),
    cwd: app,
    keystore: () => Promise.resolve(resolution),
    platform: {
      nodeVersion: "24.0.0",
      uid: null,
      machineIdPaths: [],
      cliPath: "/opt/latchkey/bin/latchkey.mjs",
    },
  });
}

describe("setup pnpm", () => {
  it("writes a 0700 shim per logged-in registry and its tokenHelper line, keeping the rest of ~/.npmrc", async () => {
    const userrc = join(home, ".npmrc");
    await writeFile(userrc, "; mine\nsave-exact=true\n//other.example/:_authToken=${OTHER}\n");
    const ctx = context({
      "registry://127.0.0.1:4873/": TOKEN,
      "registry://npm.example.com/": TOKEN,
      "unrelated:account": "x",
    });
    expect(await setupPnpm(ctx, { registries: [], json: false })).toBe(0);

    const shimA = pnpmShimPath(ctx.paths, "//127.0.0.1:4873/");
    const shimB = pnpmShimPath(ctx.paths, "//npm.example.com/");
    expect(await readFile(userrc, "utf8")).toBe(
      "; mine\nsave-exact=true\n//other.example/:_authToken=${OTHER}\n" +
        `//127.0.0.1:4873/:tokenHelper=${shimA}\n//npm.example.com/:tokenHelper=${shimB}\n`,
    );
    const script = await readFile(shimA, "utf8");
    expect(script).toContain(
      "token=$('/opt/latchkey/bin/latchkey.mjs' token --registry 'https://127.0.0.1:4873/')",
    );
    expect(script).toContain(`printf 'Bearer %s\\n' "$token"`);
    expect(script).not.toContain(TOKEN);
    expect((await stat(shimA)).mode & 0o777).toBe(0o700);
    expect((await stat(join(lkHome, "bin"))).mode & 0o777).toBe(0o700);
    expect(ctx.stderr.text()).toContain(
      `//127.0.0.1:4873/: pnpm asks ${shimA} for the token (added in ${userrc})`,
    );
    expect(ctx.stdout.text()).toBe("");
  });

  it("is idempotent: a second run rewrites neither the shims nor the .npmrc", async () => {
    const ctx = context({ "registry://127.0.0.1:4873/": TOKEN });
    await setupPnpm(ctx, { registries: [], json: false });
    const shim = pnpmShimPath(ctx.paths, "//127.0.0.1:4873/");
    const before = [await lstat(shim), await lstat(join(home, ".npmrc"))];
    const again = context({ "registry://127.0.0.1:4873/": TOKEN });
    await setupPnpm(again, { registries: [], json: true });
    const after = [await lstat(shim), await lstat(join(home, ".npmrc"))];
    expect(after.map((s) => [s.ino, s.mtimeMs])).toEqual(before.map((s) => [s.ino, s.mtimeMs]));
    expect(JSON.parse(again.stdout.text())).toEqual({
      npmrc: join(home, ".npmrc"),
      registries: [
        { registry: "//127.0.0.1:4873/", url: "https://127.0.0.1:4873/", helper: shim, change: "unchanged" },
      ],
      plaintextTokens: [],
    });
  });

  it("sets up the registries named with --registry, and points out a plaintext token left in ~/.npmrc", async () => {
    await writeFile(join(home, ".npmrc"), `//r.example/npm/:_authToken=${TOKEN}\n`);
    const ctx = context();
    await setupPnpm(ctx, { registries: ["http://R.example:80/npm"], json: false });
    const text = await readFile(join(home, ".npmrc"), "utf8");
    expect(text).toContain(`//r.example/npm/:tokenHelper=${pnpmShimPath(ctx.paths, "//r.example/npm/")}`);
    expect(await readFile(pnpmShimPath(ctx.paths, "//r.example/npm/"), "utf8")).toContain(
      "--registry 'http://R.example:80/npm'",
    );
    expect(ctx.stderr.text()).toContain("still holds //r.example/npm/:_authToken in plaintext");
    expect(ctx.stderr.text()).not.toContain(TOKEN);
  });

  it("refuses when nothing is logged in, and when pnpm's shell would split the shim's path", async () => {
    await expect(setupPnpm(context(), { registries: [], json: false })).rejects.toSatisfy((e) =>
      isLatchkeyError(e, "LK_TOKEN_MISSING"),
    );
    const spaced = context({ "registry://h/": TOKEN }, { home: join(dir, "my home") });
    await expect(setupPnpm(spaced, { registries: [], json: false })).rejects.toSatisfy((e) =>
      isLatchkeyError(e, "LK_CONFIG_INVALID"),
    );
    await expect(lstat(join(home, ".npmrc"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("setup npmrc", () => {
  it("writes ${LATCHKEY_TOKEN_…} lines for the named and logged-in registries and prints the variables", async () => {
    await writeFile(join(app, ".npmrc"), "@a:registry=http://127.0.0.1:4873/\n");
    const ctx = context({ "registry://npm.example.com/": TOKEN });
    await setupNpmrc(ctx, { ci: false, project: false, registries: [], force: false, json: false });
    const a = handoffVariable("//127.0.0.1:4873/");
    const b = handoffVariable("//npm.example.com/");
    expect(await readFile(join(home, ".npmrc"), "utf8")).toBe(
      `//127.0.0.1:4873/:_authToken=\${${a}}\n//npm.example.com/:_authToken=\${${b}}\n`,
    );
    expect((await stat(join(home, ".npmrc"))).mode & 0o777).toBe(0o600);
    const width = Math.max(a.length, b.length);
    expect(ctx.stdout.text()).toBe(
      `${a.padEnd(width)}  //127.0.0.1:4873/\n${b.padEnd(width)}  //npm.example.com/\n`,
    );
    expect(ctx.stderr.text()).toContain("`latchkey exec -- …`, which sets these variables");
    // npmjs, only there by default, gets no line: with the variable unset it would only get in the way.
    expect(await readFile(join(home, ".npmrc"), "utf8")).not.toContain("registry.npmjs.org");
  });

  it("uses the CI conventions, the project's file with --project, and prints JSON", async () => {
    const ctx = context();
    await setupNpmrc(ctx, {
      ci: true,
      project: true,
      registries: [
        "https://registry.npmjs.org/",
        "https://npm.pkg.github.com",
        "https://gitlab.com/api/v4/packages/npm/",
      ],
      force: false,
      json: true,
    });
    const file = join(app, ".npmrc");
    expect(await readFile(file, "utf8")).toBe(
      "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n" +
        "//npm.pkg.github.com/:_authToken=${GITHUB_TOKEN}\n" +
        "//gitlab.com/api/v4/packages/npm/:_authToken=${CI_JOB_TOKEN}\n",
    );
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    const out = JSON.parse(ctx.stdout.text()) as {
      npmrc: string;
      registries: { variable: string; change: string }[];
    };
    expect(out.npmrc).toBe(file);
    expect(out.registries.map((r) => [r.variable, r.change])).toEqual([
      ["NPM_TOKEN", "added"],
      ["GITHUB_TOKEN", "added"],
      ["CI_JOB_TOKEN", "added"],
    ]);
  });

  it("uses a registry's configured tokenEnv in CI", async () => {
    await mkdir(lkHome, { mode: 0o700 });
    await writeFile(
      join(lkHome, "config.toml"),
      '[registries."https://r.example/npm/"]\ntokenEnv = "R_TOKEN"\n',
    );
    const ctx = context();
    await setupNpmrc(ctx, { ci: true, project: false, registries: [], force: false, json: false });
    expect(await readFile(join(home, ".npmrc"), "utf8")).toBe("//r.example/npm/:_authToken=${R_TOKEN}\n");
    expect(ctx.stdout.text()).toBe("R_TOKEN  //r.example/npm/\n");
  });

  it("writes no line for a project's tokenEnv the user has not approved", async () => {
    await writeFile(
      join(app, "latchkey.json"),
      JSON.stringify({ registries: { "https://evil.example/": { tokenEnv: "AWS_SECRET_ACCESS_KEY" } } }),
    );
    const ctx = context();
    await expect(
      setupNpmrc(ctx, { ci: true, project: true, registries: [], force: false, json: false }),
    ).rejects.toSatisfy((e) => isLatchkeyError(e, "LK_TOKEN_ENV_NOT_APPROVED"));
    await expect(readFile(join(app, ".npmrc"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    // Outside CI flavour the line names Latchkey's own variable for that registry, which carries only its token.
    await setupNpmrc(context(), { ci: false, project: true, registries: [], force: false, json: false });
    expect(await readFile(join(app, ".npmrc"), "utf8")).toBe(
      `//evil.example/:_authToken=\${${handoffVariable("//evil.example/")}}\n`,
    );
  });

  it("never overwrites a plaintext token unless forced", async () => {
    const rc = join(home, ".npmrc");
    await writeFile(rc, `//npm.example.com/:_authToken=${TOKEN}\n`);
    const ctx = context();
    const options = { ci: true, project: false, registries: ["https://npm.example.com/"], json: false };
    await expect(setupNpmrc(ctx, { ...options, force: false })).rejects.toSatisfy(
      (e) => isLatchkeyError(e, "LK_NPMRC_INVALID") && !e.message.includes(TOKEN),
    );
    expect(await readFile(rc, "utf8")).toBe(`//npm.example.com/:_authToken=${TOKEN}\n`);
    await setupNpmrc(context(), { ...options, force: true });
    expect(await readFile(rc, "utf8")).toBe(
      `//npm.example.com/:_authToken=\${${handoffVariable("//npm.example.com/")}}\n`,
    );
  });

  it("refuses when there is nothing to set up", async () => {
    await expect(
      setupNpmrc(context(), { ci: true, project: false, registries: [], force: false, json: false }),
    ).rejects.toSatisfy((e) => isLatchkeyError(e, "LK_USAGE"));
  });
});
