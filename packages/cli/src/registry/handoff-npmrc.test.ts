import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import {
  envReferences,
  expandEnv,
  npmProjectRoot,
  npmrcLine,
  npmrcSettings,
  parseNpmrc,
  pnpmProjectNpmrcPaths,
  projectNpmrcPath,
  projectNpmrcPaths,
  readConfigText,
  readNpmrc,
  updateNpmrc,
  userNpmrcPath,
} from "./handoff-npmrc.js";

const exec = promisify(execFile);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-npmrc-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parseNpmrc", () => {
  it("reads settings the way npm's ini parser does", () => {
    const npmrc = parseNpmrc(
      [
        "; a comment",
        "# another",
        "",
        "registry = https://npm.example.com/ ; trailing comment",
        '@a:registry="https://a.example/"',
        "@b:registry='https://b.example/'",
        "weird=va\\;lue # comment",
        "flag",
        "[section]",
        "@c:registry=https://c.example/",
      ].join("\n"),
    );
    const settings = npmrcSettings(npmrc, {});
    expect([...settings]).toEqual([
      ["registry", "https://npm.example.com/"],
      ["@a:registry", "https://a.example/"],
      ["@b:registry", "https://b.example/"],
      ["weird", "va;lue"],
      ["flag", "true"],
    ]);
    expect(npmrc.lines).toHaveLength(10);
    expect(npmrc.eol).toBe("\n");
  });

  it("keeps CRLF line endings and lets a later duplicate win", () => {
    const npmrc = parseNpmrc("registry=https://one/\r\nregistry=https://two/\r\n");
    expect(npmrc.eol).toBe("\r\n");
    expect(npmrcSettings(npmrc, {}).get("registry")).toBe("https://two/");
  });

  it("expands ${VAR} in keys and values", () => {
    const npmrc = parseNpmrc("${HOST_KEY}:registry=https://${HOST}/\n");
    expect([...npmrcSettings(npmrc, { HOST_KEY: "@s", HOST: "npm.example" })]).toEqual([
      ["@s:registry", "https://npm.example/"],
    ]);
  });
});

describe("envReferences", () => {
  it("names the variable of every form npm, pnpm or yarn expands, and skips escaped references", () => {
    expect(envReferences("${A}")).toContain("A");
    expect(envReferences("${A?}")).toContain("A");
    expect(envReferences("x${A:-fallback}y")).toContain("A");
    expect(envReferences("${A-fallback}")).toContain("A");
    expect(envReferences("${A:-}")).toContain("A");
    expect(envReferences("\\${A}")).toEqual([]);
  });
});

describe("expandEnv", () => {
  it("expands set variables, keeps unset and escaped ones as npm does", () => {
    expect(expandEnv("a${X}b", { X: "1" })).toEqual({ value: "a1b", complete: true });
    expect(expandEnv("a${Y}b", {})).toEqual({ value: "a${Y}b", complete: false });
    expect(expandEnv("a\\${X}b", { X: "1" })).toEqual({ value: "a${X}b", complete: true });
    expect(expandEnv("a\\\\${X}b", { X: "1" })).toEqual({ value: "a\\1b", complete: true });
  });
});

