// Concurrency and crash safety of the vault through the real CLI: many `env set` processes on one vault at once,
// and writers killed with SIGKILL at random moments. The vault must never lose an acknowledged write nor end up
// undecryptable: after any crash it reads as the old state or the new one, nothing in between.
import { randomFillSync, randomInt } from "node:crypto";
import { cp, mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileKeystore } from "../packages/cli/src/keystore/file-store.js";
import { readVault, type VaultDocument } from "../packages/cli/src/vault/vault-store.js";
import { collect, startCli } from "./support/cli.js";
import { UUID_V4, expectSuccess, tempProject, type TempProject } from "./support/project.js";

let base: TempProject;
beforeAll(async () => {
  base = await tempProject({ marker: "package.json" });
});
afterAll(() => base.cleanup());

/** The vault as this machine's file store opens it, in-process (no CLI involved in the verdict). */
function openVault(latchkeyHome: string, vaultId: string): Promise<VaultDocument> {
  const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
  const keystore = createFileKeystore({
    home: latchkeyHome,
    store: join(latchkeyHome, "store.enc"),
    storeKey: join(latchkeyHome, "store.key"),
    machineIdPaths: ["/etc/machine-id", "/var/lib/dbus/machine-id"],
    random,
  });
  return readVault(
    { keystore, home: latchkeyHome, vaultsDir: join(latchkeyHome, "vaults"), random },
    vaultId,
  );
}

describe("vault under concurrency and crashes", () => {
  it("32 concurrent `env set Ki=Vi` on a fresh project agree on one vault id and keep all 32; 32 more on the existing vault too", async () => {
    const p = await tempProject({ marker: "git" });
    try {
      const first = await Promise.all(
        Array.from({ length: 32 }, (_, i) => p.cli(["env", "set", `K${i}=V${i}`])),
      );
      for (const r of first) expectSuccess(r);
      const id = await p.vaultId();
      expect(id).toMatch(UUID_V4);
      expect(first.filter((r) => r.stderr.includes("Created")).length).toBe(1);
      expect(await readdir(p.vaultsDir)).toEqual([`${id}.enc`]);
      const expected: Record<string, string> = {};
      for (let i = 0; i < 32; i++) expected[`K${i}`] = `V${i}`;
      expect(await openVault(p.latchkeyHome, id)).toEqual({ default: expected });

      const second = await Promise.all(
        Array.from({ length: 32 }, (_, i) => p.cli(["env", "set", `L${i}=W${i}`])),
      );
      for (const r of second) expectSuccess(r);
      for (let i = 0; i < 32; i++) expected[`L${i}`] = `W${i}`;
      const exported = await p.cli(["env", "export", "--format", "json"]);
      expectSuccess(exported);
      expect(JSON.parse(exported.stdout)).toEqual(expected);
      expect(await readdir(p.vaultsDir)).toEqual([`${id}.enc`]);
    } finally {
      await p.cleanup();
    }
  });

  it("kill -9 of `env set` at random moments (200 trials): the vault always decrypts to the old or the new state", async () => {
    // The seed: a vault with a few secrets in two environments.
    expectSuccess(await base.cli(["env", "set", "EXISTING_0=old-0", "EXISTING_1=old-1", "EXISTING_2=old-2"]));
    expectSuccess(await base.cli(["env", "set", "--env", "staging", "STAGING_ONLY=s"]));
    const vaultId = await base.vaultId();
    const oldState = await openVault(base.latchkeyHome, vaultId);
    const newState: VaultDocument = {
      ...oldState,
      default: { ...oldState.default, EXISTING_1: "changed-1", NEW_KEY: "new-value" },
    };
    const change = ["env", "set", "EXISTING_1=changed-1", "NEW_KEY=new-value"];

    // Each trial starts from its own copy of the seeded home and project, so a lock left by a killed writer
    // never slows another trial down.
    const copy = async (name: string) => {
      const root = join(base.root, name);
      await mkdir(root);
      const latchkeyHome = join(root, "latchkey-home");
      const dir = join(root, "app");
      await cp(base.latchkeyHome, latchkeyHome, { recursive: true });
      await cp(base.dir, dir, { recursive: true });
      // The seed bound the vault to base.dir; without that binding the copy is bound, on its first use, to the
      // project at its own path, as a vault from before bindings is (project/approvals.ts).
      await rm(join(latchkeyHome, "approvals.json"));
      return { latchkeyHome, dir, env: { ...base.env(), LATCHKEY_HOME: latchkeyHome } };
    };

    // Spread the kills over the whole life of a `set`, start-up included, timed as the trials run: two at once.
    // The median of six runs, with head-room, so one run slowed by a busy machine does not stretch the window
    // until most kills land after the command has finished.
    const durations: number[] = [];
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        [0, 1].map(async (i) => {
          const t = await copy(`probe-${round}-${i}`);
          const started = performance.now();
          expectSuccess(await collect(startCli(change, { env: t.env, cwd: t.dir })));
          durations.push(performance.now() - started);
          expect(await openVault(t.latchkeyHome, vaultId)).toEqual(newState);
        }),
      );
    }
    durations.sort((a, b) => a - b);
    const window = Math.ceil(((durations[2]! + durations[3]!) / 2) * 1.5);

    const outcomes = { old: 0, new: 0 };
    const trial = async (n: number) => {
      const t = await copy(`trial-${n}`);
      const child = startCli(change, { env: t.env, cwd: t.dir });
      const done = collect(child);
      // No point waiting past the command's own end: the kill would find nothing to kill.
      await Promise.race([new Promise((r) => setTimeout(r, randomInt(0, window))), done]);
      child.kill("SIGKILL");
      await done;
      const state = await openVault(t.latchkeyHome, vaultId);
      if (state.default?.NEW_KEY === undefined) {
        expect(state, `trial ${n}`).toEqual(oldState);
        outcomes.old++;
      } else {
        expect(state, `trial ${n}`).toEqual(newState);
        outcomes.new++;
      }
    };
    const trials = 200;
    for (let n = 0; n < trials; n += 2) await Promise.all([trial(n), trial(n + 1)]);

    // A killed writer may leave its lock behind; the next writer must take it over, not fail or wait forever.
    const stale: string[] = [];
    for (let n = 0; n < trials; n++) {
      const entries = await readdir(join(base.root, `trial-${n}`, "latchkey-home", "vaults"));
      if (entries.some((e) => e.endsWith(".lock"))) stale.push(`trial-${n}`);
    }
    console.info(
      `vault kill -9 trials: ${trials}, window ${window} ms, old state ${outcomes.old}, new state ${outcomes.new}, ` +
        `stale locks left ${stale.length}`,
    );
    expect(outcomes.old + outcomes.new).toBe(trials);
    // Both outcomes must occur, or the kills never landed inside a write and the test proved nothing.
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.new).toBeGreaterThan(0);

    const recovered = join(base.root, stale[0] ?? "trial-0");
    const after = await collect(
      startCli(["env", "set", "AFTER_CRASH=ok"], {
        env: { ...base.env(), LATCHKEY_HOME: join(recovered, "latchkey-home") },
        cwd: join(recovered, "app"),
      }),
    );
    expectSuccess(after);
    const final = await openVault(join(recovered, "latchkey-home"), vaultId);
    expect(final.default?.AFTER_CRASH).toBe("ok");
    expect(final.staging).toEqual({ STAGING_ONLY: "s" });
    // latchkey.json was only ever read.
    expect(await readFile(join(recovered, "app", "latchkey.json"), "utf8")).toBe(
      await readFile(base.file, "utf8"),
    );
  }, 300_000);
});
