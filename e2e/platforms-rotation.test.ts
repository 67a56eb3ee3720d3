// A platform connection of an organisation's copy survives a rotation of the copy's vault key (docs/platforms.md,
// "Connections"; docs/teams.md, "Removing a member"), with the real server process, the built CLI and the loopback
// Fly.io double: a maintainer connects Fly with the organisation's key, an admin removes a member (which rotates the
// key), and a remaining member's `env platforms push` still unseals the token and writes to Fly; the credential the
// server holds was re-sealed in the rotation's share, so the old vault key (which the removed member kept) no longer
// opens it, and the audit log has the re-seal, never the token. The admin's machine, which rotated the key but kept
// the old one in its record (it has not pulled the new version), cannot connect a platform with it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBase64, openEnvelope, platformCredentialContext, utf8Decode } from "@latchkey/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startFlyDouble, type FlyDouble } from "../packages/cli/test/support/platforms/fly-double.js";
import { latchkey, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  orgKeyOf,
  projectDir,
  readDatabase,
  registerSharingKey,
  sharingKeyPair,
  unwrapFor,
  userIdOf,
  type Member,
} from "./support/teams.js";

const TOKEN = "fly-rotation-token-canary-71d2c9";
const VALUE = "lk-e2e-rotation-value-canary-0f4b";
const APP = "acme-rotation-web";

if (requirePart("the platform rotation e2e suite", terminalCheck())) {
  let root: string;
  let server: LatchkeyServer;
  let fly: FlyDouble;
  let ann: Member;
  let bob: Member;
  let cid: Member;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-rotation-"));
    server = await startLatchkeyServer({ dataDir: join(root, "server") });
    ann = await newMember(server, root, "ann", "ann@rotation.example");
    bob = await newMember(server, root, "bob", "bob@rotation.example");
    cid = await newMember(server, root, "cid", "cid@rotation.example");
    fly = await startFlyDouble({ token: TOKEN, app: APP });
  }, 180_000);
  afterAll(async () => {
    await fly?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  /** The connection's row as the server holds it. */
  const stored = (): { id: string; sealed: string } =>
    readDatabase(server, (db) => {
      const row = db.prepare("SELECT id, sealed_credential FROM platform_connections").get();
      if (row === undefined) throw new Error("no platform connection stored");
      return { id: String(row.id), sealed: String(row.sealed_credential) };
    });
  /** The credential opened with `key`, or null when it does not open. */
  const opened = async (key: Uint8Array, vaultId: string, row: { id: string; sealed: string }) => {
    try {
      return utf8Decode(
        await openEnvelope(key, fromBase64(row.sealed), platformCredentialContext(vaultId, row.id)),
      );
    } catch {
      return null;
    }
  };

  it("after org remove rotates the key, a member still pushes to Fly, and the old key opens no credential", async () => {
    const created = await onTerminal(ann, ["org", "create", "acme"]);
    expect(created.code, created.output).toBe(0);
    for (const member of [bob, cid]) {
      await registerSharingKey(member);
      await addMember(ann, "acme", member.email);
    }
    const annDir = await projectDir(root, "web-ann", "web");
    ok(await latchkey(ann.m, ["env", "set", "API_KEY"], { cwd: annDir, input: VALUE }));
    ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: annDir }));
    const connect = [
      ...["env", "platforms", "connect", "fly", "--org", "acme", "--env", "default"],
      ...["--app", APP, "--base-url", fly.url, "--credential-stdin"],
    ];
    ok(await latchkey(ann.m, connect, { cwd: annDir, input: `${TOKEN}\n` }));
    const cidDir = await projectDir(root, "web-cid", "web", await latchkeyJsonOf(annDir));
    ok(await latchkey(cid.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: cidDir }));
    const vaultId = (JSON.parse(await latchkeyJsonOf(annDir)) as { vault: string }).vault;

    // The organisation's key before the rotation: what bob, removed below, keeps.
    const cidPair = await sharingKeyPair(cid);
    const cidKey = () => orgKeyOf(server, "acme", vaultId, userIdOf(server, cid.email))!;
    const oldKey = await unwrapFor(cidKey(), cidPair, vaultId, "acme");
    const before = stored();
    expect(await opened(oldKey, vaultId, before)).toBe(TOKEN);

    const removal = await onTerminal(ann, ["org", "remove", "acme", bob.email]);
    expect(removal.code, removal.output).toBe(0);
    expect(removal.output).toContain("new vault key as version 2");
    expect(removal.output).toContain("credentials re-sealed with the new key: fly-default");

    // cid pulls version 2 (the new key) and pushes to Fly with the re-sealed token.
    const pushed = ok(
      await latchkey(cid.m, ["env", "platforms", "push", "fly-default", "--org", "acme"], { cwd: cidDir }),
    );
    expect(pushed.stderr).toContain("+ API_KEY");
    expect(Object.fromEntries(fly.secrets)).toEqual({ API_KEY: VALUE });
    expect(fly.refusals).toEqual([]);

    const after = stored();
    expect(after.id).toBe(before.id);
    expect(after.sealed).not.toBe(before.sealed);
    expect(await opened(oldKey, vaultId, after)).toBeNull();
    const newKey = await unwrapFor(cidKey(), cidPair, vaultId, "acme");
    expect(await opened(newKey, vaultId, after)).toBe(TOKEN);

    // ann's record still holds the version 1 key, which bob kept: her connect seals nothing with it.
    const late = [...connect, "--name", "fly-late"];
    const stale = await latchkey(ann.m, late, { cwd: annDir, input: `${TOKEN}\n` });
    expect(stale.code, stale.stderr).not.toBe(0);
    expect(stale.stderr).toContain("error LK_VAULT_KEY_STALE");
    expect(stale.stderr).toContain("latchkey env pull --org acme");
    expect(readDatabase(server, (db) => db.prepare("SELECT name FROM platform_connections").all())).toEqual([
      { name: "fly-default" },
    ]);

    const audits = readDatabase(server, (db) =>
      db.prepare("SELECT action, version, metadata FROM audit_events WHERE action LIKE 'platform.%'").all(),
    ).map((row) => ({ action: String(row.action), version: row.version, metadata: String(row.metadata) }));
    expect(audits.map((a) => a.action).sort()).toEqual([
      "platform.connect",
      "platform.push",
      "platform.reseal",
    ]);
    expect(audits.find((a) => a.action === "platform.reseal")).toMatchObject({ version: 2 });
    for (const audit of audits) expect(audit.metadata).not.toContain(TOKEN);
    for (const text of [
      server.stdout(),
      server.stderr(),
      removal.output,
      pushed.stdout,
      pushed.stderr,
      stale.stdout,
      stale.stderr,
    ])
      expect(text.includes(TOKEN)).toBe(false);
  }, 300_000);
}
