// What `latchkey run` puts in a program's environment from a vault it did not write itself: a vault can arrive by
// `env pull`, so the checks `env set` makes cannot be the only ones. The vault here is written past those checks,
// as a pull from another machine leaves it; the program is "started" through a recording replaceProcess.
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { buildProgram } from "../cli.js";
import type { Context } from "../context.js";
import { parseFastPath, runFastCommand } from "../fast-path.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { recordSync } from "../sync/state.js";
import { updateVault } from "../vault/vault-store.js";
import type { RunState } from "./support.js";

const VAULT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const CANARY = "--require=/tmp/pulled-canary-7f3a.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-run-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A program start that never happens: replaceProcess records the environment and stops the command. */
class Started extends Error {
  constructor(readonly env: Readonly<Record<string, string>>) {
    super("started");
  }
}

/** The environments the programs started with, in order. */
let started: Readonly<Record<string, string>>[] = [];
beforeEach(() => {
  started = [];
});

/** A context whose vault (chosen by LATCHKEY_VAULT_ID) holds `secrets` in `default`. */
async function withVault(
  secrets: Record<string, string>,
  os?: NodeJS.Platform,
): Promise<Context & { stdout: { text: () => string }; stderr: { text: () => string } }> {
  // A home of its own per context: each keeps its vault key in its own in-memory keystore.
  const env = {
    LATCHKEY_HOME: await mkdtemp(join(dir, "home-")),
    LATCHKEY_VAULT_ID: VAULT_ID,
    PATH: "/usr/bin:/bin",
  };
  const paths = resolvePaths(env);
  const keystore = createMemoryKeystore();
  const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
  await updateVault({ keystore, home: paths.home, vaultsDir: paths.vaults, random }, VAULT_ID, (doc) => {
    doc.default = secrets;
    return { result: undefined, changed: true };
  });
  return {
    ...createTestContext({
      env,
      cwd: dir,
      paths,
      random,
      keystore: () => Promise.resolve({ keystore } as KeystoreResolution),
      platform: { nodeVersion: "24.0.0", uid: null, machineIdPaths: [], ...(os === undefined ? {} : { os }) },
    }),
    replaceProcess: (_file, _argv, childEnv) => {
      started.push(childEnv);
      return Promise.reject(new Started(childEnv));
    },
  };
}

/** `argv` through the fast path, as `latchkey run …` starts: the exit code and what it printed. */
async function fast(ctx: Context & { stderr: { text: () => string } }, argv: string[]) {
  const command = parseFastPath(argv);
  expect(command, argv.join(" ")).not.toBeNull();
  const state = await runFastCommand(command!, ctx);
  return { code: state.exitCode, stderr: ctx.stderr.text() };
}

/** `argv` through commander, as the full CLI parses it. */
async function full(ctx: Context, argv: string[]): Promise<unknown> {
  const state: RunState = { exitCode: 0 };
  return buildProgram(ctx, state).parseAsync(argv, { from: "user" });
}

