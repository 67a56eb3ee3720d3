// Adopting a paired wrapping key survives kill -9 at every step (docs/pairing.md "Adoption"), with the real server
// and separate machines: A pushed a vault; B, signed in to the same account, has vaults of its own (one pushed,
// one only local) and so its own wrapping key. B is killed (SIGKILL, the crash points of the tests' CLI build,
// test/support/crash-cli.ts) during adoption: once inside a whole `latchkey pair`, then 50 times through the
// same adoptWrappingKey that `latchkey pair` runs once it holds the key, looping over every step. After each
// crash B's own vaults still open; `latchkey env rotate-key`, the command the paused adoption names, finishes
// it, and B then pulls A's vault.
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCrashCli } from "../packages/cli/test/support/crash-cli-bundle.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  createUser,
  latchkey,
  loginCli,
  newMachine,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import {
  APPROVE_QUESTION,
  expectNotPaired,
  ok,
  onTerminal,
  startPairing,
  wrappingKeyOf,
} from "./support/pairing.js";
import { projectDir } from "./support/teams.js";

const USER = { email: "pairing-crash@example.com", password: "pairing crash password for e2e" };
const SECRETS = { API_KEY: "k-crash", DATABASE_URL: "postgres://db.internal/crash" };
/** B's own vaults before pairing: one it pushed, one it never did. */
const OWN = { synced: "b-synced-value", local: "b-local-value" };
/**
 * Every point where adoption can stop, for B's two vault keys: the pending key stored, each local re-wrap (two
 * passes over two keys), the pushed vault's server copy re-wrapped, the key promoted.
 */
const STEPS = [
  "pending-stored",
  "vault-key-rewrapped:1",
  "vault-key-rewrapped:2",
  "vault-key-rewrapped:3",
  "vault-key-rewrapped:4",
  "server-key-updated:1",
  "promoted",
];
const CRASHES = 50;

