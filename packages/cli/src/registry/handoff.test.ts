import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import {
  ciVariable,
  clientEnvironment,
  findNamedRegistries,
  handoffVariable,
  isShellSafePath,
  pnpmShimPath,
  pnpmShimPrograms,
  pnpmShimScript,
  uniqueRegistries,
} from "./handoff.js";

const exec = promisify(execFile);

let dir: string;
let home: string;
let app: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-handoff-"));
  home = join(dir, "home");
  app = join(dir, "app");
  await mkdir(home);
  await mkdir(join(app, "src"), { recursive: true });
  await writeFile(join(app, "package.json"), "{}");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ctxWith(env: Record<string, string> = {}) {
  return createTestContext({ env: { HOME: home, ...env }, cwd: join(app, "src") });
}

describe("findNamedRegistries", () => {
  it("takes each registry from the environment, then the project .npmrc, then the user .npmrc", async () => {
    await writeFile(
      join(app, ".npmrc"),
      "@a:registry=https://project.example/a/\n@b:registry=http://127.0.0.1:4873/\n",
    );
    await writeFile(
      join(home, ".npmrc"),
      "registry=https://mirror.example/\n@a:registry=https://user.example/a/\n@c:registry=https://user.example/c/\n",
    );
    const found = await findNamedRegistries(ctxWith({ "npm_config_@c:registry": "https://env.example/c/" }));
    expect(found.registries.map((r) => [r.scope, r.nerfDart, r.origin])).toEqual([
      [null, "//mirror.example/", join(home, ".npmrc")],
      ["@a", "//project.example/a/", join(app, ".npmrc")],
      ["@b", "//127.0.0.1:4873/", join(app, ".npmrc")],
      ["@c", "//env.example/c/", "environment"],
    ]);
    expect(found.files).toEqual({ project: join(app, ".npmrc"), user: join(home, ".npmrc") });
    expect(found.ignored).toEqual([]);
  });

  it("adds npmjs when nothing names a default registry, and only then", async () => {
    const none = await findNamedRegistries(ctxWith());
    expect(none.registries).toEqual([
      {
        nerfDart: "//registry.npmjs.org/",
        url: "https://registry.npmjs.org/",
        scope: null,
        origin: "default",
      },
    ]);
    const env = await findNamedRegistries(ctxWith({ NPM_CONFIG_REGISTRY: "https://corp.example/npm/" }));
    expect(env.registries.map((r) => r.nerfDart)).toEqual(["//corp.example/npm/"]);
  });

  it("reads the user .npmrc that npm_config_userconfig names, with ${VAR} expanded", async () => {
    const rc = join(dir, "custom-npmrc");
    await writeFile(rc, "@s:registry=https://${REG_HOST}/npm/\n@t:registry=https://${UNSET_HOST}/\n");
    const found = await findNamedRegistries(ctxWith({ npm_config_userconfig: rc, REG_HOST: "r.example" }));
    expect(found.registries.map((r) => r.nerfDart)).toEqual(["//registry.npmjs.org/", "//r.example/npm/"]);
    expect(found.ignored).toEqual([
      expect.objectContaining({
        key: "@t:registry",
        origin: rc,
        reason: expect.stringContaining("not an http(s) URL"),
      }),
    ]);
  });

  it("reads a workspace package's registries from the root npm and pnpm take them from", async () => {
    // npm: the root whose `workspaces` list the package; its own .npmrc npm ignores, but pnpm reads it first.
    await writeFile(join(app, "package.json"), JSON.stringify({ workspaces: ["packages/*"] }));
    await writeFile(join(app, ".npmrc"), "@root:registry=https://root.example/\n");
    const pkg = join(app, "packages", "a");
    await mkdir(join(pkg, "src"), { recursive: true });
    await writeFile(join(pkg, "package.json"), "{}");
    await writeFile(join(pkg, ".npmrc"), "@own:registry=https://own.example/\n");
    const ctx = (cwd: string) => createTestContext({ env: { HOME: home }, cwd });
    const npm = await findNamedRegistries(ctx(join(pkg, "src")));
    expect(npm.files.project).toBe(join(app, ".npmrc"));
    expect(npm.registries.map((r) => [r.scope, r.nerfDart, r.origin])).toEqual([
      [null, "//registry.npmjs.org/", "default"],
      ["@own", "//own.example/", join(pkg, ".npmrc")],
      ["@root", "//root.example/", join(app, ".npmrc")],
    ]);

    // pnpm: the pnpm-workspace.yaml root's .npmrc as well as the package's, the package's winning.
    await writeFile(join(app, "package.json"), "{}");
    await writeFile(join(app, "pnpm-workspace.yaml"), "packages:\n  - packages/*\n");
    await writeFile(
      join(app, ".npmrc"),
      "@root:registry=https://root.example/\n@own:registry=https://x.example/\n",
    );
    const pnpm = await findNamedRegistries(ctx(join(pkg, "src")));
    expect(pnpm.files.project).toBe(join(pkg, ".npmrc"));
    expect(pnpm.registries.map((r) => [r.scope, r.nerfDart, r.origin])).toEqual([
      [null, "//registry.npmjs.org/", "default"],
      ["@own", "//own.example/", join(pkg, ".npmrc")],
      ["@root", "//root.example/", join(app, ".npmrc")],
    ]);
  });

  it("lists a registry shared by several scopes once for the hand-off", async () => {
    await writeFile(
      join(app, ".npmrc"),
      "@a:registry=https://r.example/\n@b:registry=https://R.example:443/\n",
    );
    const found = await findNamedRegistries(ctxWith());
    expect(found.registries).toHaveLength(3);
    expect(uniqueRegistries(found.registries).map((r) => r.nerfDart)).toEqual([
      "//registry.npmjs.org/",
      "//r.example/",
    ]);
  });
});

