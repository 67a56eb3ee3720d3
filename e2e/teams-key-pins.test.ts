// Pinned members' sharing keys end to end (docs/teams.md, "Trusting members' keys"), with the real server on SQLite
// and the built CLI: after a member runs `env rotate-sharing-key`, the maintainer's next share is refused
// (LK_ORG_MEMBER_KEY_CHANGED) and writes nothing, `org members` marks the key CHANGED, `org trust` with a
// fingerprint that is not the server's pins nothing, and with the one the member's own machine shows the share
// goes through and the member pulls.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import { rotateOnTerminal } from "./support/sharing-keys.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  orgCopyOf,
  projectDir,
  refused,
  registerSharingKey,
  secretsOf,
  trustMemberKey,
  type Member,
} from "./support/teams.js";

const SECRETS = { API_KEY: "sk-pins-5c2e" };

describe.skipIf(!requirePart("the teams e2e suite", terminalCheck()))("pinned members' sharing keys", () => {
  let root: string;
  let server: LatchkeyServer;
  let ann: Member;
  let bob: Member;
  let aDir: string;
  let bDir: string;
  let vaultId: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-pins-"));
    server = await startLatchkeyServer({ dataDir: join(root, "server") });
    ann = await newMember(server, root, "ann", "ann@example.com");
    bob = await newMember(server, root, "bob", "bob@example.com");
    aDir = await projectDir(root, "app", "app");
    ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: aDir, input: "API_KEY=sk-pins-5c2e\n" }));
    vaultId = (JSON.parse(await latchkeyJsonOf(aDir)) as { vault: string }).vault;
    bDir = await projectDir(root, "app-bob", "app", await latchkeyJsonOf(aDir));
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("a member's rotated key refuses the maintainer's share until `org trust` with the member's fingerprint", async () => {
    const created = await onTerminal(ann, ["org", "create", "acme"]);
    expect(created.code, created.output).toBe(0);
    await registerSharingKey(bob);
    await addMember(ann, "acme", bob.email);
    // bob is new to ann's machine: without a terminal the share needs the flag.
    refused(
      await latchkey(ann.m, ["env", "share", "--org", "acme"], { cwd: aDir }),
      "LK_ORG_MEMBER_UNTRUSTED",
    );
    expect(() => orgCopyOf(server, "acme", vaultId)).toThrow(/no copy/);
    ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: aDir }));
    // ann, who wrapped the key, is new to bob's machine as bob was to hers.
    ok(await latchkey(bob.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: bDir }));
    expect(await secretsOf(bob, bDir)).toEqual(SECRETS);

    const rotated = await rotateOnTerminal(bob.m, { password: bob.password });
    expect(rotated.code, rotated.output).toBe(0);
    const before = orgCopyOf(server, "acme", vaultId);
    const changed = refused(
      await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: aDir }),
      "LK_ORG_MEMBER_KEY_CHANGED",
    );
    expect(changed.stderr).toContain(`latchkey org trust acme ${bob.email} FINGERPRINT`);
    expect(orgCopyOf(server, "acme", vaultId)).toEqual(before);
    const members = JSON.parse(ok(await latchkey(ann.m, ["org", "members", "acme", "--json"])).stdout) as {
      members: { email: string; pin: string | null }[];
    };
    expect(members.members.find((m) => m.email === bob.email)?.pin).toBe("changed");

    // A fingerprint that is not the server's (ann's own, say) pins nothing.
    const annsOwn = (
      JSON.parse(ok(await latchkey(ann.m, ["org", "members", "acme", "--json"])).stdout) as {
        thisMachineFingerprint: string;
      }
    ).thisMachineFingerprint;
    refused(await latchkey(ann.m, ["org", "trust", "acme", bob.email, annsOwn]), "LK_ORG_MEMBER_KEY_CHANGED");
    refused(
      await latchkey(ann.m, ["env", "share", "--org", "acme"], { cwd: aDir }),
      "LK_ORG_MEMBER_KEY_CHANGED",
    );

    await trustMemberKey(ann, bob, "acme");
    ok(await latchkey(ann.m, ["env", "share", "--org", "acme"], { cwd: aDir }));
    expect(orgCopyOf(server, "acme", vaultId).version).toBe(before.version + 1);
    ok(await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }));
    expect(await secretsOf(bob, bDir)).toEqual(SECRETS);
  }, 180_000);
});
