import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { MOUNT_VARIABLE, validateMountName, writeSecretFiles } from "./secret-files.js";

const posix = process.platform === "win32" ? describe.skip : describe;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "latchkey-secret-files-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await lstat(path)).mode & 0o7777;

/** A pid that is certainly gone: a process that has exited and been reaped. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout);
}

posix("writeSecretFiles", () => {
  it("writes each --file secret 0600 in a new 0700 directory, its path in KEY_FILE, and removes it all", async () => {
    const ctx = createTestContext({ env: { TMPDIR: root } });
    const files = await writeSecretFiles(ctx, {
      files: [
        ["BIG", "big value"],
        ["TLS_KEY", "-----BEGIN…\n"],
      ],
    });
    const big = files.env.BIG_FILE!;
    expect(Object.keys(files.env)).toEqual(["BIG_FILE", "TLS_KEY_FILE"]);
    expect(dirname(big)).toMatch(new RegExp(`^${root}/latchkey-run-${process.pid}-[A-Za-z0-9]{6}$`));
    expect(await modeOf(dirname(big))).toBe(0o700);
    expect(await modeOf(big)).toBe(0o600);
    expect(await readFile(big, "utf8")).toBe("big value");
    expect(await readFile(files.env.TLS_KEY_FILE!, "utf8")).toBe("-----BEGIN…\n");
    files.remove();
    files.remove();
    expect(await readdir(root)).toEqual([]);
  });

  it("mounts every secret in one file, JSON for a .json name and dotenv otherwise", async () => {
    const ctx = createTestContext({ env: { TMPDIR: root } });
    const entries = [
      ["A", "1"],
      ["B", "two words"],
    ] as const;
    const json = await writeSecretFiles(ctx, { files: [], mount: { name: "secrets.json", entries } });
    expect(JSON.parse(await readFile(json.env[MOUNT_VARIABLE]!, "utf8"))).toEqual({ A: "1", B: "two words" });
    json.remove();
    const dotenv = await writeSecretFiles(ctx, { files: [], mount: { name: "app.env", entries } });
    expect(await readFile(dotenv.env[MOUNT_VARIABLE]!, "utf8")).toBe("A=1\nB='two words'\n");
    expect(await modeOf(dotenv.env[MOUNT_VARIABLE]!)).toBe(0o600);
    dotenv.remove();
  });

  it("prefers a private XDG_RUNTIME_DIR, and passes over one that others can enter", async () => {
    const runtime = join(root, "runtime");
    const temp = join(root, "temp");
    await mkdir(runtime, { mode: 0o700 });
    await mkdir(temp);
    const ctx = createTestContext({ env: { XDG_RUNTIME_DIR: runtime, TMPDIR: temp } });
    const privateRun = await writeSecretFiles(ctx, { files: [["K", "v"]] });
    expect(dirname(dirname(privateRun.env.K_FILE!))).toBe(runtime);
    privateRun.remove();
    await chmod(runtime, 0o755);
    const shared = await writeSecretFiles(ctx, { files: [["K", "v"]] });
    expect(dirname(dirname(shared.env.K_FILE!))).toBe(temp);
    shared.remove();
  });

  it("removes what a killed run left behind once its process is gone, and leaves a live one's alone", async () => {
    const gone = join(root, `latchkey-run-${deadPid()}-AbC123`);
    const live = join(root, `latchkey-run-${process.ppid}-XyZ789`);
    const other = join(root, "latchkey-run-notes");
    for (const dir of [gone, live, other]) await mkdir(dir, { mode: 0o700 });
    await writeFile(join(gone, "K"), "left behind", { mode: 0o600 });
    const files = await writeSecretFiles(createTestContext({ env: { TMPDIR: root } }), {
      files: [["K", "v"]],
    });
    expect(existsSync(gone)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(other)).toBe(true);
    files.remove();
  });

  it("accepts plain file names for --mount only", () => {
    for (const ok of ["secrets.env", "config.json", "a", "A_b-c.1"]) expect(validateMountName(ok)).toBe(ok);
    for (const bad of ["", ".env", "../x", "a/b", "/etc/passwd", "..", "a..b", "x y"])
      expect(() => validateMountName(bad), bad).toThrow(expect.objectContaining({ code: "LK_USAGE" }));
  });
});
