// Wrapping an organisation vault key for the members and opening one (copy.ts), against a fake of the organisation
// routes holding real sealed copies and keys wrapped by members whose key pairs the test holds. The opening side
// plays a lying server: it names who wrapped a key, and may name someone else than who did.
import { randomFillSync } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  orgVaultKeyContext,
  toBase64,
  unwrapKeyFromSender,
  wrapKeyForRecipient,
  wrapKeyFromSender,
  type OrgPullResponse,
  type OrgRole,
} from "@latchkey/core";
import {
  ME,
  memberKeyPair,
  noTerminal,
  orgTeam,
  pulledWrapper,
  sealedCopy,
  wrapperOf,
  type FakeMember,
  type MemberKeyPair,
  type OrgTeam,
} from "../../test/support/org-server.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { recordSync } from "../sync/state.js";
import { openOrgBlob, unwrapOrgKey, wrapForMembers, type Sharer, type WrappedOrgKey } from "./copy.js";
import { ORG_KEYS_FILE, readOrgKeys } from "./pins.js";
import { openOrgSession, type OrgSession } from "./session.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const DOCUMENT = { default: { API_KEY: "value-1", DB: "value-2" }, prod: { API_KEY: "value-3" } };
const CAROL = "44444444-4444-4444-8444-444444444444";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-copy-keys-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Team extends OrgTeam {
  session: OrgSession;
  confirms: boolean[];
  /** What this machine opens keys as, without --trust-new-members. */
  me: FakeMember & { sharer: Sharer };
}

/** The signed-in account (maintainer) with a registered sharing key, bob (pinned here), eve (no key). */
async function team(): Promise<Team> {
  const confirms: boolean[] = [];
  const t = await orgTeam(root, `m${++n}`, "maintainer", { confirms });
  const session = await openOrgSession(t.machine.ctx, {});
  return {
    ...t,
    session,
    confirms,
    me: Object.assign(t.me, { sharer: { userId: ME, key: session.key } }),
  };
}

const random = (size: number) => randomFillSync(new Uint8Array(size));

/** What the fake's pull would answer this machine for `VAULT`. */
function answerOf(t: Team): WrappedOrgKey & Pick<OrgPullResponse, "encryptedBlob"> {
  const copy = t.org.copies.get(VAULT)!;
  const key = copy.keys.get(ME)!;
  return {
    vaultId: VAULT,
    version: copy.version,
    encryptedBlob: copy.encryptedBlob,
    wrappedKey: key.wrappedKey,
    fingerprint: key.fingerprint,
    keyVersion: key.keyVersion,
    wrappedBy: pulledWrapper(t.org, key.wrappedBy),
  };
}

/** Version `version` of the copy, its key wrapped for this machine by `sharer` (bob by default). */
async function copyFor(t: Team, vaultKey: Uint8Array, version = 3, sharer?: FakeMember) {
  return sealedCopy(t.machine.server, t.org, VAULT, {
    version,
    vaultKey,
    document: DOCUMENT,
    members: [t.me, t.bob],
    ...(sharer === undefined ? {} : { sharer }),
  });
}

/** A key the server made itself for this machine (it needs only the public key), from its own key pair. */
async function planted(t: Team, vaultKey: Uint8Array, server: MemberKeyPair, keyVersion: number) {
  return wrapKeyFromSender(
    vaultKey,
    t.session.key.publicKey,
    server,
    orgVaultKeyContext(VAULT, "acme", keyVersion),
  );
}

/** Version 3 of the copy, its key wrapped by carol, a maintainer this machine never saw. */
async function byCarol(t: Team, vaultKey = random(32)): Promise<FakeMember> {
  const carol: FakeMember = {
    userId: CAROL,
    email: "carol@example.com",
    role: "maintainer",
    pair: await memberKeyPair(),
  };
  t.org.members.push(carol);
  await copyFor(t, vaultKey, 3, carol);
  return carol;
}

const pinsHere = async (t: Team) => (await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]?.acme ?? {};

