import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import { checkLocalCopyAge, describeDuration, offlineMaxAge, withoutNetwork } from "./offline.js";
import { recordSync, syncDir } from "./state.js";

const V = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const OTHER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
const S = "http://127.0.0.1:8787";
const T = Date.parse("2030-01-01T00:00:00.000Z");
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A context with its own LATCHKEY_HOME whose clock reads `now`. */
async function machine(now: number) {
  const dir = await mkdtemp(join(tmpdir(), "lk-offline-"));
  dirs.push(dir);
  const env = { LATCHKEY_HOME: join(dir, "home") };
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    clock: { now: () => now, sleep: () => Promise.resolve() },
  });
  return { ctx, home: ctx.paths.home };
}

const limit = (text: string) => offlineMaxAge({ offline: true, maxAge: text })!;

describe("--offline and --max-age", () => {
  it("ask for nothing unless given; --offline alone allows 24h; --max-age alone implies --offline", () => {
    expect(offlineMaxAge({})).toBeNull();
    expect(offlineMaxAge({ offline: false })).toBeNull();
    expect(offlineMaxAge({ offline: true })).toEqual({ ms: DAY, text: "24h" });
    expect(offlineMaxAge({ maxAge: "30m" })).toEqual({ ms: 30 * 60_000, text: "30m" });
    expect(limit("45s").ms).toBe(45_000);
    expect(limit("12h").ms).toBe(12 * HOUR);
    expect(limit("7d").ms).toBe(7 * DAY);
    expect(limit("9999999d").ms).toBe(9_999_999 * DAY);
  });

  it("refuse any other duration with LK_USAGE naming it", () => {
    for (const text of [
      "",
      "24",
      "h",
      "0h",
      "01h",
      "1.5h",
      "-1h",
      "1w",
      "1H",
      " 1h",
      "1h ",
      "1h30m",
      "10000000d",
    ]) {
      let error: unknown;
      try {
        offlineMaxAge({ maxAge: text });
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(text)).toMatchObject({ code: "LK_USAGE", exitCode: 2 });
      expect((error as Error).message).toContain(JSON.stringify(text));
    }
  });

  it("describe durations in their largest unit that makes at least 2", () => {
    expect(describeDuration(0)).toBe("0 seconds");
    expect(describeDuration(1_500)).toBe("1 second");
    expect(describeDuration(90_000)).toBe("90 seconds");
    expect(describeDuration(25 * HOUR)).toBe("25 hours");
    expect(describeDuration(49 * HOUR)).toBe("2 days");
  });
});

describe("the age of a local copy", () => {
  it("is not checked for a vault this machine never synced (another vault's sync does not count)", async () => {
    const { ctx, home } = await machine(T + 365 * DAY);
    await checkLocalCopyAge(ctx, V, limit("1h"));
    await recordSync(home, S, "u1", OTHER, 1, T);
    await checkLocalCopyAge(ctx, V, limit("1h"));
  });

  it("passes up to --max-age after the last successful sync, and is LK_VAULT_STALE past it", async () => {
    const at = await machine(T + DAY);
    await recordSync(at.home, S, "u1", V, 3, T);
    await checkLocalCopyAge(at.ctx, V, limit("24h"));
    const past = await machine(T + DAY + 1000);
    await recordSync(past.home, S, "u1", V, 3, T);
    await expect(checkLocalCopyAge(past.ctx, V, limit("24h"))).rejects.toMatchObject({
      code: "LK_VAULT_STALE",
      exitCode: 1,
      message: `The local copy of vault ${V} was last synced 24 hours ago (2030-01-01T00:00:00.000Z), longer than --max-age 24h allows.`,
      hint: expect.stringContaining("latchkey env pull") as unknown,
      details: {
        vaultId: V,
        syncedAt: "2030-01-01T00:00:00.000Z",
        ageSeconds: 86_401,
        maxAgeSeconds: 86_400,
      },
    });
  });

  it("counts the most recent sync with any server or account, under any spelling of the vault id", async () => {
    const { ctx, home } = await machine(T + 10 * DAY);
    await recordSync(home, S, "u1", V, 1, T);
    await recordSync(home, "https://lk.example", "u2", V, 1, T + 9 * DAY);
    await checkLocalCopyAge(ctx, V.toUpperCase(), limit("2d"));
    await expect(checkLocalCopyAge(ctx, V, limit("12h"))).rejects.toMatchObject({
      code: "LK_VAULT_STALE",
      details: { syncedAt: "2030-01-10T00:00:00.000Z" },
    });
  });

  it("is LK_VAULT_STALE for a synced vault whose sync time was never recorded", async () => {
    const { ctx, home } = await machine(T);
    await recordSync(home, S, "u1", V, 1, T);
    // As a CLI from before the time was kept left it.
    const entry = { server: S, userId: "u1", vaultId: V, highestVersion: 1, syncedVersion: 1 };
    await writeFile(join(syncDir(home), "state.json"), JSON.stringify({ format: 1, entries: [entry] }));
    await expect(checkLocalCopyAge(ctx, V, limit("7d"))).rejects.toMatchObject({
      code: "LK_VAULT_STALE",
      message: expect.stringContaining("has no record of when") as unknown,
      details: { vaultId: V, syncedAt: null },
    });
  });

  it("takes a sync time ahead of the clock (the clock was turned back) as now", async () => {
    const { ctx, home } = await machine(T);
    await recordSync(home, S, "u1", V, 1, T + DAY);
    await checkLocalCopyAge(ctx, V, limit("1s"));
  });
});

describe("withoutNetwork", () => {
  it("refuses every request and keeps the rest of the context", async () => {
    const { ctx } = await machine(T);
    const offline = withoutNetwork(ctx);
    await expect(offline.fetch("https://lk.example/api/v1/me")).rejects.toMatchObject({
      code: "LK_INTERNAL",
    });
    expect(offline.env).toBe(ctx.env);
    expect(offline.paths).toBe(ctx.paths);
    expect(offline.clock.now()).toBe(T);
  });
});