describe.skipIf(!requirePart("the pairing crash e2e suite", terminalCheck()))(
  "adopting a paired wrapping key, killed at every step",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let crashCli: string;
    let a: Machine;
    let b: Machine;
    /** B's home before it paired: each crash starts from it. */
    let unpairedHome: string;
    const dirs = { a: "", bSynced: "", bLocal: "", aOnB: "" };

    const project = (name: string, latchkeyJson?: string): Promise<string> =>
      projectDir(root, name, name, latchkeyJson);

    async function get(m: Machine, cwd: string, key: string): Promise<string> {
      const got = await latchkey(m, ["env", "get", key], { cwd });
      expect(got.code, `env get ${key}: ${got.stderr}`).toBe(0);
      return got.stdout;
    }

    /** B's own vaults open with whatever keys B holds now. */
    async function expectOwnVaultsOpen(): Promise<void> {
      const [synced, local] = await Promise.all([get(b, dirs.bSynced, "OWN"), get(b, dirs.bLocal, "OWN")]);
      expect({ synced, local }).toEqual(OWN);
    }

    /** The rerun finishes the adoption; B then pulls A's vault and reads A's secrets, and still its own. */
    async function finishAndPull(label: string): Promise<void> {
      const rerun = await latchkey(b, ["env", "rotate-key"]);
      expect(rerun.code, `${label}: ${rerun.stderr}`).toBe(0);
      expect(rerun.stderr, label).toContain("Finished the interrupted rotation");
      const pulled = await latchkey(b, ["env", "pull"], { cwd: dirs.aOnB });
      expect(pulled.code, `${label}: ${pulled.stderr}`).toBe(0);
      const [exported] = await Promise.all([
        latchkey(b, ["env", "export", "--format", "json"], { cwd: dirs.aOnB }),
        expectOwnVaultsOpen(),
      ]);
      expect(exported.code, `${label}: ${exported.stderr}`).toBe(0);
      expect(JSON.parse(exported.stdout), label).toEqual(SECRETS);
    }

    async function restoreUnpairedB(): Promise<void> {
      await rm(b.latchkeyHome, { recursive: true, force: true });
      await cp(unpairedHome, b.latchkeyHome, { recursive: true });
    }

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-crash-"));
      const [built, started] = await Promise.all([
        bundleCrashCli(root),
        startLatchkeyServer({ dataDir: join(root, "server") }),
      ]);
      crashCli = built;
      server = started;
      await createUser(server, USER.email, USER.password);
      a = await newMachine(root, "a");
      b = await newMachine(root, "b");
      await Promise.all([loginCli(a, server, USER), loginCli(b, server, USER)]).then((r) => r.forEach(ok));

      dirs.a = await project("app");
      for (const [key, value] of Object.entries(SECRETS))
        ok(await latchkey(a, ["env", "set", key], { cwd: dirs.a, input: value }));
      ok(await latchkey(a, ["env", "push"], { cwd: dirs.a }));
      dirs.aOnB = await project("app-on-b", await readFile(join(dirs.a, "latchkey.json"), "utf8"));

      dirs.bSynced = await project("b-synced");
      dirs.bLocal = await project("b-local");
      ok(await latchkey(b, ["env", "set", "OWN"], { cwd: dirs.bSynced, input: OWN.synced }));
      ok(await latchkey(b, ["env", "push"], { cwd: dirs.bSynced }));
      ok(await latchkey(b, ["env", "set", "OWN"], { cwd: dirs.bLocal, input: OWN.local }));
      await expectNotPaired(b, dirs.aOnB);

      unpairedHome = join(root, "b-unpaired-home");
      await cp(b.latchkeyHome, unpairedHome, { recursive: true });
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it("latchkey pair killed during adoption leaves B's vaults readable; env rotate-key finishes it", async () => {
      const ownKey = await wrappingKeyOf(b);
      const { terminal: onB, code } = await startPairing(b, USER.password, {
        label: "machine b",
        cli: crashCli,
        env: { LATCHKEY_TEST_CRASH_AT: "server-key-updated:1" },
      });
      const onA = onTerminal(a, ["env", "pair", code]);
      await onA.waitFor(APPROVE_QUESTION);
      onA.type("y");
      const approved = await onA.exited;
      expect(approved.code, approved.output).toBe(0);
      const killed = await onB.exited;
      // script(1) reports a child killed by a signal as 128 + the signal's number.
      expect(killed.code, killed.output).toBe(128 + 9);
      expect(killed.output).not.toContain("Paired:");

      // Half way: A's key waits as the pending key, B's own key is still there, every vault of B's opens.
      const aKey = await wrappingKeyOf(a);
      expect(await wrappingKeyOf(b, true)).toBe(aKey);
      expect(await wrappingKeyOf(b)).toBe(ownKey);
      await expectOwnVaultsOpen();
      // Pairing again is not how to finish: it says what is.
      const again = await latchkey(b, ["pair"]);
      expect(again.stderr, again.stderr).toContain("error LK_PAIRING_FAILED");
      expect(again.stderr).toContain("latchkey env rotate-key");

      await finishAndPull("after latchkey pair was killed");
      expect(await wrappingKeyOf(b)).toBe(aKey);
      expect(await wrappingKeyOf(b, true)).toBeNull();
    }, 120_000);

    it(`adoption killed ${CRASHES} times over all its steps: B's vaults always open, every rerun finishes`, async () => {
      const aKey = await wrappingKeyOf(a);
      expect(aKey).not.toBeNull();
      const reached = new Map<string, number>();
      for (let i = 0; i < CRASHES; i++) {
        const step = STEPS[i % STEPS.length]!;
        const label = `crash ${i + 1} at ${step}`;
        await restoreUnpairedB();
        const crashed = await latchkey(b, ["__test-adopt-key"], {
          cli: crashCli,
          input: aKey!,
          env: { LATCHKEY_TEST_CRASH_AT: step },
        });
        expect(crashed.signal, `${label}: ${crashed.stderr}`).toBe("SIGKILL");
        reached.set(step, (reached.get(step) ?? 0) + 1);
        // The killed process still holds the wrapping key's lock, which the rerun takes over once it is stale
        // (5 s without a refresh; the first test waits for that). Here the lock is aged instead of waited for.
        const lock = join(b.latchkeyHome, "wrapping-key.lock");
        expect(existsSync(lock), label).toBe(true);
        const past = new Date(Date.now() - 60_000);
        await utimes(lock, past, past);
        await expectOwnVaultsOpen();
        await finishAndPull(label);
      }
      expect([...reached.keys()]).toEqual(STEPS);
      expect([...reached.values()].reduce((sum, n) => sum + n, 0)).toBe(CRASHES);

      // Without a crash the same adoption runs to its end in one go.
      await restoreUnpairedB();
      const adopted = await latchkey(b, ["__test-adopt-key"], { cli: crashCli, input: aKey! });
      expect(adopted.code, adopted.stderr).toBe(0);
      expect(JSON.parse(adopted.stdout)).toMatchObject({ how: "adopted", resumed: false, unreadable: [] });
      expect(await wrappingKeyOf(b)).toBe(aKey);
    }, 300_000);
  },
);
