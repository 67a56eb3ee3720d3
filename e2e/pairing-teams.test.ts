// Pairing hands over the account's sharing key with the wrapping key (docs/pairing.md, "Adoption"), with the real
// server process and the built CLI on real pseudo-terminals: machine A owns an organisation with a shared vault
// (its first organisation command registered A's sharing key); machine B, signed in to the same account, cannot
// open the organisation's copy (LK_SHARING_KEY_MISMATCH) until it pairs with A; after pairing it pulls the
// organisation's copy and reads the same secrets, with no rotation: the account's registered key, its audit rows
// and its wrapped key are as they were, and both machines hold the same sharing key.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startServerWithUser, type LatchkeyServer } from "./support/latchkey-server.js";
import { signedInMachine } from "./support/machines.js";
import {
  APPROVER_DIGITS,
  APPROVE_QUESTION,
  NEW_MACHINE_DIGITS,
  onTerminal as pairOnTerminal,
  shown,
  startPairing,
} from "./support/pairing.js";
import { localKeyOf, serverKeyOf, sharingKeyAudit } from "./support/sharing-keys.js";
import {
  latchkeyJsonOf,
  ok,
  onTerminal,
  projectDir,
  refused,
  secretsOf,
  userIdOf,
  wrappedKeyOf,
  type Member,
} from "./support/teams.js";

const ORG = "pair-org";
const USER = { email: "pairing-teams@example.com", password: "pairing teams password for e2e" };
const SECRETS = { API_KEY: "sk-pair-org-51c9", DATABASE_URL: "postgres://app:pw-6b1e@db.internal/app" };

describe.skipIf(!requirePart("the pairing and organisations e2e suite", terminalCheck()))(
  "pairing hands over the sharing key",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let a: Member;
    let userId: string;
    let aDir: string;
    let vaultId: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-teams-"));
      server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
      userId = userIdOf(server, USER.email);
      const m = await signedInMachine(root, "a", server, USER);
      a = { ...USER, m };
      aDir = await projectDir(root, "app", "app");
      ok(
        await latchkey(m, ["env", "import", "-"], {
          cwd: aDir,
          input: Object.entries(SECRETS)
            .map(([k, v]) => `${k}=${v}\n`)
            .join(""),
        }),
      );
      vaultId = (JSON.parse(await latchkeyJsonOf(aDir)) as { vault: string }).vault;
      // A's first organisation command registers its sharing key (the password typed on its terminal).
      const created = await onTerminal(a, ["org", "create", ORG]);
      expect(created.code, created.output).toBe(0);
      expect(created.output).toContain("registering this machine's");
      ok(await latchkey(m, ["env", "share", "--org", ORG], { cwd: aDir }));
    }, 180_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it("B pairs with A and then pulls the organisation's vault with A's sharing key, without a rotation", async () => {
      const registered = serverKeyOf(server, userId);
      expect(registered).not.toBeNull();
      expect(await localKeyOf(a.m)).toBe(registered);
      const wrapped = wrappedKeyOf(server, ORG, vaultId, userId);
      expect(wrapped).not.toBeNull();
      const sharingEntry = ok(await latchkey(a.m, ["keystore", "get", "sharing-key"])).stdout.trim();

      const b = await signedInMachine(root, "b", server, USER);
      const bDir = await projectDir(root, "app-on-b", "app", await latchkeyJsonOf(aDir));
      // Before pairing, B holds no sharing key, so it cannot open what is wrapped for the account's.
      refused(await latchkey(b, ["env", "pull", "--org", ORG], { cwd: bDir }), "LK_SHARING_KEY_MISMATCH");

      const { terminal: onB, code } = await startPairing(b, USER.password, { label: "machine b" });
      const onA = pairOnTerminal(a.m, ["env", "pair", code]);
      await onA.waitFor(APPROVE_QUESTION);
      await onB.waitFor(NEW_MACHINE_DIGITS);
      expect(shown(onB, NEW_MACHINE_DIGITS)).toBe(shown(onA, APPROVER_DIGITS));
      onA.type("y");
      const approved = await onA.exited;
      expect(approved.code, approved.output).toBe(0);
      const paired = await onB.exited;
      expect(paired.code, paired.output).toBe(0);

      // B pulls the organisation's copy and reads what A shared.
      ok(await latchkey(b, ["env", "pull", "--org", ORG], { cwd: bDir }));
      expect(await secretsOf({ ...USER, m: b }, bDir)).toEqual(SECRETS);
      // It holds A's key, the one the server has, and no pending rotation.
      expect(await localKeyOf(b)).toBe(registered);
      expect(await localKeyOf(b, true)).toBeNull();

      // Both machines said which keys went, and showed neither.
      expect(approved.output).toContain(`${APPROVE_QUESTION} and sharing key to "machine b"?`);
      expect(approved.output).toContain("receives this machine's wrapping key and sharing key once");
      expect(paired.output).toContain(
        `It holds your account's sharing key now (${registered!.slice(0, 16)}…)`,
      );
      for (const output of [approved.output, paired.output]) {
        expect(output).not.toContain(sharingEntry);
        expect(output).not.toContain(USER.password);
      }

      // No rotation: the registered key, its one audit row and the wrapped key are as they were, and A still
      // opens the organisation's copy.
      expect(serverKeyOf(server, userId)).toBe(registered);
      expect(sharingKeyAudit(server, userId).map((row) => row.action)).toEqual(["vault.public_key_set"]);
      expect(wrappedKeyOf(server, ORG, vaultId, userId)).toBe(wrapped);
      ok(await latchkey(a.m, ["env", "pull", "--org", ORG], { cwd: aDir }));
      expect(await localKeyOf(a.m)).toBe(registered);
    }, 180_000);
  },
);
