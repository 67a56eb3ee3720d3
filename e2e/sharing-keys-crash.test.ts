// `latchkey env rotate-sharing-key` survives kill -9 at every step (docs/teams.md, "Sharing keys"), with the real
// server process and the CLI on a real terminal: the tests' CLI build (test/support/crash-cli.ts) SIGKILLs itself
// right after the step LATCHKEY_TEST_CRASH_AT names — the new key stored as pending, the server holding it, the
// pending key promoted — 50 times, looping over the steps. After every crash the shipped CLI is run again on the
// same machine and always finishes: either it only promotes a pending key the server already has (no prompt), or
// it rotates (the word and the password typed), and then the machine's key is the server's and no pending key is
// left. A crash before the upload changes nothing on the server.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCrashCli } from "../packages/cli/test/support/crash-cli-bundle.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  createUser,
  loginCli,
  newMachine,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { localKeyOf, rotateOnTerminal, serverKeyOf, userIdOf } from "./support/sharing-keys.js";

const USER = { email: "sharing-crash@example.com", password: "sharing crash password for e2e" };
const STEPS = ["sharing-key-pending-stored", "sharing-key-uploaded", "sharing-key-promoted"] as const;
const CRASHES = Number(process.env.LK_CRASHES ?? 50);
/** What `script -e` exits with when the program it runs is killed by SIGKILL: 128 + 9. */
const KILLED = 137;

describe.skipIf(!requirePart("the sharing-key crash e2e suite", terminalCheck()))(
  "env rotate-sharing-key, killed at every step",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let crashCli: string;
    let m: Machine;
    let userId: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-sharing-crash-"));
      crashCli = await bundleCrashCli(root);
      server = await startLatchkeyServer({ dataDir: join(root, "server") });
      await createUser(server, USER.email, USER.password);
      userId = userIdOf(server, USER.email);
      m = await newMachine(root, "m");
      const login = await loginCli(m, server, USER);
      expect(login.code, login.stderr).toBe(0);
      const first = await rotateOnTerminal(m, { password: USER.password });
      expect(first.code, first.output).toBe(0);
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it(`${CRASHES} kills, looping over the steps: a rerun always finishes with one key on both sides`, async () => {
      const outcomes = new Map<string, number>();
      for (let i = 0; i < CRASHES; i++) {
        const step = STEPS[i % STEPS.length]!;
        const label = `crash ${i + 1} at ${step}`;
        const before = { local: await localKeyOf(m), server: serverKeyOf(server, userId) };
        expect(before.local, label).toBe(before.server);

        const crashed = await rotateOnTerminal(m, {
          password: USER.password,
          cli: crashCli,
          env: { LATCHKEY_TEST_CRASH_AT: step },
        });
        expect(crashed.code, `${label}: ${crashed.output}`).toBe(KILLED);
        const pending = await localKeyOf(m, true);
        expect(pending, label).not.toBeNull();
        // Killed before the upload, the server still has the old key; after it, the new one.
        expect(serverKeyOf(server, userId), label).toBe(
          step === "sharing-key-pending-stored" ? before.server : pending,
        );

        const rerun = await rotateOnTerminal(m, { password: USER.password });
        expect(rerun.code, `${label}, rerun: ${rerun.output}`).toBe(0);
        const how = rerun.output.includes("Finished the interrupted rotation") ? "recovered" : "rotated";
        outcomes.set(`${step} ${how}`, (outcomes.get(`${step} ${how}`) ?? 0) + 1);
        // A pending key the server has is promoted without a question; one it never got is sent by the rerun.
        expect(how, label).toBe(step === "sharing-key-pending-stored" ? "rotated" : "recovered");
        expect(rerun.output.includes("Password"), label).toBe(how === "rotated");
        const after = await localKeyOf(m);
        expect(after, label).toBe(pending);
        expect(serverKeyOf(server, userId), label).toBe(after);
        expect(await localKeyOf(m, true), label).toBeNull();
      }
      expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(CRASHES);
    }, 600_000);
  },
);