describe("variables", () => {
  it("names a hand-off variable per registry, readable and collision-free", () => {
    expect(handoffVariable("//127.0.0.1:4873/")).toMatch(/^LATCHKEY_TOKEN_127_0_0_1_4873_[0-9A-F]{8}$/);
    expect(handoffVariable("//npm.pkg.github.com/")).toMatch(
      /^LATCHKEY_TOKEN_NPM_PKG_GITHUB_COM_[0-9A-F]{8}$/,
    );
    expect(handoffVariable("//a-b.example/")).not.toBe(handoffVariable("//a.b.example/"));
    expect(handoffVariable("//a.example/b/")).not.toBe(handoffVariable("//a.example.b/"));
    expect(handoffVariable("//x/")).toBe(handoffVariable("//x/"));
  });

  it("uses the CI conventions for the CI flavour", () => {
    expect(ciVariable("//registry.npmjs.org/", "npm")).toBe("NPM_TOKEN");
    expect(ciVariable("//npm.pkg.github.com/", "github")).toBe("GITHUB_TOKEN");
    expect(ciVariable("//gitlab.com/api/v4/packages/npm/", "gitlab")).toBe("CI_JOB_TOKEN");
    expect(ciVariable("//r.example/", "custom")).toBe(handoffVariable("//r.example/"));
    expect(
      ciVariable("//r.example/", "custom", {
        nerfDart: "//r.example/",
        url: "https://r.example/",
        kind: "custom",
        tokenEnv: "R_TOKEN",
      }),
    ).toBe("R_TOKEN");
  });

  it("hands a token over only under keys that name its registry", () => {
    expect(clientEnvironment("//127.0.0.1:4873/", "tok")).toEqual({
      "npm_config_//127.0.0.1:4873/:_authToken": "tok",
      "pnpm_config_//127.0.0.1:4873/:_authToken": "tok",
      [handoffVariable("//127.0.0.1:4873/")]: "tok",
    });
  });
});

describe("the pnpm shim", () => {
  it("lives under LATCHKEY_HOME/bin with a shell-safe name", () => {
    const path = pnpmShimPath(resolvePaths({ LATCHKEY_HOME: "/home/u/.latchkey" }), "//127.0.0.1:4873/x/");
    expect(path).toMatch(/^\/home\/u\/\.latchkey\/bin\/pnpm-token-127-0-0-1-4873-[0-9a-f]{8}$/);
    expect(isShellSafePath(path)).toBe(true);
    expect(isShellSafePath("/home/my user/.latchkey/bin/x")).toBe(false);
    expect(isShellSafePath("/tmp/$(id)/x")).toBe(false);
    expect(isShellSafePath("relative/x")).toBe(false);
  });

  it("prints `Bearer <token>` from the command it runs, with awkward paths kept whole", async () => {
    // A stand-in for latchkey: prints its arguments to stderr and a token with a quote and a space on stdout.
    const odd = join(dir, "it's a dir");
    await mkdir(odd);
    const fakeLatchkey = join(odd, "latchkey");
    await writeFile(fakeLatchkey, `#!/bin/sh\nprintf '%s|' "$@" >&2\nprintf "tok'en value\\n"\n`);
    await chmod(fakeLatchkey, 0o755);
    const shim = join(dir, "shim");
    const script = pnpmShimScript(fakeLatchkey, "http://h:1/p/", "//h:1/p/");
    await writeFile(shim, script);
    await chmod(shim, 0o700);
    const { stdout, stderr } = await exec(shim);
    expect(stdout).toBe("Bearer tok'en value\n");
    expect(stderr).toBe("token|--registry|http://h:1/p/|");
    // What `doctor` reads back to check the command is still there.
    expect(pnpmShimPrograms(script)).toEqual([fakeLatchkey]);
    expect(pnpmShimPrograms("#!/bin/sh\necho hi\n")).toBeNull();
  });

  it("passes a failure of `latchkey token` through as its exit code, printing nothing", async () => {
    const failing = join(dir, "latchkey");
    await writeFile(failing, "#!/bin/sh\nexit 3\n");
    await chmod(failing, 0o755);
    const shim = join(dir, "shim");
    await writeFile(shim, pnpmShimScript(failing, "https://h/", "//h/"));
    await chmod(shim, 0o700);
    await expect(exec(shim)).rejects.toMatchObject({ code: 3, stdout: "" });
  });
});
