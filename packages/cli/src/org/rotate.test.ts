// Rotating an organisation copy's vault key, against a fake of the organisation routes holding real sealed copies
// and keys wrapped for members whose key pairs the test holds (the wrapping and opening it is built on: copy.test.ts).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomFillSync } from "node:crypto";
import { fromBase64, toBase64 } from "@latchkey/core";
import {
  ME,
  connectionCredential,
  memberKeyPair,
  memberVaultKey,
  noTerminal,
  openFakeCopy,
  orgTeam,
  sealedConnection,
  sealedCopy,
  type FakeMember,
  type OrgTeam,
} from "../../test/support/org-server.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { getSyncEntry, recordSync } from "../sync/state.js";
import { trustOrgMember } from "./manage.js";
import { rotateOrgVault, rotateOrgVaults } from "./rotate.js";
import { openOrgSession, type OrgSession } from "./session.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const OTHER_VAULT = "1f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const DAVE = "44444444-4444-4444-8444-444444444444";
const DOCUMENT = { default: { API_KEY: "value-1", DB: "value-2" }, prod: { API_KEY: "value-3" } };

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-rotate-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Team extends OrgTeam {
  session: OrgSession;
}

/** The signed-in account (maintainer) with a registered sharing key, bob (member, with a key), eve (no key). */
async function team(): Promise<Team> {
  const t = await orgTeam(root, `m${++n}`);
  return { ...t, session: await openOrgSession(t.machine.ctx, {}) };
}

const random = (size: number) => randomFillSync(new Uint8Array(size));

const TOKEN_CANARY = "fly-token-rotate-canary-3b9d";