describe("run with reserved names in the vault", () => {
  it("refuses to start on the fast path, naming the variables and never their values", async () => {
    const ctx = await withVault({ APP: "x", NODE_OPTIONS: CANARY, LD_PRELOAD: "/tmp/evil.so" });
    const r = await fast(ctx, ["run", "--", process.execPath, "-e", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("LK_ENV_KEY_RESERVED");
    expect(r.stderr).toContain("default would set LD_PRELOAD, NODE_OPTIONS");
    expect(r.stderr).toContain("--allow-override");
    expect(r.stderr).not.toContain(CANARY);
    expect(r.stderr).not.toContain("/tmp/evil.so");
    expect(started).toEqual([]);
  });

  it("refuses to start through the full CLI too (`run` and `env run`)", async () => {
    for (const argv of [
      ["run", "--", process.execPath, "-e", "1"],
      ["env", "run", "--mask", process.execPath, "-e", "1"],
    ]) {
      const ctx = await withVault({ BASH_ENV: "/tmp/evil.sh" });
      await expect(full(ctx, argv), argv.join(" ")).rejects.toMatchObject({
        code: "LK_ENV_KEY_RESERVED",
        details: { environment: "default", keys: ["BASH_ENV"] },
      });
    }
    expect(started).toEqual([]);
  });

  it("refuses Latchkey's own variables, and compares names as Windows does there", async () => {
    const own = await withVault({ LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1" });
    expect((await fast(own, ["run", "--", process.execPath])).stderr).toContain("LK_ENV_KEY_RESERVED");
    const windows = await withVault({ Path: "C:\\evil", node_options: CANARY }, "win32");
    await expect(full(windows, ["run", "--", process.execPath])).rejects.toMatchObject({
      code: "LK_ENV_KEY_RESERVED",
      details: { keys: ["Path", "node_options"] },
    });
    // Elsewhere case matters: `Path` is not PATH, and a program gets it as given.
    const linux = await withVault({ Path: "x" }, "linux");
    await expect(full(linux, ["run", "--", process.execPath])).rejects.toBeInstanceOf(Started);
    expect(started.map((env) => env.Path)).toEqual(["x"]);
  });

  it("refuses a schema default for a reserved name as it refuses a secret", async () => {
    await writeFile(join(dir, "package.json"), "{}\n");
    await writeFile(
      join(dir, "latchkey.json"),
      `${JSON.stringify({ vault: VAULT_ID, envSchema: { NODE_OPTIONS: { default: CANARY } } })}\n`,
    );
    const ctx = await withVault({ APP: "x" });
    const r = await fast(ctx, ["run", "--", process.execPath]);
    expect(r.stderr).toContain("LK_ENV_KEY_RESERVED");
    expect(r.stderr).not.toContain(CANARY);
    expect(started).toEqual([]);
  });

  it("starts the program with them given --allow-override, on either path", async () => {
    const secrets = { APP: "x", NODE_OPTIONS: CANARY };
    await fast(await withVault(secrets), ["run", "--allow-override", "--", process.execPath]);
    await expect(
      full(await withVault(secrets), ["env", "run", "--allow-override", process.execPath]),
    ).rejects.toBeInstanceOf(Started);
    expect(started.map((env) => env.NODE_OPTIONS)).toEqual([CANARY, CANARY]);
  });

  it("starts it when the reserved secrets go in files rather than the environment (--file, --mount)", async () => {
    // A real child (files keep `run` as the parent): it exits 7 only when NODE_OPTIONS is not in its environment.
    const probe = "process.exit(process.env.NODE_OPTIONS === undefined ? 7 : 3)";
    for (const files of [
      ["--file", "NODE_OPTIONS"],
      ["--mount", "secrets.env"],
    ]) {
      const ctx = await withVault({ APP: "x", NODE_OPTIONS: CANARY });
      const state: RunState = { exitCode: 0 };
      await buildProgram(ctx, state).parseAsync(["run", ...files, "--", process.execPath, "-e", probe], {
        from: "user",
      });
      expect(state.exitCode, files.join(" ")).toBe(7);
    }
  });
});

describe("run and env get --offline", () => {
  const T = Date.parse("2030-01-01T00:00:00.000Z");
  const HOUR = 3_600_000;

  /** withVault's context, synced at T and read two hours later. */
  async function syncedTwoHoursAgo(secrets: Record<string, string>) {
    const ctx = await withVault(secrets);
    await recordSync(ctx.paths.home, "http://127.0.0.1:8787", "u1", VAULT_ID, 1, T);
    return { ...ctx, clock: { now: () => T + 2 * HOUR, sleep: () => Promise.resolve() } };
  }

  it("starts the program from a copy synced within --max-age, on either path", async () => {
    await fast(await syncedTwoHoursAgo({ APP: "fresh" }), ["run", "--offline", "--", "true"]);
    await expect(
      full(await syncedTwoHoursAgo({ APP: "fresh" }), ["env", "run", "--max-age", "3h", "true"]),
    ).rejects.toBeInstanceOf(Started);
    expect(started.map((env) => env.APP)).toEqual(["fresh", "fresh"]);
  });

  it("refuses a copy synced longer ago than --max-age with LK_VAULT_STALE, starting nothing", async () => {
    const r = await fast(await syncedTwoHoursAgo({ APP: "stale-canary-5d1e" }), [
      "run",
      "--offline",
      "--max-age",
      "1h",
      "--",
      "true",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("LK_VAULT_STALE");
    expect(r.stderr).toContain(
      "last synced 2 hours ago (2030-01-01T00:00:00.000Z), longer than --max-age 1h allows",
    );
    expect(r.stderr).toContain("latchkey env pull");
    expect(r.stderr).not.toContain("stale-canary-5d1e");
    await expect(
      full(await syncedTwoHoursAgo({ APP: "stale-canary-5d1e" }), ["run", "--max-age=90m", "--", "true"]),
    ).rejects.toMatchObject({ code: "LK_VAULT_STALE", details: { ageSeconds: 7200, maxAgeSeconds: 5400 } });
    expect(started).toEqual([]);
  });

  it("env get prints the value of a recent copy and refuses a stale one", async () => {
    const ctx = await syncedTwoHoursAgo({ KEY: "value-1" });
    expect((await fast(ctx, ["env", "get", "--offline", "KEY"])).code).toBe(0);
    expect(ctx.stdout.text()).toBe("value-1");
    const stale = await syncedTwoHoursAgo({ KEY: "value-2" });
    const r = await fast(stale, ["env", "get", "KEY", "--max-age", "30m"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("LK_VAULT_STALE");
    expect(stale.stdout.text()).toBe("");
  });

  it("does not look at the sync time without --offline or --max-age", async () => {
    const ctx = await withVault({ KEY: "value" });
    await recordSync(ctx.paths.home, "http://127.0.0.1:8787", "u1", VAULT_ID, 1, T);
    // withVault's clock throws when read: no check reads it.
    expect((await fast(ctx, ["env", "get", "KEY"])).code).toBe(0);
  });

  it("refuses a --max-age it cannot read as LK_USAGE before reading anything", async () => {
    const r = await fast(await withVault({ APP: "x" }), ["run", "--max-age", "1week", "--", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("LK_USAGE");
    expect(r.stderr).toContain('not "1week"');
    expect(started).toEqual([]);
  });
});