describe("wrapping for members", () => {
  it("refuses to share when the server lists another key for you, or none: you would lose access", async () => {
    const t = await team();
    const wrap = { org: "acme", vaultId: VAULT, vaultKey: random(32), keyVersion: 1 };
    t.me.pair = await memberKeyPair();
    // The fake lists the sharing server's key for the account: swap it for another behind the CLI's back.
    t.machine.server.key = { publicKey: toBase64(t.me.pair.publicKey), fingerprint: t.me.pair.fingerprint };
    await expect(wrapForMembers(t.machine.ctx, wrap, t.me.sharer, t.session.api)).rejects.toMatchObject({
      code: "LK_SERVER_ERROR",
      message: expect.stringContaining("another sharing key"),
    });
    // The fake lists no key for the account at all.
    t.machine.server.key = null;
    await expect(wrapForMembers(t.machine.ctx, wrap, t.me.sharer, t.session.api)).rejects.toMatchObject({
      code: "LK_SERVER_ERROR",
      message: expect.stringContaining("you would have lost access"),
    });
  });

  it("wraps from this machine's sharing key for the share's copy and key version; each fingerprint computed here", async () => {
    const t = await team();
    const vaultKey = random(32);
    const wrapped = await wrapForMembers(
      t.machine.ctx,
      { org: "acme", vaultId: VAULT, vaultKey, keyVersion: 5 },
      t.me.sharer,
      t.session.api,
    );
    const bobs = wrapped.wrappedKeys.find((k) => k.userId === t.bob.userId)!;
    expect(bobs.fingerprint).toBe(t.bob.pair!.fingerprint);
    expect(wrapped.wrappedKeys.find((k) => k.userId === ME)).toMatchObject({
      fingerprint: t.session.key.fingerprint,
    });
    expect(wrapped.waiting).toEqual(["eve@example.com"]);
    const open = (sender: Uint8Array, keyVersion: number) =>
      unwrapKeyFromSender(
        bobs.wrappedKey,
        t.bob.pair!.privateKey,
        t.bob.pair!.publicKey,
        sender,
        orgVaultKeyContext(VAULT, "acme", keyVersion),
      );
    expect(await open(t.session.key.publicKey, 5)).toEqual(vaultKey);
    // Bound to who wrapped it and to the key version: neither another sender nor another version opens it.
    await expect(open(t.bob.pair!.publicKey, 5)).rejects.toMatchObject({ code: "LK_DECRYPT_FAILED" });
    await expect(open(t.session.key.publicKey, 4)).rejects.toMatchObject({ code: "LK_DECRYPT_FAILED" });
  });

  it("wraps for every member of a large organisation, each key its own", async () => {
    const t = await team();
    const pair = await memberKeyPair();
    const many: FakeMember[] = Array.from({ length: 150 }, (_, i) => ({
      userId: `55555555-5555-4555-8555-${String(i).padStart(12, "0")}`,
      email: `m${i}@example.com`,
      role: "member",
      pair,
    }));
    t.org.members.push(...many);
    const vaultKey = random(32);
    const wrapped = await wrapForMembers(
      t.machine.ctx,
      { org: "acme", vaultId: VAULT, vaultKey, keyVersion: 1 },
      { ...t.me.sharer, trustNewMembers: true },
      t.session.api,
    );
    expect(wrapped.wrappedKeys).toHaveLength(152);
    expect(new Set(wrapped.wrappedKeys.map((k) => k.userId)).size).toBe(152);
    expect(new Set(wrapped.wrappedKeys.map((k) => k.wrappedKey)).size).toBe(152);
    const last = wrapped.wrappedKeys.find((k) => k.userId === many[149]!.userId)!;
    expect(
      await unwrapKeyFromSender(
        last.wrappedKey,
        pair.privateKey,
        pair.publicKey,
        t.session.key.publicKey,
        orgVaultKeyContext(VAULT, "acme", 1),
      ),
    ).toEqual(vaultKey);
  });
});

