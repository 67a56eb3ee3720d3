// Trust on first use of members' sharing keys, against the fake of the organisation routes: a server that swaps a
// member's key or adds an account of its own gets nothing shared with it unless the person at the terminal (or the
// explicit flag, for new members only) says so, and `org trust` pins only the fingerprint the server really lists.
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  memberKeyPair,
  memberVaultKey,
  noTerminal,
  openFakeCopy,
  orgTeam,
  type FakeMember,
  type OrgTeam,
} from "../../test/support/org-server.js";
import type { CapturedStream } from "../../test/support/context.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { runCli } from "../cli.js";
import { shareVault } from "../sync/push.js";
import { orgMembers, trustOrgMember } from "./manage.js";
import { ORG_KEYS_FILE, pinOrgKeys, readOrgKeys } from "./pins.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const MALLORY = "55555555-5555-4555-8555-555555555555";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-pins-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A maintainer's checkout of the project, the vault holding one secret; bob's key is pinned, eve has none. */
async function checkout(): Promise<OrgTeam & { dir: string; confirms: boolean[] }> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT }));
  const confirms: boolean[] = [];
  const t = await orgTeam(root, `m${n}`, "maintainer", { cwd: dir, confirms });
  expect(await runCli(["env", "set", "API_KEY=v-1"], t.machine.ctx)).toBe(0);
  return { ...t, dir, confirms };
}

const out = (t: OrgTeam) => (t.machine.ctx.stdout as CapturedStream).text();
const shares = (t: OrgTeam) => t.machine.server.seen.filter((r) => r.path.endsWith("/share"));

/** An account the server adds to the organisation, with a key pair of its own. */
async function mallory(t: OrgTeam): Promise<FakeMember> {
  const m: FakeMember = {
    userId: MALLORY,
    email: "mallory@example.com",
    role: "member",
    pair: await memberKeyPair(),
  };
  t.org.members.push(m);
  return m;
}

describe("a member's pinned key", () => {
  it("a server that swaps a member's key gets nothing: LK_ORG_MEMBER_KEY_CHANGED, no share sent", async () => {
    const t = await checkout();
    const asked = t.machine.asked.length;
    const swapped = await memberKeyPair();
    // The server now lists its own key for bob, whose key this machine pinned.
    t.bob.pair = swapped;
    await expect(shareVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
      message: expect.stringContaining(swapped.fingerprint),
      hint: expect.stringContaining("latchkey org trust acme bob@example.com FINGERPRINT"),
    });
    // --trust-new-members is for new members only: a changed key is refused all the same.
    await expect(shareVault(t.machine.ctx, { org: "acme", trustNewMembers: true })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
    });
    expect(shares(t)).toHaveLength(0);
    expect(t.org.copies.has(VAULT)).toBe(false);
    expect(t.machine.asked).toHaveLength(asked);
  });

  it("a new account under a pinned member's email counts as a changed key, not a new member", async () => {
    const t = await checkout();
    // The server drops bob and lists an account of its own under his email.
    t.org.members = t.org.members.filter((m) => m !== t.bob);
    const fake = await mallory(t);
    fake.email = "Bob@example.com";
    await expect(shareVault(t.machine.ctx, { org: "acme", trustNewMembers: true })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
    });
    expect(shares(t)).toHaveLength(0);
  });

  it("a member's own rotation: refused until `org trust` pins the fingerprint they read out; then the share works", async () => {
    const t = await checkout();
    const rotated = await memberKeyPair();
    t.bob.pair = rotated;
    await expect(shareVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
    });
    expect(
      await runCli(
        ["org", "trust", "acme", "bob@example.com", rotated.fingerprint.toUpperCase()],
        t.machine.ctx,
      ),
    ).toBe(0);
    expect(await shareVault(t.machine.ctx, { org: "acme" })).toMatchObject({
      version: 1,
      sharedWith: ["bob@example.com", "me@example.com"],
    });
    const copy = t.org.copies.get(VAULT)!;
    expect(await openFakeCopy(copy, t.org, VAULT, await memberVaultKey(copy, t.bob, t.org, VAULT))).toEqual({
      default: { API_KEY: "v-1" },
    });
  });

  it("org trust with a fingerprint that is not the server's pins nothing; a short one is LK_USAGE", async () => {
    const t = await checkout();
    const theirs = await memberKeyPair();
    const servers = await memberKeyPair();
    t.bob.pair = servers;
    // bob read out his real fingerprint; the server lists another key for him.
    await expect(
      trustOrgMember(t.machine.ctx, "acme", "bob@example.com", theirs.fingerprint, {}),
    ).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
      message: expect.stringContaining("nothing was pinned"),
    });
    await expect(
      trustOrgMember(t.machine.ctx, "acme", "bob@example.com", servers.fingerprint.slice(0, 16), {}),
    ).rejects.toMatchObject({ code: "LK_USAGE" });
    // eve has no key at all.
    await expect(
      trustOrgMember(t.machine.ctx, "acme", "eve@example.com", theirs.fingerprint, {}),
    ).rejects.toMatchObject({ code: "LK_ORG_MEMBER_KEY_CHANGED" });
    const pins = (await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]!.acme!;
    expect(Object.keys(pins)).toEqual([t.bob.userId]);
    await expect(shareVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
    });
    expect(shares(t)).toHaveLength(0);
  });
});

