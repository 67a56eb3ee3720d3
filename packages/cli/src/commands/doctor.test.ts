import { LatchkeyError } from "@latchkey/core";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import { runDoctor } from "./doctor.js";

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
    const ctx = createTestContext({
      env,
      paths,
      platform: { nodeVersion: "20.20.2", uid: null, machineIdPaths: [] },
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
});