describe("opening a copy's key: who wrapped it", () => {
  it("opens a key wrapped by a member pinned here; the blob only as the copy at its own version", async () => {
    const t = await team();
    const vaultKey = random(32);
    await copyFor(t, vaultKey);
    const answer = answerOf(t);
    const key = await unwrapOrgKey(t.machine.ctx, answer, t.me.sharer, "acme", SHARING_SERVER);
    expect(key).toEqual(vaultKey);
    expect(await openOrgBlob(key, answer, "acme", "s")).toEqual(DOCUMENT);
    await expect(openOrgBlob(key, answer, "beta", "s")).rejects.toMatchObject({
      code: "LK_VAULT_DECRYPT_FAILED",
    });
    await expect(openOrgBlob(key, { ...answer, version: 4 }, "acme", "s")).rejects.toMatchObject({
      code: "LK_VAULT_DECRYPT_FAILED",
    });
  });

  it("a key the server made with its own key pair, naming a pinned member with that key: LK_ORG_MEMBER_KEY_CHANGED", async () => {
    const t = await team();
    await copyFor(t, random(32));
    const server = await memberKeyPair();
    const attackers = random(32);
    const answer = {
      ...answerOf(t),
      wrappedKey: await planted(t, attackers, server, 3),
      wrappedBy: {
        ...pulledWrapper(t.org, wrapperOf(t.bob)),
        publicKey: toBase64(server.publicKey),
        fingerprint: server.fingerprint,
      },
    };
    await expect(
      unwrapOrgKey(t.machine.ctx, answer, { ...t.me.sharer, trustNewMembers: true }, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
      message: expect.stringContaining("nothing was written"),
      hint: expect.stringContaining(`latchkey org trust acme bob@example.com FINGERPRINT`),
    });
    // The same under a new account of bob's email: a server could otherwise replace the member.
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        { ...answer, wrappedBy: { ...answer.wrappedBy, userId: CAROL } },
        { ...t.me.sharer, trustNewMembers: true },
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({ code: "LK_ORG_MEMBER_KEY_CHANGED" });
    expect((await pinsHere(t))[t.bob.userId]!.fingerprint).toBe(t.bob.pair!.fingerprint);
  });

  it("a key the server made, naming a pinned member with their real key: it does not open (LK_VAULT_DECRYPT_FAILED)", async () => {
    const t = await team();
    await copyFor(t, random(32));
    const server = await memberKeyPair();
    const attackers = random(32);
    for (const wrappedKey of [
      await planted(t, attackers, server, 3),
      // The form every key had before: anyone holding the public key could make it.
      await wrapKeyForRecipient(attackers, t.session.key.publicKey),
    ]) {
      await expect(
        unwrapOrgKey(t.machine.ctx, { ...answerOf(t), wrappedKey }, t.me.sharer, "acme", SHARING_SERVER),
      ).rejects.toMatchObject({
        code: "LK_VAULT_DECRYPT_FAILED",
        hint: expect.stringContaining("latchkey env share --org acme"),
      });
    }
  });

  it("a fingerprint that is not the key's, or your own account with another key than this machine's: invalid answer", async () => {
    const t = await team();
    await copyFor(t, random(32));
    const other = await memberKeyPair();
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        {
          ...answerOf(t),
          wrappedBy: { ...pulledWrapper(t.org, wrapperOf(t.bob)), fingerprint: other.fingerprint },
        },
        t.me.sharer,
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({ code: "LK_SERVER_ERROR", message: expect.stringContaining("not that key's") });
    // The server says you wrapped it yourself, from a key of its own: yours is never pinned, it must be this machine's.
    const server = await memberKeyPair();
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        {
          ...answerOf(t),
          wrappedKey: await planted(t, random(32), server, 3),
          wrappedBy: {
            userId: ME,
            email: "me@example.com",
            role: "maintainer",
            publicKey: toBase64(server.publicKey),
            fingerprint: server.fingerprint,
          },
        },
        { ...t.me.sharer, trustNewMembers: true },
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({
      code: "LK_SERVER_ERROR",
      message: expect.stringContaining("not this machine's"),
    });
  });

  it("a key wrapped for another sharing key of yours is LK_ORG_VAULT_KEY_MISSING", async () => {
    const t = await team();
    await copyFor(t, random(32));
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        { ...answerOf(t), fingerprint: (await memberKeyPair()).fingerprint },
        t.me.sharer,
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({ code: "LK_ORG_VAULT_KEY_MISSING" });
  });
});

