import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  projectNpmrcPath,
  readNpmrc,
  updateNpmrc,
  userNpmrcPath,
} from "./handoff-npmrc.js";

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
    expect(npmProjectRoot(join(app, "src", "deep"))).toBe(join(app, "src", "deep"));
    await writeFile(join(app, "package.json"), "{}");
    expect(npmProjectRoot(join(app, "src", "deep"))).toBe(app);
    await mkdir(join(app, "src", "node_modules"));
    expect(npmProjectRoot(join(app, "src", "deep"))).toBe(join(app, "src"));
    expect(projectNpmrcPath(createTestContext({ cwd: join(app, "src", "deep") }))).toBe(
      join(app, "src", ".npmrc"),
    );
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
});
