import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import { execveCanStart, findProgram } from "./replace.js";

const posix = process.platform === "win32" ? describe.skip : describe;

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    return error.code;
  }
}

posix("findProgram and execveCanStart", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "latchkey-replace-"));
    for (const sub of ["a", "b", "c"]) await mkdir(join(dir, sub));
    await writeFile(join(dir, "a", "tool"), "#!/bin/sh\necho a\n", { mode: 0o755 });
    await writeFile(join(dir, "b", "tool"), "#!/bin/sh\necho b\n", { mode: 0o755 });
    await writeFile(join(dir, "a", "plain"), "not executable\n", { mode: 0o644 });
    await writeFile(join(dir, "b", "noshebang"), "echo hi\n", { mode: 0o755 });
    await mkdir(join(dir, "c", "dirtool"));
    await symlink(join(dir, "b", "tool"), join(dir, "c", "linked"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const env = (...dirs: string[]) => ({ PATH: dirs.map((d) => join(dir, d)).join(":") });

  it("searches the program's PATH in order, like execvp", () => {
    expect(findProgram("tool", env("a", "b"), "/")).toBe(join(dir, "a", "tool"));
    expect(findProgram("tool", env("b", "a"), "/")).toBe(join(dir, "b", "tool"));
    expect(findProgram("linked", env("c"), "/")).toBe(join(dir, "c", "linked"));
  });

  it("skips entries that are not executable files and reports why nothing matched", () => {
    expect(findProgram("tool", env("c", "b"), "/")).toBe(join(dir, "b", "tool"));
    expect(codeOf(() => findProgram("plain", env("a"), "/"))).toBe("LK_RUN_FAILED");
    expect(codeOf(() => findProgram("dirtool", env("c"), "/"))).toBe("LK_RUN_NOT_FOUND");
    expect(codeOf(() => findProgram("nothing-here", env("a", "b"), "/"))).toBe("LK_RUN_NOT_FOUND");
  });

  it("takes a name with a slash relative to the working directory, without searching", () => {
    expect(findProgram("./a/tool", { PATH: "" }, dir)).toBe(join(dir, "a", "tool"));
    expect(findProgram(join(dir, "b", "tool"), env("a"), "/")).toBe(join(dir, "b", "tool"));
    expect(codeOf(() => findProgram("./c/dirtool", env("a"), dir))).toBe("LK_RUN_FAILED");
    expect(codeOf(() => findProgram("./a/missing", env("a"), dir))).toBe("LK_RUN_NOT_FOUND");
  });

  it("treats an empty PATH entry as the working directory", () => {
    expect(findProgram("tool", { PATH: `:${join(dir, "b")}` }, join(dir, "a"))).toBe(join(dir, "a", "tool"));
  });

  it("lets execve start only ELF binaries and #! scripts", async () => {
    expect(execveCanStart(join(dir, "a", "tool"))).toBe(true);
    expect(execveCanStart(process.execPath)).toBe(true);
    expect(execveCanStart(join(dir, "b", "noshebang"))).toBe(false);
    const unreadable = join(dir, "c", "unreadable");
    await writeFile(unreadable, "#!/bin/sh\n", { mode: 0o111 });
    await chmod(unreadable, 0o111);
    // Root reads anything; for anyone else an unreadable program is left to spawn, which reports it properly.
    expect(execveCanStart(unreadable)).toBe(process.getuid?.() === 0);
  });
});
