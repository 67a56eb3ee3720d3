// Organisations end to end (docs/teams.md) with the real server process on SQLite and the built CLI, one machine
// per user: three members share a vault and pull identical secrets; a member added later gets access when a
// maintainer shares again (the documented rule: a plain push never wraps keys for anyone new); a removed member
// can no longer pull, and the vault key they held opens nothing pushed after the rotation (while with --no-rotate
// it does: the control that shows the check can fail); the offboarding report names the secrets and the last
// pull; `org delete` asks for the slug to be typed.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import {
  addMember,
  jsonOnTerminal,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  openCopy,
  orgCopyOf,
  orgKeyOf,
  projectDir,
  readDatabase,
  refused,
  registerSharingKey,
  secretsOf,
  sharingKeyPair,
  unwrapFor,
  userIdOf,
  wrappedKeyOf,
  type Member,
} from "./support/teams.js";

const SECRETS = {
  API_KEY: "sk-teams-7d1f0c",
  DATABASE_URL: "postgres://app:pw-81ac@db.internal/app",
  WEBHOOK_SECRET: "whsec-40b2",
};
const STAGING = { API_KEY: "sk-staging-9e3a" };

interface RemovalJson {
  org: string;
  removed: { email: string; role: string };
  vaults: {
    vaultId: string;
    name: string;
    version: number;
    lastPulledAt: string | null;
    lastPulledVersion: number | null;
    environments: Record<string, string[]> | null;
    rotatedVersion: number | null;
  }[];
}