describe("rotating an organisation copy's vault key", () => {
  it("seals the same secrets with a new key as the next version, wrapped for every member with a key", async () => {
    const t = await team();
    const oldKey = random(32);
    const before = await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 4,
      vaultKey: oldKey,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(rotated).toMatchObject({
      vaultId: VAULT,
      fromVersion: 4,
      version: 5,
      environments: { default: ["API_KEY", "DB"], prod: ["API_KEY"] },
      sharedWith: ["bob@example.com", "me@example.com"],
      waiting: ["eve@example.com"],
    });
    const after = t.org.copies.get(VAULT)!;
    expect(after.version).toBe(5);
    expect([...after.keys.keys()].sort()).toEqual([ME, t.bob.userId].sort());
    const newKey = await memberVaultKey(after, t.bob, t.org, VAULT);
    expect(newKey).not.toEqual(oldKey);
    expect(await openFakeCopy(after, t.org, VAULT, newKey)).toEqual(DOCUMENT);
    await expect(openFakeCopy(after, t.org, VAULT, oldKey)).rejects.toMatchObject({
      code: "LK_DECRYPT_FAILED",
    });
    // Each member's wrapped key is its own (a fresh ephemeral key per wrap).
    expect(after.keys.get(ME)!.wrappedKey).not.toBe(after.keys.get(t.bob.userId)!.wrappedKey);
    expect(before.keys.get(t.bob.userId)!.wrappedKey).not.toBe(after.keys.get(t.bob.userId)!.wrappedKey);
  });

  it("raises the key version this machine has had of a copy it synced, so the old key is not taken back", async () => {
    const t = await team();
    const home = t.machine.ctx.paths.home;
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 4,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    // Nothing synced here: a rotation leaves no record of its own.
    await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(await getSyncEntry(home, SHARING_SERVER, ME, VAULT, "acme")).toBeNull();
    await recordSync(home, SHARING_SERVER, ME, VAULT, 5, 0, "acme", 5);
    await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(await getSyncEntry(home, SHARING_SERVER, ME, VAULT, "acme")).toMatchObject({
      syncedVersion: 5,
      highestVersion: 5,
      highestKeyVersion: 6,
    });
  });

  it("starts again from the newer version when a push lands between its fetch and its share", async () => {
    const t = await team();
    const key = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: key,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    let pushes = 0;
    t.org.beforeShare = async () => {
      if (pushes++ > 0) return;
      // bob pushes version 2 with the current key, just before the share lands.
      await sealedCopy(t.machine.server, t.org, VAULT, {
        version: 2,
        vaultKey: key,
        document: { default: { API_KEY: "pushed" } },
        members: [t.me, t.bob],
      });
    };
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(rotated).toMatchObject({ fromVersion: 2, version: 3, environments: { default: ["API_KEY"] } });
    const after = t.org.copies.get(VAULT)!;
    expect(await openFakeCopy(after, t.org, VAULT, await memberVaultKey(after, t.bob, t.org, VAULT))).toEqual(
      {
        default: { API_KEY: "pushed" },
      },
    );
  });

  it("gives up with LK_VAULT_CONFLICT when pushes keep landing first", async () => {
    const t = await team();
    const key = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: key,
      document: DOCUMENT,
      members: [t.me],
    });
    // Someone pushes a new version before every share lands.
    t.org.beforeShare = async () => {
      await sealedCopy(t.machine.server, t.org, VAULT, {
        version: t.org.copies.get(VAULT)!.version + 1,
        vaultKey: key,
        document: DOCUMENT,
        members: [t.me],
      });
    };
    await expect(rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session)).rejects.toMatchObject({
      code: "LK_VAULT_CONFLICT",
    });
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(3);
  });

  it("wraps again for the members as they are when they changed under the share; a new one must be trusted", async () => {
    const t = await team();
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    const dave: FakeMember = {
      userId: DAVE,
      email: "dave@example.com",
      role: "member",
      pair: await memberKeyPair(),
    };
    const swap = () => {
      // Between the key listing and the share, bob leaves and dave joins: the share is LK_ORG_MEMBERS_CHANGED.
      if (t.org.members.includes(t.bob)) t.org.members = [...t.org.members.filter((m) => m !== t.bob), dave];
    };
    t.org.beforeShare = swap;
    // The re-fetch finds dave, never seen here, and there is no terminal to ask on: nothing is wrapped for him.
    noTerminal(t);
    await expect(rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session)).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
    });
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(1);
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
    // With --trust-new-members the re-fetch wraps for him.
    t.org.members = [...t.org.members.filter((m) => m !== dave), t.bob];
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, {
      ...t.session,
      trustNewMembers: true,
    });
    expect(rotated.sharedWith).toEqual(["dave@example.com", "me@example.com"]);
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(3);
    const after = t.org.copies.get(VAULT)!;
    expect(await openFakeCopy(after, t.org, VAULT, await memberVaultKey(after, dave, t.org, VAULT))).toEqual(
      DOCUMENT,
    );
  });

  it("a member's key changed under the share: the re-fetch after LK_ORG_MEMBERS_CHANGED refuses it, until org trust", async () => {
    const t = await team();
    // Shared from this machine: bob's change below is of a recipient, not of who wrapped the key.
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
      sharer: { ...t.me, pair: t.session.key },
    });
    const bobsNewKey = await memberKeyPair();
    t.org.beforeShare = () => {
      // bob's key is replaced between the key listing and the share (his rotation, or the server's doing).
      t.bob.pair = bobsNewKey;
    };
    await expect(
      rotateOrgVault(t.machine.ctx, "acme", VAULT, { ...t.session, trustNewMembers: true }),
    ).rejects.toMatchObject({ code: "LK_ORG_MEMBER_KEY_CHANGED" });
    // Only the first attempt (wrapped for the pinned key) reached the server, and it was refused there.
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(1);
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
    // bob reads his new fingerprint out to the maintainer, who pins it: the rotation then goes through.
    await trustOrgMember(t.machine.ctx, "acme", "bob@example.com", bobsNewKey.fingerprint, {});
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(rotated.version).toBe(2);
    const after = t.org.copies.get(VAULT)!;
    expect(after.keys.get(t.bob.userId)!.fingerprint).toBe(bobsNewKey.fingerprint);
    expect(await openFakeCopy(after, t.org, VAULT, await memberVaultKey(after, t.bob, t.org, VAULT))).toEqual(
      DOCUMENT,
    );
  });

  it("reports a vault it cannot open and rotates the others", async () => {
    const t = await team();
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    // Shared before this account had a key: none for it.
    await sealedCopy(t.machine.server, t.org, OTHER_VAULT, {
      version: 3,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.bob],
    });
    const results = await rotateOrgVaults(t.machine.ctx, "acme", t.session);
    expect(results.find((r) => r.vaultId === VAULT)).toMatchObject({ rotated: true, version: 2 });
    expect(results.find((r) => r.vaultId === OTHER_VAULT)).toMatchObject({
      rotated: false,
      error: { code: "LK_ORG_VAULT_KEY_MISSING" },
    });
    expect(t.org.copies.get(OTHER_VAULT)!.version).toBe(3);
  });

  it("re-seals the copy's platform credentials with the new key in the share, and drops one the old key does not open", async () => {
    const t = await team();
    const oldKey = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: oldKey,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    const web = await sealedConnection(VAULT, "web", oldKey, `${TOKEN_CANARY}-web`);
    const lost = await sealedConnection(VAULT, "lost", random(32), `${TOKEN_CANARY}-lost`);
    t.org.platforms = new Map([[VAULT, [web, lost]]]);
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(rotated.platforms).toEqual({ resealed: ["web"], dropped: ["lost"] });
    const after = t.org.copies.get(VAULT)!;
    const newKey = await memberVaultKey(after, t.bob, t.org, VAULT);
    const [kept, ...rest] = t.org.platforms.get(VAULT)!;
    expect(rest).toEqual([]);
    expect(kept).toMatchObject({ id: web.id, name: "web" });
    expect(kept!.sealedCredential).not.toBe(web.sealedCredential);
    expect(await connectionCredential(VAULT, kept!, newKey)).toBe(`${TOKEN_CANARY}-web`);
    expect(await connectionCredential(VAULT, kept!, oldKey)).toBeNull();
    // The credential went to the server sealed, never open.
    const shares = t.machine.server.seen.filter((r) => r.path.endsWith("/share"));
    expect(shares).toHaveLength(1);
    expect(shares[0]!.body).toContain(kept!.sealedCredential);
    for (const r of t.machine.server.seen) expect(r.body).not.toContain(TOKEN_CANARY);
  });

  it("stops at a credential of another envelope format: nothing dropped, no share sent, the connection named", async () => {
    const t = await team();
    const oldKey = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: oldKey,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    const web = await sealedConnection(VAULT, "web", oldKey, `${TOKEN_CANARY}-web`);
    const sealed = await sealedConnection(VAULT, "next", oldKey, `${TOKEN_CANARY}-next`);
    const bytes = fromBase64(sealed.sealedCredential);
    bytes[3] = 0x02;
    const next = { ...sealed, sealedCredential: toBase64(bytes) };
    t.org.platforms = new Map([[VAULT, [web, next]]]);
    await expect(rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session)).rejects.toMatchObject({
      code: "LK_FORMAT_INVALID",
      message: expect.stringContaining("platform connection next (fly)"),
    });
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toEqual([]);
    expect(t.org.platforms.get(VAULT)).toEqual([web, next]);
    expect(t.org.copies.get(VAULT)!.version).toBe(2);
  });

  it("lists the connections again and starts over when one is connected between its listing and its share", async () => {
    const t = await team();
    const oldKey = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: oldKey,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    t.org.platforms = new Map([
      [VAULT, [await sealedConnection(VAULT, "web", oldKey, `${TOKEN_CANARY}-web`)]],
    ]);
    const late = await sealedConnection(VAULT, "late", oldKey, `${TOKEN_CANARY}-late`);
    let shares = 0;
    t.org.beforeShare = () => {
      // A maintainer connects a platform, with the key of the copy as it still is, just before the share lands.
      if (shares++ === 0) t.org.platforms!.get(VAULT)!.push(late);
    };
    const rotated = await rotateOrgVault(t.machine.ctx, "acme", VAULT, t.session);
    expect(rotated).toMatchObject({ version: 2, platforms: { resealed: ["late", "web"], dropped: [] } });
    expect(t.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(2);
    const after = t.org.copies.get(VAULT)!;
    const newKey = await memberVaultKey(after, t.bob, t.org, VAULT);
    for (const c of t.org.platforms.get(VAULT)!)
      expect(await connectionCredential(VAULT, c, newKey)).toBe(`${TOKEN_CANARY}-${c.name}`);
  });
});