describe("opening a copy's key: the sharer's role now", () => {
  /**
   * bob, pinned here as a recipient, wraps a key of his own for this machine under the copy's current context
   * (he holds his private key), and the server serves it with a blob sealed under that key.
   */
  async function wrappedByBob(t: Team, role: OrgRole | null): Promise<Uint8Array> {
    const theirs = random(32);
    await copyFor(t, theirs, 3, t.bob);
    if (role === null) t.org.members = t.org.members.filter((m) => m.userId !== t.bob.userId);
    else t.bob.role = role;
    return theirs;
  }

  it("a pinned sharer who is no longer a member: LK_ORG_SHARER_NOT_MAINTAINER, not even asked", async () => {
    const t = await team();
    await wrappedByBob(t, null);
    const asked = t.machine.asked.length;
    for (const answer of [
      answerOf(t),
      { ...answerOf(t), wrappedBy: { ...answerOf(t).wrappedBy, email: null } },
    ]) {
      expect(answer.wrappedBy.role).toBeNull();
      await expect(
        unwrapOrgKey(
          t.machine.ctx,
          answer,
          { ...t.me.sharer, trustNewMembers: true },
          "acme",
          SHARING_SERVER,
        ),
      ).rejects.toMatchObject({
        code: "LK_ORG_SHARER_NOT_MAINTAINER",
        message: expect.stringContaining("not a member of the organisation now"),
        hint: expect.stringContaining("latchkey env share --org acme --new-key"),
      });
    }
    expect(t.machine.asked.slice(asked)).toEqual([]);
  });

  it("a pinned sharer who is a plain member: LK_ORG_SHARER_NOT_MAINTAINER", async () => {
    const t = await team();
    await wrappedByBob(t, "member");
    await expect(
      unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({
      code: "LK_ORG_SHARER_NOT_MAINTAINER",
      message: expect.stringContaining("bob@example.com, who is a member now"),
    });
  });

  it("a pinned maintainer, admin or owner: opened", async () => {
    for (const role of ["maintainer", "admin", "owner"] as const) {
      const t = await team();
      const theirs = await wrappedByBob(t, role);
      expect(await unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER)).toEqual(
        theirs,
      );
    }
  });

  it("a maintainer `org remove` has just removed still opens for its rotation, while their pin holds", async () => {
    const t = await team();
    const theirs = await wrappedByBob(t, null);
    const removing = { ...t.me.sharer, removedSharer: t.bob.userId.toUpperCase() };
    expect(await unwrapOrgKey(t.machine.ctx, answerOf(t), removing, "acme", SHARING_SERVER)).toEqual(theirs);
    // Nobody else gets that standing.
    await expect(
      unwrapOrgKey(t.machine.ctx, answerOf(t), { ...removing, removedSharer: CAROL }, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({ code: "LK_ORG_SHARER_NOT_MAINTAINER" });
  });
});

describe("opening a copy's key: a sharer never seen here", () => {
  it("without a terminal: LK_ORG_MEMBER_UNTRUSTED, nothing pinned; with --trust-new-members it opens and is pinned", async () => {
    const t = await team();
    const vaultKey = random(32);
    const carol = await byCarol(t, vaultKey);
    noTerminal(t);
    await expect(
      unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
      message: expect.stringContaining(`carol@example.com  maintainer  ${carol.pair!.fingerprint}`),
      hint: expect.stringContaining("--trust-new-members"),
    });
    expect((await pinsHere(t))[CAROL]).toBeUndefined();
    expect(
      await unwrapOrgKey(
        t.machine.ctx,
        answerOf(t),
        { ...t.me.sharer, trustNewMembers: true },
        "acme",
        SHARING_SERVER,
      ),
    ).toEqual(vaultKey);
    expect((await pinsHere(t))[CAROL]).toMatchObject({
      email: "carol@example.com",
      fingerprint: carol.pair!.fingerprint,
    });
    // Pinned now: neither terminal nor flag needed.
    expect(await unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER)).toEqual(
      vaultKey,
    );
  });

  it("on a terminal she is shown with her full fingerprint and asked: no refuses, yes opens and pins", async () => {
    const t = await team();
    const vaultKey = random(32);
    const carol = await byCarol(t, vaultKey);
    const asked = t.machine.asked.length;
    t.confirms.push(false);
    await expect(
      unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
      message: expect.stringContaining("nothing was written"),
    });
    expect(t.machine.asked.slice(asked)).toEqual(["Trust this key and open what it wrapped?"]);
    expect(t.machine.ctx.stderr.text()).toContain(
      `carol@example.com  maintainer  ${carol.pair!.fingerprint}`,
    );
    expect((await pinsHere(t))[CAROL]).toBeUndefined();
    t.confirms.push(true);
    expect(await unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER)).toEqual(
      vaultKey,
    );
    expect((await pinsHere(t))[CAROL]!.fingerprint).toBe(carol.pair!.fingerprint);
  });

  it("a new sharer's key is pinned only once the wrap opened with it", async () => {
    const t = await team();
    const carol = await byCarol(t);
    const answer = {
      ...answerOf(t),
      wrappedKey: await wrapKeyForRecipient(random(32), t.session.key.publicKey),
    };
    await expect(
      unwrapOrgKey(t.machine.ctx, answer, { ...t.me.sharer, trustNewMembers: true }, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
    expect((await pinsHere(t))[carol.userId]).toBeUndefined();
  });

  it("an account that no longer exists: only a key pinned before is taken, never asked about", async () => {
    const t = await team();
    const vaultKey = random(32);
    await byCarol(t, vaultKey);
    const gone = (a: ReturnType<typeof answerOf>) => ({ ...a, wrappedBy: { ...a.wrappedBy, email: null } });
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        gone(answerOf(t)),
        { ...t.me.sharer, trustNewMembers: true },
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
      message: expect.stringContaining("no longer exists"),
    });
    await unwrapOrgKey(
      t.machine.ctx,
      answerOf(t),
      { ...t.me.sharer, trustNewMembers: true },
      "acme",
      SHARING_SERVER,
    );
    expect(await unwrapOrgKey(t.machine.ctx, gone(answerOf(t)), t.me.sharer, "acme", SHARING_SERVER)).toEqual(
      vaultKey,
    );
  });
});