describe("where the files are", () => {
  it("finds the user .npmrc from npm_config_userconfig in any case, else HOME", () => {
    const ctx = (env: Record<string, string>) => createTestContext({ env, cwd: dir });
    expect(userNpmrcPath(ctx({ HOME: "/h" }))).toBe("/h/.npmrc");
    expect(userNpmrcPath(ctx({ HOME: "/h", NPM_CONFIG_USERCONFIG: "/x/rc" }))).toBe("/x/rc");
    expect(userNpmrcPath(ctx({ HOME: "/h", npm_config_userconfig: "rel/rc" }))).toBe(join(dir, "rel/rc"));
    expect(userNpmrcPath(ctx({}))).toBeNull();
  });

  it("puts the project .npmrc beside the nearest package.json or node_modules, as npm's local prefix", async () => {
    const app = join(dir, "app");
    await mkdir(join(app, "src", "deep"), { recursive: true });
    expect(await npmProjectRoot(join(app, "src", "deep"))).toBe(join(app, "src", "deep"));
    await writeFile(join(app, "package.json"), "{}");
    expect(await npmProjectRoot(join(app, "src", "deep"))).toBe(app);
    await mkdir(join(app, "src", "node_modules"));
    expect(await npmProjectRoot(join(app, "src", "deep"))).toBe(join(app, "src"));
    expect(await projectNpmrcPath(createTestContext({ cwd: join(app, "src", "deep") }))).toBe(
      join(app, "src", ".npmrc"),
    );
  });

  it("takes a workspace package's project .npmrc from the workspace root, exactly where npm 11 does", async () => {
    // A monorepo whose root lists some of its packages; the answers are checked against the real npm's
    // `npm prefix` (its local prefix, whose .npmrc is the project config).
    const root = join(dir, "mono");
    const pkg = (path: string, manifest: object = {}) =>
      mkdir(join(root, path), { recursive: true }).then(() =>
        writeFile(join(root, path, "package.json"), JSON.stringify(manifest)),
      );
    await pkg(".", { workspaces: ["packages/*", "!packages/excluded", "apps/**", "./tools/one/"] });
    for (const p of ["packages/a", "packages/excluded", "apps/web/site", "tools/one", "tools/two", "other"]) {
      await pkg(p);
    }
    await mkdir(join(root, "packages", "a", "src"));
    await mkdir(join(root, "packages", "bare", "node_modules"), { recursive: true });
    await mkdir(join(root, "apps", "node_modules", "dep"), { recursive: true });
    await writeFile(join(root, "apps", "node_modules", "dep", "package.json"), "{}");
    // A nested root that lists none of these is passed over, not stopped at.
    await pkg("packages/a/nested", { workspaces: ["elsewhere/*"] });
    await mkdir(join(root, "packages", "a", "nested", "inner"));
    await writeFile(join(root, "packages", "a", "nested", "inner", "package.json"), "{}");

    const cases = [
      ["packages/a", "."],
      ["packages/a/src", "."],
      ["packages/excluded", "packages/excluded"],
      ["packages/bare", "packages/bare"],
      ["apps/web/site", "."],
      ["apps/node_modules/dep", "apps/node_modules/dep"],
      ["tools/one", "."],
      ["tools/two", "tools/two"],
      ["other", "other"],
      ["packages/a/nested/inner", "packages/a/nested/inner"],
      [".", "."],
    ] as const;
    const npm = fileURLToPath(new URL("../../../../node_modules/npm11/bin/npm-cli.js", import.meta.url));
    const env = { PATH: process.env.PATH ?? "", HOME: dir, npm_config_update_notifier: "false" };
    for (const [cwd, expected] of cases) {
      expect(await npmProjectRoot(join(root, cwd)), cwd).toBe(join(root, expected));
      const { stdout } = await exec(process.execPath, [npm, "prefix"], { cwd: join(root, cwd), env });
      expect(stdout.trim(), `npm prefix in ${cwd}`).toBe(join(root, expected));
    }
  });

  it("follows npm in the `workspaces: { packages }` form and ignores a root whose package.json is unreadable", async () => {
    const root = join(dir, "mono");
    await mkdir(join(root, "libs", "x"), { recursive: true });
    await writeFile(join(root, "libs", "x", "package.json"), "{}");
    await writeFile(join(root, "package.json"), JSON.stringify({ workspaces: { packages: ["libs/*"] } }));
    expect(await npmProjectRoot(join(root, "libs", "x"))).toBe(root);
    await writeFile(join(root, "package.json"), "{ not json");
    expect(await npmProjectRoot(join(root, "libs", "x"))).toBe(join(root, "libs", "x"));
  });

  it("finds pnpm's project and workspace-root .npmrc, and every project .npmrc a client may read", async () => {
    const root = join(dir, "ws");
    const home = join(dir, "home");
    await mkdir(join(root, "packages", "a", "src"), { recursive: true });
    await mkdir(home);
    await writeFile(join(root, "pnpm-workspace.yaml"), "packages:\n  - packages/*\n");
    await writeFile(join(root, "packages", "a", "package.json"), "{}");
    const ctx = (cwd: string, env: Record<string, string> = {}) =>
      createTestContext({ cwd, env: { HOME: home, ...env } });
    const a = join(root, "packages", "a");
    expect(pnpmProjectNpmrcPaths(ctx(join(a, "src")))).toEqual([join(a, ".npmrc"), join(root, ".npmrc")]);
    expect(pnpmProjectNpmrcPaths(ctx(root))).toEqual([join(root, ".npmrc")]);
    expect(pnpmProjectNpmrcPaths(ctx(join(a, "node_modules")))).toEqual([
      join(a, ".npmrc"),
      join(root, ".npmrc"),
    ]);
    expect(pnpmProjectNpmrcPaths(ctx(a, { NPM_CONFIG_WORKSPACE_DIR: join(dir, "elsewhere") }))).toEqual([
      join(a, ".npmrc"),
      join(dir, "elsewhere", ".npmrc"),
    ]);

    // yarn 1 reads the .npmrc of every directory up to the root; the user's own file is not a project's.
    const all = projectNpmrcPaths(ctx(join(a, "src"), { NPM_CONFIG_WORKSPACE_DIR: join(dir, "elsewhere") }));
    expect(all.slice(0, 5)).toEqual([
      join(a, "src", ".npmrc"),
      join(a, ".npmrc"),
      join(root, "packages", ".npmrc"),
      join(root, ".npmrc"),
      join(dir, ".npmrc"),
    ]);
    expect(all).toContain("/.npmrc");
    expect(all.at(-1)).toBe(join(dir, "elsewhere", ".npmrc"));
    const underHome = projectNpmrcPaths(
      ctx(join(home, "p"), { npm_config_userconfig: join(home, "p", ".npmrc") }),
    );
    expect(underHome).not.toContain(join(home, "p", ".npmrc"));
    expect(underHome).not.toContain(join(home, ".npmrc"));
  });
});