describe.skipIf(!requirePart("the teams e2e suite", terminalCheck()))("organisations end to end", () => {
  let root: string;
  let server: LatchkeyServer;
  let ann: Member; // owner
  let bob: Member; // member, removed later
  let cid: Member; // maintainer
  let dee: Member; // added later, removed with --no-rotate
  let aDir: string;
  let vaultId: string;
  const dirs = new Map<Member, string>();

  /** `member`'s checkout of the shared project. */
  async function checkout(member: Member): Promise<string> {
    let dir = dirs.get(member);
    if (dir === undefined) {
      dir = await projectDir(root, `app-${member.m.name}`, "app", await latchkeyJsonOf(aDir));
      dirs.set(member, dir);
    }
    return dir;
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-teams-"));
    server = await startLatchkeyServer({ dataDir: join(root, "server") });
    ann = await newMember(server, root, "ann", "ann@example.com");
    bob = await newMember(server, root, "bob", "bob@example.com");
    cid = await newMember(server, root, "cid", "cid@example.com");
    dee = await newMember(server, root, "dee", "dee@example.com");
    aDir = await projectDir(root, "app", "app");
    dirs.set(ann, aDir);
    ok(
      await latchkey(ann.m, ["env", "import", "-"], {
        cwd: aDir,
        input: Object.entries(SECRETS)
          .map(([k, v]) => `${k}=${v}\n`)
          .join(""),
      }),
    );
    ok(
      await latchkey(ann.m, ["env", "import", "-e", "staging", "-"], {
        cwd: aDir,
        input: "API_KEY=sk-staging-9e3a\n",
      }),
    );
    vaultId = (JSON.parse(await latchkeyJsonOf(aDir)) as { vault: string }).vault;
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("three users share a vault and each pulls the same secrets", async () => {
    const created = await onTerminal(ann, ["org", "create", "acme", "--name", "Acme Corp"]);
    expect(created.code, created.output).toBe(0);
    expect(created.output).toContain("registering this machine's");
    expect(created.output).toContain("Created organisation acme (Acme Corp)");
    for (const member of [bob, cid]) await registerSharingKey(member);
    await addMember(ann, "acme", bob.email, "member");
    await addMember(ann, "acme", cid.email, "maintainer");
    // Each added account is told, in the add's transaction; ann, the only owner, added them and hears nothing.
    const notices = readDatabase(server, (db) =>
      db.prepare("SELECT recipient, kind, subject FROM outbox ORDER BY recipient").all(),
    );
    expect(notices).toEqual([
      {
        recipient: bob.email,
        kind: "security",
        subject: "Latchkey: you were added to the organisation acme",
      },
      {
        recipient: cid.email,
        kind: "security",
        subject: "Latchkey: you were added to the organisation acme",
      },
    ]);

    const shared = ok(
      await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members", "--json"], {
        cwd: aDir,
      }),
    );
    expect(JSON.parse(shared.stdout)).toMatchObject({
      org: "acme",
      version: 1,
      newKey: true,
      sharedWith: [ann.email, bob.email, cid.email],
      waiting: [],
    });
    for (const member of [bob, cid]) {
      const dir = await checkout(member);
      // ann, who wrapped the key, is new to their machines: a script's first pull takes her key with the flag.
      refused(
        await latchkey(member.m, ["env", "pull", "--org", "acme"], { cwd: dir }),
        "LK_ORG_MEMBER_UNTRUSTED",
      );
      ok(await latchkey(member.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: dir }));
      expect(await secretsOf(member, dir)).toEqual(SECRETS);
      expect(await secretsOf(member, dir, "staging")).toEqual(STAGING);
    }
    // A member's push goes to the organisation's copy, sealed with its key; the others pull it.
    const bobDir = await checkout(bob);
    ok(await latchkey(bob.m, ["env", "set", "FEATURE_FLAG=on"], { cwd: bobDir }));
    const pushed = ok(await latchkey(bob.m, ["env", "push", "--org", "acme", "--json"], { cwd: bobDir }));
    expect(JSON.parse(pushed.stdout)).toMatchObject({ org: "acme", version: 2, pushed: true });
    for (const member of [ann, cid]) {
      const dir = await checkout(member);
      ok(await latchkey(member.m, ["env", "pull", "--org", "acme"], { cwd: dir }));
      expect(await secretsOf(member, dir)).toEqual({ ...SECRETS, FEATURE_FLAG: "on" });
    }
    // Versions are recorded per organisation in latchkey.json; the personal copy was never pushed.
    expect(JSON.parse(await latchkeyJsonOf(bobDir))).toMatchObject({
      vaultSync: { orgVersions: { acme: 2 } },
    });
    refused(await latchkey(bob.m, ["env", "pull"], { cwd: bobDir }), "LK_VAULT_NOT_SYNCED");
    // The organisation copy's log: for maintainers and up, with its shares, pushes and first pulls.
    const log = JSON.parse(
      ok(await latchkey(cid.m, ["env", "log", "--org", "acme", "--json"], { cwd: await checkout(cid) }))
        .stdout,
    ) as {
      org: string;
      entries: { action: string; actor: { email: string } | null }[];
    };
    expect(log.org).toBe("acme");
    expect(log.entries.map((e) => `${e.action} ${e.actor?.email}`)).toEqual(
      expect.arrayContaining([
        `org.vault.share ${ann.email}`,
        `org.vault.push ${bob.email}`,
        `org.vault.pull ${cid.email}`,
      ]),
    );
    refused(await latchkey(bob.m, ["env", "log", "--org", "acme"], { cwd: bobDir }), "LK_ORG_FORBIDDEN");
    // The server holds ciphertext: no value appears in the database file.
    const file = readDatabase(server, (db) => db.prepare("SELECT encrypted_blob FROM org_vault_heads").all());
    expect(JSON.stringify(file)).not.toContain(SECRETS.API_KEY);
  }, 180_000);

  it("a member added later gets access when a maintainer shares again", async () => {
    // A maintainer may share but not add members; a script cannot add anyone (the add's step-up needs a terminal).
    const byMaintainer = await onTerminal(cid, ["org", "add", "acme", dee.email]);
    expect(byMaintainer.code, byMaintainer.output).not.toBe(0);
    expect(byMaintainer.output).toContain("error LK_ORG_FORBIDDEN");
    refused(await latchkey(ann.m, ["org", "add", "acme", dee.email]), "LK_NOT_INTERACTIVE");
    await addMember(ann, "acme", dee.email);
    const deeDir = await checkout(dee);
    // Their first organisation command registers their sharing key; the copy has no key for it yet.
    const first = await onTerminal(dee, ["env", "pull", "--org", "acme"], { cwd: deeDir });
    expect(first.code, first.output).not.toBe(0);
    expect(first.output).toContain("registering this machine's");
    expect(first.output).toContain("error LK_ORG_VAULT_KEY_MISSING");
    const members = JSON.parse(ok(await latchkey(ann.m, ["org", "members", "acme", "--json"])).stdout) as {
      members: { email: string; needsShare: boolean }[];
    };
    expect(members.members.find((m) => m.email === dee.email)).toMatchObject({ needsShare: true });
    expect(members.members.find((m) => m.email === bob.email)).toMatchObject({ needsShare: false });
    // A plain push by a member does not hand the key to the newcomer.
    const bobDir = await checkout(bob);
    ok(await latchkey(bob.m, ["env", "set", "PUSHED_BY=bob"], { cwd: bobDir }));
    ok(await latchkey(bob.m, ["env", "push", "--org", "acme"], { cwd: bobDir }));
    refused(
      await latchkey(dee.m, ["env", "pull", "--org", "acme"], { cwd: deeDir }),
      "LK_ORG_VAULT_KEY_MISSING",
    );

    // The maintainer shares again (pulling first: the copy moved on since cid's last sync).
    const cidDir = await checkout(cid);
    refused(
      await latchkey(cid.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: cidDir }),
      "LK_VAULT_CONFLICT",
    );
    ok(await latchkey(cid.m, ["env", "pull", "--org", "acme"], { cwd: cidDir }));
    const shared = ok(
      await latchkey(cid.m, ["env", "share", "--org", "acme", "--trust-new-members", "--json"], {
        cwd: cidDir,
      }),
    );
    expect(JSON.parse(shared.stdout)).toMatchObject({ newKey: false, waiting: [] });
    expect((JSON.parse(shared.stdout) as { sharedWith: string[] }).sharedWith).toContain(dee.email);
    ok(await latchkey(dee.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: deeDir }));
    expect(await secretsOf(dee, deeDir)).toEqual({ ...SECRETS, FEATURE_FLAG: "on", PUSHED_BY: "bob" });
  }, 180_000);

  it("a removed member cannot pull, and the key they kept opens nothing pushed after the rotation", async () => {
    const bobDir = await checkout(bob);
    // cid wrapped the key last: new to bob's machine.
    ok(await latchkey(bob.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: bobDir }));
    const bobId = userIdOf(server, bob.email);
    // What bob keeps: his sharing key and the vault key it opens, and the blob he could read.
    const before = orgCopyOf(server, "acme", vaultId);
    const kept = await unwrapFor(
      orgKeyOf(server, "acme", vaultId, bobId)!,
      await sharingKeyPair(bob),
      vaultId,
      "acme",
    );
    expect(await openCopy(kept, before, vaultId, "acme")).toMatchObject({
      default: { API_KEY: SECRETS.API_KEY },
    });
    const pulledAt = readDatabase(server, (db) =>
      db
        .prepare(
          "SELECT created_at, version FROM audit_events WHERE action = 'org.vault.pull' AND user_id = ? ORDER BY version DESC LIMIT 1",
        )
        .get(bobId),
    )!;

    const removal = await onTerminal(ann, [
      "org",
      "remove",
      "acme",
      bob.email,
      "--trust-new-members",
      "--json",
    ]);
    expect(removal.code, removal.output).toBe(0);
    expect(removal.output).not.toContain(ann.password);
    const report = jsonOnTerminal<RemovalJson>(removal.output);
    expect(report).toMatchObject({ org: "acme", removed: { email: bob.email, role: "member" } });
    expect(report.vaults).toHaveLength(1);
    const vault = report.vaults[0]!;
    expect(vault).toMatchObject({
      vaultId,
      name: "app",
      version: before.version,
      lastPulledAt: String(pulledAt.created_at),
      lastPulledVersion: Number(pulledAt.version),
      rotatedVersion: before.version + 1,
    });
    expect(vault.environments).toEqual({
      default: ["API_KEY", "DATABASE_URL", "FEATURE_FLAG", "PUSHED_BY", "WEBHOOK_SECRET"],
      staging: ["API_KEY"],
    });
    // Names only: no value anywhere in the report.
    for (const value of [...Object.values(SECRETS), STAGING.API_KEY])
      expect(removal.output).not.toContain(value);

    // Bob is out: no pull, no key row.
    refused(await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bobDir }), "LK_ORG_NOT_FOUND");
    expect(wrappedKeyOf(server, "acme", vaultId, bobId)).toBeNull();
    // A remaining member pushes a new secret after the rotation; the key bob kept does not open it.
    const cidDir = await checkout(cid);
    ok(await latchkey(cid.m, ["env", "pull", "--org", "acme"], { cwd: cidDir }));
    ok(await latchkey(cid.m, ["env", "set", "AFTER_REMOVAL=fresh-secret-2c9d"], { cwd: cidDir }));
    ok(await latchkey(cid.m, ["env", "push", "--org", "acme"], { cwd: cidDir }));
    const after = orgCopyOf(server, "acme", vaultId);
    expect(after.version).toBe(before.version + 2);
    await expect(openCopy(kept, after, vaultId, "acme")).rejects.toMatchObject({ code: "LK_DECRYPT_FAILED" });
    // The others read it with the new key (wrapped by ann, whom dee's machine has not seen before).
    ok(
      await latchkey(dee.m, ["env", "pull", "--org", "acme", "--trust-new-members"], {
        cwd: await checkout(dee),
      }),
    );
    expect(await secretsOf(dee, await checkout(dee))).toMatchObject({ AFTER_REMOVAL: "fresh-secret-2c9d" });
  }, 180_000);

  it("with --no-rotate the key a removed member kept still opens the next version (the control)", async () => {
    const deeId = userIdOf(server, dee.email);
    const kept = await unwrapFor(
      orgKeyOf(server, "acme", vaultId, deeId)!,
      await sharingKeyPair(dee),
      vaultId,
      "acme",
    );
    const removal = await onTerminal(ann, ["org", "remove", "acme", dee.email, "--no-rotate"]);
    expect(removal.code, removal.output).toBe(0);
    expect(removal.output).toContain("key not rotated (--no-rotate)");
    expect(removal.output).toContain("AFTER_REMOVAL");
    const cidDir = await checkout(cid);
    ok(await latchkey(cid.m, ["env", "set", "AFTER_DEE=value-e51b"], { cwd: cidDir }));
    ok(await latchkey(cid.m, ["env", "push", "--org", "acme"], { cwd: cidDir }));
    const opened = await openCopy(kept, orgCopyOf(server, "acme", vaultId), vaultId, "acme");
    expect(opened.default).toMatchObject({ AFTER_DEE: "value-e51b" });
    // Rotating now closes it.
    const rotated = ok(await latchkey(cid.m, ["org", "rotate-keys", "acme", "--json"]));
    expect(JSON.parse(rotated.stdout)).toMatchObject({ vaults: [{ rotated: true, vaultId }] });
    ok(await latchkey(cid.m, ["env", "pull", "--org", "acme"], { cwd: cidDir }));
    ok(await latchkey(cid.m, ["env", "set", "AFTER_ROTATION=value-77aa"], { cwd: cidDir }));
    ok(await latchkey(cid.m, ["env", "push", "--org", "acme"], { cwd: cidDir }));
    await expect(openCopy(kept, orgCopyOf(server, "acme", vaultId), vaultId, "acme")).rejects.toMatchObject({
      code: "LK_DECRYPT_FAILED",
    });
  }, 180_000);

  it("org delete asks for the slug to be typed (or --confirm) and the password; a script cannot delete", async () => {
    // ann's key is registered: creating needs no terminal.
    ok(await latchkey(ann.m, ["org", "create", "scratch-1"]));
    ok(await latchkey(ann.m, ["org", "create", "scratch-2"]));
    refused(await latchkey(ann.m, ["org", "delete", "scratch-1"]), "LK_NOT_INTERACTIVE");
    refused(await latchkey(ann.m, ["org", "delete", "scratch-1", "--confirm", "scratch-2"]), "LK_USAGE");
    // --confirm replaces the typed slug, not the password: still no terminal, still nothing deleted.
    refused(
      await latchkey(ann.m, ["org", "delete", "scratch-1", "--confirm", "scratch-1"]),
      "LK_NOT_INTERACTIVE",
    );
    const wrong = await onTerminal(ann, ["org", "delete", "scratch-1"], { typed: "scratch" });
    expect(wrong.code, wrong.output).toBe(130);
    expect(wrong.output).toContain("nothing was deleted");
    const typed = await onTerminal(ann, ["org", "delete", "scratch-1"], { typed: "scratch-1" });
    expect(typed.code, typed.output).toBe(0);
    expect(typed.output).toContain("Password");
    const confirmed = await onTerminal(ann, ["org", "delete", "scratch-2", "--confirm", "scratch-2"]);
    expect(confirmed.code, confirmed.output).toBe(0);
    const listed = JSON.parse(ok(await latchkey(ann.m, ["org", "list", "--json"])).stdout) as {
      orgs: { slug: string }[];
    };
    expect(listed.orgs.map((o) => o.slug)).toEqual(["acme"]);
    // A member cannot delete.
    refused(await latchkey(cid.m, ["org", "delete", "acme", "--confirm", "acme"]), "LK_ORG_FORBIDDEN");
  }, 180_000);
});
