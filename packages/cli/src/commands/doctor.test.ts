import { LatchkeyError } from "@latchkey/core";
import { mkdtemp, rm } from "node:fs/promises";
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