describe("updateNpmrc", () => {
  const original = [
    "; my settings",
    "registry=https://npm.example.com/",
    "//npm.example.com/:tokenHelper=/old/helper",
    "",
    "  save-exact = true  ",
    "//npm.example.com/:tokenHelper=/older/helper",
    "[section]",
    "x=1",
  ].join("\n");

  it("replaces the key's line in place, drops later duplicates, appends new keys before a section", async () => {
    const file = join(dir, ".npmrc");
    await writeFile(file, `${original}\n`, { mode: 0o644 });
    const changes = await updateNpmrc(
      file,
      new Map([
        ["//npm.example.com/:tokenHelper", "/new/helper"],
        ["//other.example/:tokenHelper", "/other/helper"],
      ]),
    );
    expect(Object.fromEntries(changes)).toEqual({
      "//npm.example.com/:tokenHelper": "updated",
      "//other.example/:tokenHelper": "added",
    });
    expect(await readFile(file, "utf8")).toBe(
      [
        "; my settings",
        "registry=https://npm.example.com/",
        "//npm.example.com/:tokenHelper=/new/helper",
        "",
        "  save-exact = true  ",
        "//other.example/:tokenHelper=/other/helper",
        "[section]",
        "x=1",
        "",
      ].join("\n"),
    );
    // An existing file keeps its mode.
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it("does not rewrite a file that already says it (same inode, same bytes)", async () => {
    const file = join(dir, ".npmrc");
    await writeFile(file, "a=1\n//h/:tokenHelper=/x"); // no final newline: left as it is
    const before = await lstat(file);
    const changes = await updateNpmrc(file, new Map([["//h/:tokenHelper", "/x"]]));
    expect(changes.get("//h/:tokenHelper")).toBe("unchanged");
    const after = await lstat(file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(await readFile(file, "utf8")).toBe("a=1\n//h/:tokenHelper=/x");
  });

  it("creates a missing file with mode 0600 and keeps CRLF files CRLF", async () => {
    const fresh = join(dir, "fresh");
    await updateNpmrc(fresh, new Map([["k", "v"]]));
    expect(await readFile(fresh, "utf8")).toBe("k=v\n");
    expect((await stat(fresh)).mode & 0o777).toBe(0o600);

    const crlf = join(dir, "crlf");
    await writeFile(crlf, "a=1\r\nb=2\r\n");
    await updateNpmrc(
      crlf,
      new Map([
        ["b", "3"],
        ["c", "4"],
      ]),
    );
    expect(await readFile(crlf, "utf8")).toBe("a=1\r\nb=3\r\nc=4\r\n");
  });

  it("refuses to write through a symbolic link, leaving its target alone", async () => {
    const target = join(dir, "real");
    await writeFile(target, "a=1\n");
    const link = join(dir, ".npmrc");
    await symlink(target, link);
    await expect(updateNpmrc(link, new Map([["b", "2"]]))).rejects.toSatisfy((e) =>
      isLatchkeyError(e, "LK_FILE_SYMLINK"),
    );
    expect(await readFile(target, "utf8")).toBe("a=1\n");
  });

  it("refuses values an .npmrc would read back differently", () => {
    for (const [key, value] of [
      ["k", "a\nb"],
      ["k", "a;b"],
      ["k", "a#b"],
      ["k", '"q"'],
      ["k=x", "v"],
      ["k", " padded"],
    ] as const) {
      expect(() => npmrcLine(key, value)).toThrow(expect.objectContaining({ code: "LK_NPMRC_INVALID" }));
    }
    expect(npmrcLine("//h:1/:_authToken", "${LATCHKEY_TOKEN_H}")).toBe(
      "//h:1/:_authToken=${LATCHKEY_TOKEN_H}",
    );
  });

  it("reads back what it wrote", async () => {
    const file = join(dir, ".npmrc");
    await updateNpmrc(file, new Map([["//h:8080/p/:_authToken", "${LATCHKEY_TOKEN_X}"]]));
    const npmrc = await readNpmrc(file);
    expect(npmrc && npmrcSettings(npmrc, { LATCHKEY_TOKEN_X: "t" }).get("//h:8080/p/:_authToken")).toBe("t");
  });
});

describe("readNpmrc", () => {
  it("follows a symbolic link for reading, as npm does", async () => {
    const target = join(dir, "dotfiles-npmrc");
    await writeFile(target, "@s:registry=https://s.example/\n");
    await symlink(target, join(dir, ".npmrc"));
    const npmrc = await readNpmrc(join(dir, ".npmrc"));
    expect(npmrc && npmrcSettings(npmrc, {}).get("@s:registry")).toBe("https://s.example/");
    await expect(readNpmrc(join(dir, ".npmrc"), { noFollow: true })).rejects.toSatisfy((e) =>
      isLatchkeyError(e, "LK_FILE_SYMLINK"),
    );
    expect(await readNpmrc(join(dir, "missing"))).toBeNull();
  });

  it("does not take a file it cannot read for an absent one", async () => {
    await mkdir(join(dir, ".yarnrc.yml"));
    await expect(readConfigText(join(dir, ".yarnrc.yml"))).rejects.toSatisfy((e) => isLatchkeyError(e));
    await symlink(join(dir, "loop"), join(dir, "loop"));
    await expect(readConfigText(join(dir, "loop"))).rejects.toSatisfy((e) =>
      isLatchkeyError(e, "LK_NPMRC_INVALID"),
    );
    expect(await readConfigText(join(dir, "missing", ".npmrc"))).toBeNull();
  });
});