describe("a member never seen on this machine", () => {
  it("without a terminal and without --trust-new-members: LK_ORG_MEMBER_UNTRUSTED, nothing sent; with it, shared and pinned", async () => {
    const t = await checkout();
    const m = await mallory(t);
    noTerminal(t);
    await expect(shareVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
      message: expect.stringContaining(`mallory@example.com  member  ${m.pair!.fingerprint}`),
      hint: expect.stringContaining("--trust-new-members"),
    });
    expect(shares(t)).toHaveLength(0);
    // The flag on the command line.
    expect(await runCli(["env", "share", "--org", "acme", "--trust-new-members"], t.machine.ctx)).toBe(0);
    expect(t.org.copies.get(VAULT)!.keys.get(MALLORY)!.fingerprint).toBe(m.pair!.fingerprint);
    expect((await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]!.acme![MALLORY]).toMatchObject({
      email: "mallory@example.com",
      fingerprint: m.pair!.fingerprint,
    });
    // Pinned now: the next share needs neither terminal nor flag.
    expect(await shareVault(t.machine.ctx, { org: "acme" })).toMatchObject({ version: 2 });
  });

  it("on a terminal the new member is shown and asked about: no sends nothing, yes pins and shares", async () => {
    const t = await checkout();
    const m = await mallory(t);
    const asked = t.machine.asked.length;
    t.confirms.push(false);
    await expect(shareVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_UNTRUSTED",
    });
    expect(t.machine.asked.slice(asked)).toEqual(["Trust this key and share with them?"]);
    expect(t.machine.ctx.stderr.text()).toContain(`mallory@example.com  member  ${m.pair!.fingerprint}`);
    expect(shares(t)).toHaveLength(0);
    expect((await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]!.acme![MALLORY]).toBeUndefined();

    t.confirms.push(true);
    expect(await shareVault(t.machine.ctx, { org: "acme" })).toMatchObject({
      sharedWith: ["bob@example.com", "mallory@example.com", "me@example.com"],
    });
    expect(shares(t)).toHaveLength(1);
    expect((await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]!.acme![MALLORY]!.fingerprint).toBe(
      m.pair!.fingerprint,
    );
    // Asked once: the next share passes silently.
    await shareVault(t.machine.ctx, { org: "acme" });
    expect(t.machine.asked).toHaveLength(asked + 2);
  });
});

describe("org members and the pin file", () => {
  it("org members shows this machine's fingerprint and each key as yours, pinned, new or changed", async () => {
    const t = await checkout();
    await mallory(t);
    t.eve.pair = await memberKeyPair();
    await pinOrgKeys(t.machine.ctx, SHARING_SERVER, "acme", [
      { userId: t.eve.userId, email: t.eve.email, fingerprint: (await memberKeyPair()).fingerprint },
    ]);
    const view = await orgMembers(t.machine.ctx, "acme", {});
    expect(view.thisMachineFingerprint).toBe(t.machine.server.key!.fingerprint);
    expect(Object.fromEntries(view.members.map((m) => [m.email, m.pin]))).toEqual({
      "me@example.com": "yours",
      "bob@example.com": "pinned",
      "eve@example.com": "changed",
      "mallory@example.com": "new",
    });
    expect(await runCli(["org", "members", "acme"], t.machine.ctx)).toBe(0);
    expect(out(t)).toContain(
      `mallory@example.com  member  sharing key ${t.org.members[3]!.pair!.fingerprint} (new`,
    );
    expect(out(t)).toContain("eve@example.com  member  sharing key");
    expect(out(t)).toMatch(/eve@example\.com .*\(CHANGED/);
  });

  it("is private (0600) and never written through a symbolic link", async () => {
    const t = await checkout();
    const file = join(t.machine.ctx.paths.home, ORG_KEYS_FILE);
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    const elsewhere = join(root, `elsewhere-${n}.json`);
    await writeFile(elsewhere, "{}");
    await rm(file);
    await symlink(elsewhere, file);
    await expect(
      pinOrgKeys(t.machine.ctx, SHARING_SERVER, "acme", [
        { userId: t.bob.userId, email: t.bob.email, fingerprint: t.bob.pair!.fingerprint },
      ]),
    ).rejects.toMatchObject({ code: "LK_FILE_SYMLINK" });
    expect(await readFile(elsewhere, "utf8")).toBe("{}");
  });
});