describe("opening a copy's key: its key version", () => {
  it("above the copy's version: invalid answer; below the highest this machine has had: LK_VAULT_ROLLBACK", async () => {
    const t = await team();
    const vaultKey = random(32);
    await copyFor(t, vaultKey, 3);
    await expect(
      unwrapOrgKey(t.machine.ctx, { ...answerOf(t), keyVersion: 4 }, t.me.sharer, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({ code: "LK_SERVER_ERROR", message: expect.stringContaining("key version 4") });
    // This machine pulled version 5, whose key was made by the share of version 5.
    await recordSync(t.machine.ctx.paths.home, SHARING_SERVER, ME, VAULT, 5, 0, "acme", 5);
    await copyFor(t, vaultKey, 6);
    const old = { ...answerOf(t), keyVersion: 3 };
    // A genuine key of version 3 replayed with a newer blob: refused before anything is opened or asked.
    old.wrappedKey = await wrapKeyFromSender(
      vaultKey,
      t.session.key.publicKey,
      t.bob.pair!,
      orgVaultKeyContext(VAULT, "acme", 3),
    );
    await expect(unwrapOrgKey(t.machine.ctx, old, t.me.sharer, "acme", SHARING_SERVER)).rejects.toMatchObject(
      {
        code: "LK_VAULT_ROLLBACK",
        details: { offered: 3, highestSeen: 5 },
      },
    );
    // The same key answered as a newer key version does not open: the version is part of what was wrapped.
    await expect(
      unwrapOrgKey(t.machine.ctx, { ...old, keyVersion: 6 }, t.me.sharer, "acme", SHARING_SERVER),
    ).rejects.toMatchObject({ code: "LK_VAULT_DECRYPT_FAILED" });
    expect(await unwrapOrgKey(t.machine.ctx, answerOf(t), t.me.sharer, "acme", SHARING_SERVER)).toEqual(
      vaultKey,
    );
  });

  it("the pin file is left as it was when the key version is refused", async () => {
    const t = await team();
    await byCarol(t);
    const file = join(t.machine.ctx.paths.home, ORG_KEYS_FILE);
    const before = await readFile(file, "utf8");
    await recordSync(t.machine.ctx.paths.home, SHARING_SERVER, ME, VAULT, 9, 0, "acme", 9);
    await expect(
      unwrapOrgKey(
        t.machine.ctx,
        answerOf(t),
        { ...t.me.sharer, trustNewMembers: true },
        "acme",
        SHARING_SERVER,
      ),
    ).rejects.toMatchObject({ code: "LK_VAULT_ROLLBACK" });
    expect(await readFile(file, "utf8")).toBe(before);
  });
});
