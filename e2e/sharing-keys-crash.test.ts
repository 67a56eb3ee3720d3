// `latchkey env rotate-sharing-key` survives kill -9 at every step (docs/teams.md, "Sharing keys"), with the real
// server process and the CLI on a real terminal: the tests' CLI build (test/support/crash-cli.ts) SIGKILLs itself
// right after the step LATCHKEY_TEST_CRASH_AT names — the new key stored as pending, the server holding it, the
// pending key promoted — 50 times, looping over the steps. After every crash the shipped CLI is run again on the
// same machine and always finishes: either it only promotes a pending key the server already has (no prompt), or
// it rotates (the word and the password typed), and then the machine's key is the server's and no pending key is
// left. A crash before the upload changes nothing on the server. The account is a member of an organisation with
// two shared vaults: after each round of the three steps (and at the end) its keys to them are gone, and once the
// owner shares again both vaults pull with the key the reruns left.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCrashCli } from "../packages/cli/test/support/crash-cli-bundle.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import { localKeyOf, rotateOnTerminal, serverKeyOf } from "./support/sharing-keys.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  refused,
  registerSharingKey,
  secretsOf,
  trustMemberKey,
  userIdOf,
  type Member,
} from "./support/teams.js";

const ORG = "crash-org";
/** The organisation's vaults and their secrets. */
const VAULTS: readonly { name: string; secrets: Record<string, string> }[] = [
  { name: "billing", secrets: { STRIPE_KEY: "sk-crash-1f2e", DB_URL: "postgres://billing.internal/db" } },
  { name: "web", secrets: { SESSION_SECRET: "web-crash-9a7c" } },
];
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
    /** The organisation's owner, who shares the vaults. */
    let ann: Member;
    /** The member whose sharing key is rotated. */
    let user: Member;
    let userId: string;
    /** Per vault: the owner's project and the member's checkout of it. */
    const projects: { owner: string; member: string; secrets: Record<string, string> }[] = [];

    /**
     * The member's keys to the organisation's vaults are gone; the owner shares each again, and the member then
     * pulls both with the sharing key this machine has now.
     */
    async function expectPullableAfterReshare(label: string): Promise<void> {
      for (const project of projects) {
        refused(
          await latchkey(user.m, ["env", "pull", "--org", ORG], { cwd: project.member }),
          "LK_ORG_VAULT_KEY_MISSING",
        );
        // The member's key changed with the rotation: the owner pins the new one, as read out by the member.
        await trustMemberKey(ann, user, ORG);
        ok(await latchkey(ann.m, ["env", "share", "--org", ORG], { cwd: project.owner }));
        const pulled = await latchkey(user.m, ["env", "pull", "--org", ORG], { cwd: project.member });
        expect(pulled.code, `${label}: ${pulled.stderr}`).toBe(0);
        expect(await secretsOf(user, project.member), label).toEqual(project.secrets);
      }
    }

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-sharing-crash-"));
      crashCli = await bundleCrashCli(root);
      server = await startLatchkeyServer({ dataDir: join(root, "server") });
      ann = await newMember(server, root, "ann", "sharing-crash-owner@example.com");
      user = await newMember(server, root, "m", "sharing-crash@example.com");
      userId = userIdOf(server, user.email);
      const created = await onTerminal(ann, ["org", "create", ORG]);
      expect(created.code, created.output).toBe(0);
      await registerSharingKey(user);
      await addMember(ann, ORG, user.email, "member");
      for (const vault of VAULTS) {
        const owner = await projectDir(root, `${vault.name}-owner`, vault.name);
        const input = Object.entries(vault.secrets)
          .map(([k, v]) => `${k}=${v}\n`)
          .join("");
        ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: owner, input }));
        ok(await latchkey(ann.m, ["env", "share", "--org", ORG, "--trust-new-members"], { cwd: owner }));
        const member = await projectDir(
          root,
          `${vault.name}-member`,
          vault.name,
          await latchkeyJsonOf(owner),
        );
        ok(await latchkey(user.m, ["env", "pull", "--org", ORG, "--trust-new-members"], { cwd: member }));
        expect(await secretsOf(user, member)).toEqual(vault.secrets);
        projects.push({ owner, member, secrets: vault.secrets });
      }
    }, 180_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it(`${CRASHES} kills, looping over the steps: a rerun always finishes with one key on both sides`, async () => {
      const outcomes = new Map<string, number>();
      for (let i = 0; i < CRASHES; i++) {
        const step = STEPS[i % STEPS.length]!;
        const label = `crash ${i + 1} at ${step}`;
        const before = { local: await localKeyOf(user.m), server: serverKeyOf(server, userId) };
        expect(before.local, label).toBe(before.server);

        const crashed = await rotateOnTerminal(user.m, {
          password: user.password,
          cli: crashCli,
          env: { LATCHKEY_TEST_CRASH_AT: step },
        });
        expect(crashed.code, `${label}: ${crashed.output}`).toBe(KILLED);
        const pending = await localKeyOf(user.m, true);
        expect(pending, label).not.toBeNull();
        // Killed before the upload, the server still has the old key; after it, the new one.
        expect(serverKeyOf(server, userId), label).toBe(
          step === "sharing-key-pending-stored" ? before.server : pending,
        );

        const rerun = await rotateOnTerminal(user.m, { password: user.password });
        expect(rerun.code, `${label}, rerun: ${rerun.output}`).toBe(0);
        const how = rerun.output.includes("Finished the interrupted rotation") ? "recovered" : "rotated";
        outcomes.set(`${step} ${how}`, (outcomes.get(`${step} ${how}`) ?? 0) + 1);
        // A pending key the server has is promoted without a question; one it never got is sent by the rerun.
        expect(how, label).toBe(step === "sharing-key-pending-stored" ? "rotated" : "recovered");
        expect(rerun.output.includes("Password"), label).toBe(how === "rotated");
        const after = await localKeyOf(user.m);
        expect(after, label).toBe(pending);
        expect(serverKeyOf(server, userId), label).toBe(after);
        expect(await localKeyOf(user.m, true), label).toBeNull();
        if (i % STEPS.length === STEPS.length - 1) await expectPullableAfterReshare(`after ${label}`);
      }
      expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(CRASHES);
      if (CRASHES % STEPS.length !== 0) await expectPullableAfterReshare("after the last crash");
    }, 900_000);
  },
);
