import { LatchkeyError } from "@latchkey/core";
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import type { Context } from "../context.js";
import { resolvePaths } from "../paths.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import { spawnProcess } from "../node-context.js";
import { pnpmShimPath, pnpmShimScript } from "../registry/handoff.js";
import { runDoctor } from "./doctor.js";
import { gitHelperCommand } from "./setup-git.js";

const exec = promisify(execFile);

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function home() {
  const dir = await mkdtemp(join(tmpdir(), "lk-doctor-"));
  dirs.push(dir);
  const env = { LATCHKEY_HOME: join(dir, "home") };
  return { env, paths: resolvePaths(env) };
}

describe("doctor", () => {
  it("flags a Node older than 22.12 with a hint, exit 1", async () => {
    const { env, paths } = await home();
    const ctx = doctorContext(env, paths, undefined, "20.20.2");
    expect(await runDoctor(ctx, { json: true, verbose: 0 })).toBe(1);
    const report = JSON.parse(ctx.stdout.text());
    expect(report.node).toEqual({ version: "20.20.2", required: ">=22.12", supported: false });
    expect(report.problems[0].hint).toContain("Node 22.12 or newer");
  });

  it("shows the code cache: made on first use, in use, refused when others can write it, and off", async () => {
    const { env, paths } = await home();
    const root = dirs.at(-1)!;
    const report = async (extra: Record<string, string>) => {
      const context = () =>
        createTestContext({
          env: { ...env, ...extra },
          paths,
          platform: { nodeVersion: "24.21.0", uid: null, machineIdPaths: [] },
          keystore: () => Promise.reject(new LatchkeyError("LK_KEYSTORE_PROMOTED_UNAVAILABLE")),
        });
      const json = context();
      await runDoctor(json, { json: true, verbose: 0 });
      const text = context();
      await runDoctor(text, { json: false, verbose: 0 });
      return {
        json: (JSON.parse(json.stdout.text()) as { codeCache: unknown }).codeCache,
        text: text.stdout.text(),
      };
    };
    const cache = join(root, "xdg", "latchkey");
    const first = await report({ XDG_CACHE_HOME: join(root, "xdg") });
    expect(first.json).toEqual({ path: cache, state: "not-created-yet", reason: null });
    expect(first.text).toContain(`✓ Code cache: ${cache} (made on first use)`);

    await mkdir(cache, { recursive: true, mode: 0o700 });
    expect((await report({ XDG_CACHE_HOME: join(root, "xdg") })).json).toMatchObject({ state: "in-use" });

    await chmod(cache, 0o777);
    const refused = await report({ XDG_CACHE_HOME: join(root, "xdg") });
    expect(refused.json).toEqual({
      path: cache,
      state: "refused",
      reason: `${cache} is writable by group or others`,
    });
    expect(refused.text).toContain("! Code cache: not used");

    const off = await report({ XDG_CACHE_HOME: join(root, "xdg"), NODE_DISABLE_COMPILE_CACHE: "1" });
    expect(off.json).toEqual({ path: null, state: "off", reason: "NODE_DISABLE_COMPILE_CACHE is set" });
  });

  it("reports an unusable keystore as a problem with its code and hint", async () => {
    const { env, paths } = await home();
    const ctx = createTestContext({
      env,
      paths,
      platform: { nodeVersion: "24.21.0", uid: null, machineIdPaths: [] },
      keystore: () => Promise.reject(new LatchkeyError("LK_KEYSTORE_PROMOTED_UNAVAILABLE")),
    });
    expect(await runDoctor(ctx, { json: false, verbose: 0 })).toBe(1);
    expect(ctx.stdout.text()).toContain("✗ Keystore: unusable — LK_KEYSTORE_PROMOTED_UNAVAILABLE");
    expect(ctx.stdout.text()).toContain("hint: Fix the keychain");
  });

  it("flags a LATCHKEY_HOME that cannot be created, with a hint, instead of finding no problems", async () => {
    const root = await mkdtemp(join(tmpdir(), "lk-doctor-"));
    dirs.push(root);
    // A file where a directory above LATCHKEY_HOME should be: every write would fail with ENOTDIR.
    await writeFile(join(root, "blocker"), "");
    const env = { LATCHKEY_HOME: join(root, "blocker", "latchkey"), HOME: root };
    const ctx = doctorContext(env, resolvePaths(env));
    expect(await runDoctor(ctx, { json: true, verbose: 0 })).toBe(1);
    const report = JSON.parse(ctx.stdout.text());
    expect(report.home).toMatchObject({ exists: false, writable: false });
    expect(report.problems).toEqual([
      {
        code: "LK_FILE_IO",
        message: `LATCHKEY_HOME ${env.LATCHKEY_HOME} cannot be created: ${join(root, "blocker")} is not a directory.`,
        hint: expect.stringContaining("Set LATCHKEY_HOME to a directory of yours"),
      },
    ]);

    const text = doctorContext(env, resolvePaths(env));
    expect(await runDoctor(text, { json: false, verbose: 0 })).toBe(1);
    expect(text.stdout.text()).toContain(`✗ LATCHKEY_HOME ${env.LATCHKEY_HOME}: cannot be created`);
    expect(text.stdout.text()).not.toContain("No problems found");
  });

  it("leaves Node's compile-cache directories to the code cache line when the cache is under LATCHKEY_HOME", async () => {
    const root = await mkdtemp(join(tmpdir(), "lk-doctor-"));
    dirs.push(root);
    await chmod(root, 0o700);
    // LATCHKEY_HOME=$HOME puts ~/.cache/latchkey under it. Earlier launchers let Node make these 0755.
    const env = { LATCHKEY_HOME: root, HOME: root };
    const compileCache = join(root, ".cache", "latchkey", "node", "v24.21.0-x64-964aae3f-0");
    await mkdir(compileCache, { recursive: true, mode: 0o700 });
    await chmod(join(root, ".cache", "latchkey", "node"), 0o755);
    await chmod(compileCache, 0o755);
    await writeFile(join(root, "secret.enc"), "x", { mode: 0o644 });
    const ctx = doctorContext(env, resolvePaths(env));
    expect(await runDoctor(ctx, { json: true, verbose: 0 })).toBe(1);
    const report = JSON.parse(ctx.stdout.text());
    // The one real problem is still found; nothing under the compile cache is.
    expect(report.problems.map((p: { message: string }) => p.message)).toEqual([
      expect.stringContaining(`${join(root, "secret.enc")}: mode 0644`),
    ]);
    expect(report.codeCache).toMatchObject({ path: join(root, ".cache", "latchkey"), state: "in-use" });
  });

  it("warns when a helper set up for git or pnpm runs a latchkey that no longer exists", async () => {
    const root = await mkdtemp(join(tmpdir(), "lk-doctor-"));
    dirs.push(root);
    const env = {
      PATH: process.env.PATH,
      HOME: join(root, "home"),
      XDG_CONFIG_HOME: join(root, "xdg"),
      GIT_CONFIG_NOSYSTEM: "1",
      LATCHKEY_HOME: join(root, "lk"),
    };
    await mkdir(env.HOME);
    const installed = join(root, "prefix", "bin", "latchkey");
    await mkdir(join(root, "prefix", "bin"), { recursive: true });
    await writeFile(installed, "#!/bin/sh\n", { mode: 0o755 });
    const gone = join(root, "old clone", "node_modules", ".bin", "latchkey");
    const helper = (cliPath: string) =>
      gitHelperCommand({ nodeVersion: "24", uid: null, machineIdPaths: [], cliPath });
    const git = (...args: string[]) => exec("git", args, { env });
    await git("config", "--global", "credential.https://git.example.com.helper", helper(gone));
    await git("config", "--global", "--add", "credential.helper", helper(installed));
    // Someone else's helper, which may embed a token: never read, never printed.
    await git("config", "--global", "--add", "credential.helper", "!f() { echo password=tok-CANARY; }; f");
    const paths = resolvePaths(env);
    await mkdir(join(paths.home, "bin"), { recursive: true, mode: 0o700 });
    const staleShim = pnpmShimPath(paths, "//npm.example.com/");
    await writeFile(staleShim, pnpmShimScript(gone, "https://npm.example.com/", "//npm.example.com/"), {
      mode: 0o700,
    });
    const goodShim = pnpmShimPath(paths, "//127.0.0.1:4873/");
    await writeFile(goodShim, pnpmShimScript(installed, "http://127.0.0.1:4873/", "//127.0.0.1:4873/"), {
      mode: 0o700,
    });

    const ctx = doctorContext(env, paths, { spawn: spawnProcess, cwd: root });
    expect(await runDoctor(ctx, { json: true, verbose: 0 })).toBe(0);
    const report = JSON.parse(ctx.stdout.text());
    expect(report.warnings).toEqual([
      {
        code: "LK_HELPER_STALE",
        message: `git's credential.https://git.example.com.helper runs ${gone}, which no longer exists: git gets no credentials from Latchkey.`,
        hint: expect.stringContaining("latchkey setup git"),
      },
      {
        code: "LK_HELPER_STALE",
        message: `${staleShim}, pnpm's tokenHelper, runs ${gone}, which no longer exists: pnpm gets no token from it.`,
        hint: expect.stringContaining("latchkey setup pnpm"),
      },
    ]);
    expect(ctx.stdout.text()).not.toContain("CANARY");

    const text = doctorContext(env, paths, { spawn: spawnProcess, cwd: root });
    await runDoctor(text, { json: false, verbose: 0 });
    expect(text.stdout.text()).toContain(
      `! LK_HELPER_STALE: git's credential.https://git.example.com.helper runs`,
    );
  });
});

/** A doctor context on a memory keystore and (unless told) a supported Node; spawn (git) only when given. */
function doctorContext(
  env: Record<string, string | undefined>,
  paths: ReturnType<typeof resolvePaths>,
  git: Pick<Context, "spawn" | "cwd"> | undefined = undefined,
  nodeVersion = "24.21.0",
) {
  return createTestContext({
    env,
    paths,
    ...git,
    platform: { nodeVersion, uid: null, machineIdPaths: [] },
    keystore: () =>
      Promise.resolve({
        keystore: createMemoryKeystore(),
        backend: "memory",
        reason: "forced",
        degraded: false,
        explanation: "test",
        promoted: 0,
        fileStore: { exists: false, protection: null },
      }),
  });
}
