// Concurrency and crash safety of the file store through the real CLI: many writers at once, and writers killed
// with SIGKILL at random moments. The store must never lose an acknowledged write nor end up undecryptable.
import { randomFillSync, randomInt } from "node:crypto";
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileKeystore } from "../packages/cli/src/keystore/file-store.js";
import { NO_DBUS, collect, isolatedEnv, runCli, startCli, tempDir } from "./support/cli.js";

let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir("lk-e2e-crash-");
});
afterAll(() => dir.cleanup());

function envFor(home: string) {
  return isolatedEnv({
    HOME: dir.path,
    LATCHKEY_HOME: home,
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
  });
}

function openStore(home: string) {
  return createFileKeystore({
    home,
    store: join(home, "store.enc"),
    storeKey: join(home, "store.key"),
    machineIdPaths: ["/etc/machine-id", "/var/lib/dbus/machine-id"],
    random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
  });
}

describe("file store under concurrency and crashes", () => {
  it("32 concurrent processes each setting a different account: all 32 present", async () => {
    const home = join(dir.path, "concurrent");
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        runCli(["keystore", "set", `account-${i}`], { env: envFor(home), input: `value-${i}` }),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const store = openStore(home);
    const listed = await store.list();
    expect(listed).toHaveLength(32);
    for (let i = 0; i < 32; i++) expect(await store.get(`account-${i}`)).toBe(`value-${i}`);
  });

  it("kill -9 of a writer at random moments (200 trials): the store always decrypts to the old or the new state", async () => {
    const base = join(dir.path, "base");
    for (let i = 0; i < 5; i++) {
      expect(
        (await runCli(["keystore", "set", `existing-${i}`], { env: envFor(base), input: `old-${i}` })).code,
      ).toBe(0);
    }
    const oldState = Object.fromEntries(await openStore(base).entries());

    // Spread the kills over the whole life of a `set`, start-up included.
    const durations: number[] = [];
    for (let i = 0; i < 3; i++) {
      const home = join(dir.path, `probe-${i}`);
      await mkdir(home, { mode: 0o700 });
      for (const f of ["store.enc", "store.key"]) await copyFile(join(base, f), join(home, f));
      const started = performance.now();
      await runCli(["keystore", "set", "new-account"], { env: envFor(home), input: "new-value" });
      durations.push(performance.now() - started);
    }
    const window = Math.ceil(Math.max(...durations) * 1.2);

    const outcomes = { old: 0, new: 0 };
    const trial = async (n: number) => {
      const home = join(dir.path, `trial-${n}`);
      await mkdir(home, { mode: 0o700 });
      for (const f of ["store.enc", "store.key"]) await copyFile(join(base, f), join(home, f));
      const child = startCli(["keystore", "set", "new-account"], { env: envFor(home), input: "new-value" });
      const done = collect(child);
      await new Promise((r) => setTimeout(r, randomInt(0, window)));
      child.kill("SIGKILL");
      await done;
      const entries = Object.fromEntries(await openStore(home).entries());
      if (entries["new-account"] === undefined) {
        expect(entries).toEqual(oldState);
        outcomes.old++;
      } else {
        expect(entries).toEqual({ ...oldState, "new-account": "new-value" });
        outcomes.new++;
      }
    };
    const trials = 200;
    for (let n = 0; n < trials; n += 2) await Promise.all([trial(n), trial(n + 1)]);
    console.info(
      `kill -9 trials: ${trials}, window ${window} ms, old state ${outcomes.old}, new state ${outcomes.new}`,
    );
    expect(outcomes.old + outcomes.new).toBe(trials);
    // Both outcomes must occur, or the kills never landed inside a write and the test proved nothing.
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.new).toBeGreaterThan(0);

    // A killed writer may leave its lock behind; the next writer must take it over, not fail or wait forever.
    const recovered = join(dir.path, "trial-0");
    const after = await runCli(["keystore", "set", "after-crash"], { env: envFor(recovered), input: "ok" });
    expect(after.code, after.stderr).toBe(0);
    expect(await openStore(recovered).get("after-crash")).toBe("ok");
  }, 300_000);
});
