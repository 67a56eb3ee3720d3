// `env share`, `env push --org` and `env pull --org` in process, against a fake of the organisation routes holding
// real sealed copies: the organisation's vault key (never the local one) seals what is pushed, each copy keeps its
// own versions and anti-rollback record, and a push needs the key a pull brings.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBase64, toBase64 } from "@latchkey/core";
import {
  connectionCredential,
  memberKeyPair,
  memberVaultKey,
  noTerminal,
  openFakeCopy,
  orgTeam,
  sealedConnection,
  sealedCopy,
  wrapperOf,
  type FakeMember,
  type OrgTeam,
} from "../../test/support/org-server.js";
import type { CapturedStream } from "../../test/support/context.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { runCli } from "../cli.js";
import { readOrgKeys } from "../org/pins.js";
import { loadVaultKey } from "../vault/vault-store.js";
import { openSyncProject } from "./project.js";
import { pullVault } from "./pull.js";
import { pushVault, shareVault } from "./push.js";
import { getSyncEntry, readSyncBase, writeSyncBase } from "./state.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const random = (size: number) => randomFillSync(new Uint8Array(size));

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-copy-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A team whose machine works in a checkout of the project (its latchkey.json names VAULT). */
async function checkout(extra: Record<string, unknown> = {}): Promise<OrgTeam & { dir: string }> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "web" }));
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT, ...extra }));
  return { ...(await orgTeam(root, `m${n}`, "maintainer", { cwd: dir })), dir };
}

/** Rewrites the merge base this machine kept for acme's copy of VAULT (a damaged or mismatched record). */
async function changeBase(
  t: OrgTeam,
  change: (
    base: NonNullable<Awaited<ReturnType<typeof readSyncBase>>>,
  ) => Parameters<typeof writeSyncBase>[3],
): Promise<void> {
  const { home } = t.machine.ctx.paths;
  const local = (await loadVaultKey((await openSyncProject(t.machine.ctx)).deps, VAULT))!;
  const base = (await readSyncBase(home, VAULT, local, "acme"))!;
  await writeSyncBase(home, VAULT, local, change(base), t.machine.ctx.random, "acme");
}

const projectFile = async (dir: string) =>
  JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as Record<string, unknown>;
const puts = (t: OrgTeam) =>
  t.machine.server.seen.filter((r) => r.method === "PUT" && r.path.includes("/orgs/"));

describe("sharing a vault with an organisation", () => {
  it("the first share seals it with a new key wrapped for each member with a sharing key; later ones keep the key", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "API_KEY=v-1", "DB=v-2"], t.machine.ctx)).toBe(0);
    const first = await shareVault(t.machine.ctx, { org: "acme" });
    expect(first).toMatchObject({
      org: "acme",
      version: 1,
      newKey: true,
      sharedWith: ["bob@example.com", "me@example.com"],
      waiting: ["eve@example.com"],
    });
    const copy1 = t.org.copies.get(VAULT)!;
    const key = await memberVaultKey(copy1, t.bob, t.org, VAULT);
    expect(await openFakeCopy(copy1, t.org, VAULT, key)).toEqual({ default: { API_KEY: "v-1", DB: "v-2" } });
    expect(await projectFile(t.dir)).toMatchObject({ vaultSync: { orgVersions: { acme: 1 } } });

    // eve registers a sharing key; sharing again (her new key accepted unasked) gives it to her, same vault key.
    t.eve.pair = await memberKeyPair();
    const second = await shareVault(t.machine.ctx, { org: "acme", trustNewMembers: true });
    expect(second).toMatchObject({ version: 2, newKey: false, waiting: [] });
    const copy2 = t.org.copies.get(VAULT)!;
    expect(await memberVaultKey(copy2, t.eve, t.org, VAULT)).toEqual(key);
    expect(await openFakeCopy(copy2, t.org, VAULT, key)).toEqual({ default: { API_KEY: "v-1", DB: "v-2" } });

    // --new-key seals it with another key: the old one opens nothing of it.
    await shareVault(t.machine.ctx, { org: "acme", newKey: true });
    const copy3 = t.org.copies.get(VAULT)!;
    await expect(openFakeCopy(copy3, t.org, VAULT, key)).rejects.toMatchObject({ code: "LK_DECRYPT_FAILED" });
    // The personal copy was never pushed: its record is untouched.
    expect(await getSyncEntry(t.machine.ctx.paths.home, SHARING_SERVER, t.me.userId, VAULT)).toBeNull();
  });

  it("--new-key re-seals the copy's platform credentials with the new key in the share; a plain share sends none", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    const key = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const web = await sealedConnection(VAULT, "web", key, "fly-token-share-canary");
    t.org.platforms = new Map([[VAULT, [web]]]);
    await shareVault(t.machine.ctx, { org: "acme" });
    expect(puts(t).at(-1)!.body).not.toContain("platformCredentials");
    expect(t.org.platforms.get(VAULT)).toEqual([web]);

    const rotated = await shareVault(t.machine.ctx, { org: "acme", newKey: true });
    expect(rotated).toMatchObject({
      version: 3,
      newKey: true,
      platforms: { resealed: ["web"], dropped: [] },
    });
    const newKey = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const [resealed] = t.org.platforms.get(VAULT)!;
    expect(await connectionCredential(VAULT, resealed!, newKey)).toBe("fly-token-share-canary");
    expect(await connectionCredential(VAULT, resealed!, key)).toBeNull();
    for (const r of t.machine.server.seen) expect(r.body).not.toContain("fly-token-share-canary");
  });

  it("--new-key with a recorded key that does not open the copy: LK_VAULT_KEY_STALE, every connection kept, no share sent", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    const key = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const web = await sealedConnection(VAULT, "web", key, "fly-token-stale-canary-web");
    const api = await sealedConnection(VAULT, "api", key, "fly-token-stale-canary-api");
    t.org.platforms = new Map([[VAULT, [web, api]]]);
    // The organisation key this machine recorded at its share is damaged: the base says version 1, as the server.
    await changeBase(t, (base) => ({ ...base, orgKey: toBase64(random(32)) }));
    const before = puts(t).length;

    await expect(shareVault(t.machine.ctx, { org: "acme", newKey: true })).rejects.toMatchObject({
      code: "LK_VAULT_KEY_STALE",
      message: expect.stringContaining("no connection was dropped"),
      hint: "Run `latchkey env pull --org acme` to get the copy's current key, then run `latchkey env share --org acme --new-key` again.",
    });
    expect(puts(t)).toHaveLength(before);
    expect(t.org.platforms.get(VAULT)).toEqual([web, api]);
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
  });

  it("--new-key from a machine with no record of the copy's key, while the copy has connections: refused, nothing sent", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    const key = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const web = await sealedConnection(VAULT, "web", key, "fly-token-unknown-key-canary");
    t.org.platforms = new Map([[VAULT, [web]]]);
    // The merge base this machine kept is of another version: it holds no key of version 1.
    await changeBase(t, (base) => ({ ...base, version: base.version + 7 }));
    const before = puts(t).length;

    await expect(shareVault(t.machine.ctx, { org: "acme", newKey: true })).rejects.toMatchObject({
      code: "LK_ORG_VAULT_NOT_SYNCED",
      message: expect.stringContaining("cannot re-seal the copy's platform connections (web)"),
      hint: "Run `latchkey env pull --org acme`, then `latchkey env share --org acme --new-key` again.",
    });
    expect(puts(t)).toHaveLength(before);
    expect(t.org.platforms.get(VAULT)).toEqual([web]);
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
  });

  it("--new-key stops, dropping nothing, at a credential that is not an envelope this CLI reads; one that fails to open is dropped", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    const key = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const web = await sealedConnection(VAULT, "web", key, "fly-token-format-canary-web");
    const sealed = await sealedConnection(VAULT, "future", key, "fly-token-format-canary-future");
    // The same envelope with another format version in its header ("LKE" 0x02): a newer Latchkey's, say.
    const bytes = fromBase64(sealed.sealedCredential);
    bytes[3] = 0x02;
    const future = { ...sealed, sealedCredential: toBase64(bytes) };
    const notBase64 = { ...sealed, name: "garbled", sealedCredential: "not base64!" };
    const before = puts(t).length;
    for (const odd of [future, notBase64]) {
      t.org.platforms = new Map([[VAULT, [web, odd]]]);
      const error = await shareVault(t.machine.ctx, { org: "acme", newKey: true }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "LK_FORMAT_INVALID" });
      const { message, hint } = error as { message: string; hint: string };
      expect(message).toContain(`platform connection ${odd.name} (fly)`);
      expect(message).toContain("no connection was dropped");
      expect(message).not.toContain(odd.sealedCredential);
      expect(hint).toContain(`latchkey env platforms disconnect ${odd.name}`);
      expect(puts(t)).toHaveLength(before);
      expect(t.org.platforms.get(VAULT)).toEqual([web, odd]);
    }

    // A credential whose authentication fails (sealed with another key) is unreadable to anyone: dropped.
    const lost = await sealedConnection(VAULT, "lost", random(32), "fly-token-format-canary-lost");
    t.org.platforms = new Map([[VAULT, [web, lost]]]);
    expect(await shareVault(t.machine.ctx, { org: "acme", newKey: true })).toMatchObject({
      version: 2,
      platforms: { resealed: ["web"], dropped: ["lost"] },
    });
    expect(t.org.platforms.get(VAULT)!.map((c) => c.name)).toEqual(["web"]);
  });

  it("sharing again a copy that was unshared seals it with a new key, continuing from its last version", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    await shareVault(t.machine.ctx, { org: "acme" });
    const old = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    // A maintainer unshares it (the server keeps its version, 2).
    t.org.copies.delete(VAULT);
    t.org.unshared.set(VAULT, 2);
    expect(await shareVault(t.machine.ctx, { org: "acme" })).toMatchObject({ version: 3, newKey: true });
    const copy = t.org.copies.get(VAULT)!;
    await expect(openFakeCopy(copy, t.org, VAULT, old)).rejects.toMatchObject({ code: "LK_DECRYPT_FAILED" });
    expect(await openFakeCopy(copy, t.org, VAULT, await memberVaultKey(copy, t.bob, t.org, VAULT))).toEqual({
      default: { A: "1" },
    });

    // A maintainer who never synced it shares it after another unshare: from version 0, then from the kept one.
    t.org.copies.delete(VAULT);
    t.org.unshared.set(VAULT, 3);
    const other = await checkout();
    other.org.unshared.set(VAULT, 3);
    expect(await runCli(["env", "set", "A=2"], other.machine.ctx)).toBe(0);
    expect(await shareVault(other.machine.ctx, { org: "acme" })).toMatchObject({
      baseVersion: 3,
      version: 4,
      newKey: true,
    });
    expect(other.machine.server.seen.filter((r) => r.path.endsWith("/share"))).toHaveLength(2);
  });

  it("needs an organisation: latchkey.json's org when --org is not given", async () => {
    const t = await checkout({ org: "acme" });
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    expect(await shareVault(t.machine.ctx, {})).toMatchObject({ org: "acme", version: 1 });
    const bare = await checkout();
    expect(await runCli(["env", "set", "A=1"], bare.machine.ctx)).toBe(0);
    await expect(shareVault(bare.machine.ctx, {})).rejects.toMatchObject({ code: "LK_USAGE" });
  });
});

describe("env push --org and env pull --org", () => {
  it("a push before a pull has no organisation key to seal with: LK_ORG_VAULT_NOT_SYNCED, nothing sent", async () => {
    const t = await checkout();
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: random(32),
      document: { default: { A: "theirs" } },
      members: [t.me, t.bob],
    });
    expect(await runCli(["env", "set", "A=mine"], t.machine.ctx)).toBe(0);
    await expect(pushVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_VAULT_NOT_SYNCED",
      hint: expect.stringContaining("latchkey env pull --org acme"),
    });
    expect(puts(t)).toEqual([]);
  });

  it("pull brings the organisation's secrets and key; a push is then sealed with that key, not the local one", async () => {
    const t = await checkout();
    const key = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: key,
      document: { default: { A: "theirs" }, prod: { B: "prod" } },
      members: [t.me, t.bob],
    });
    const pulled = await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    expect(pulled).toMatchObject({ org: "acme", version: 2, restored: true });
    expect(await projectFile(t.dir)).toMatchObject({ vaultSync: { orgVersions: { acme: 2 } } });
    expect(
      await getSyncEntry(t.machine.ctx.paths.home, SHARING_SERVER, t.me.userId, VAULT, "acme"),
    ).toMatchObject({
      org: "acme",
      highestVersion: 2,
    });
    expect(await runCli(["env", "set", "C=new"], t.machine.ctx)).toBe(0);
    expect(await pushVault(t.machine.ctx, { org: "acme" })).toMatchObject({
      org: "acme",
      version: 3,
      pushed: true,
    });
    const after = t.org.copies.get(VAULT)!;
    // bob's key, untouched by a push, opens it.
    expect(await openFakeCopy(after, t.org, VAULT, await memberVaultKey(after, t.bob, t.org, VAULT))).toEqual(
      {
        default: { A: "theirs", C: "new" },
        prod: { B: "prod" },
      },
    );
    // Nothing changed since: no request.
    const before = puts(t).length;
    expect(await pushVault(t.machine.ctx, { org: "acme" })).toMatchObject({ pushed: false, version: 3 });
    expect(puts(t)).toHaveLength(before);
  });

  it("refuses an older version of the organisation's copy than it has seen, whatever the personal copy's", async () => {
    const t = await checkout();
    const key = random(32);
    const members = [t.me, t.bob];
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 5,
      vaultKey: key,
      document: { default: { A: "5" } },
      members,
    });
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 4,
      vaultKey: key,
      document: { default: { A: "4" } },
      members,
    });
    await expect(pullVault(t.machine.ctx, { org: "acme", environment: "default" })).rejects.toMatchObject({
      code: "LK_VAULT_ROLLBACK",
    });
    expect(await runCli(["env", "get", "A"], t.machine.ctx)).toBe(0);
  });

  it("a push based on a version the copy has moved past is a conflict pointing at pull --org", async () => {
    const t = await checkout();
    const key = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: key,
      document: { default: { A: "1" } },
      members: [t.me],
    });
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    // A rotation elsewhere: version 2 with another key.
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: random(32),
      document: { default: { A: "1" } },
      members: [t.me],
    });
    expect(await runCli(["env", "set", "A=2"], t.machine.ctx)).toBe(0);
    await expect(pushVault(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_VAULT_CONFLICT",
      details: { org: "acme", baseVersion: 1, currentVersion: 2 },
      hint: expect.stringContaining("latchkey env pull --org acme"),
    });
    // After the pull (the new key with it) the push goes through, sealed with the new key.
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    expect(await pushVault(t.machine.ctx, { org: "acme" })).toMatchObject({ version: 3 });
  });
});

describe("env pull --org: who wrapped the key, and its version", () => {
  /** What this machine holds of the copy: its vault, sync record and latchkey.json. */
  async function holdings(t: OrgTeam & { dir: string }) {
    const home = t.machine.ctx.paths.home;
    return {
      entry: await getSyncEntry(home, SHARING_SERVER, t.me.userId, VAULT, "acme"),
      project: await projectFile(t.dir),
      vault: await readFile(join(t.machine.ctx.paths.vaults, `${VAULT}.enc`)),
    };
  }

  it("a key the server planted under a member's name is refused, whichever key it names; nothing is written", async () => {
    const t = await checkout();
    const genuine = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: genuine,
      document: { default: { DATABASE_URL: "postgres://db.internal/app" } },
      members: [t.me, t.bob],
    });
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    const before = await holdings(t);
    expect(before.entry).toMatchObject({ highestVersion: 1, highestKeyVersion: 1 });

    // The server seals version 2 with a key of its own, wrapped for this machine from its own key pair.
    const server = await memberKeyPair();
    const planted = random(32);
    const attack = await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: planted,
      document: { default: { DATABASE_URL: "postgres://attacker.example/app" } },
      members: [t.me],
      sharer: { ...t.bob, pair: server },
    });
    await expect(pullVault(t.machine.ctx, { org: "acme", environment: "default" })).rejects.toMatchObject({
      code: "LK_ORG_MEMBER_KEY_CHANGED",
    });
    // The same wrap, naming bob's real key: it does not open from it.
    attack.keys.get(t.me.userId)!.wrappedBy = wrapperOf(t.bob);
    await expect(pullVault(t.machine.ctx, { org: "acme", environment: "default" })).rejects.toMatchObject({
      code: "LK_VAULT_DECRYPT_FAILED",
    });
    expect(await holdings(t)).toEqual(before);
    expect(await runCli(["env", "get", "DATABASE_URL"], t.machine.ctx)).toBe(0);
    expect((t.machine.ctx.stdout as CapturedStream).text()).toContain("postgres://db.internal/app");
    expect((t.machine.ctx.stdout as CapturedStream).text()).not.toContain("attacker");
  });

  it("after a rotation seen here, the older key replayed with a newer blob is LK_VAULT_ROLLBACK; nothing is written", async () => {
    const t = await checkout();
    const old = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: old,
      document: { default: { A: "1" } },
      members: [t.me, t.bob],
    });
    const replay = new Map(t.org.copies.get(VAULT)!.keys);
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    // A rotation (a removed member kept `old`), which this machine pulls.
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 2,
      vaultKey: random(32),
      document: { default: { A: "1" } },
      members: [t.me, t.bob],
    });
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    const before = await holdings(t);
    expect(before.entry).toMatchObject({ highestKeyVersion: 2 });
    // The removed member seals version 3 with the old key; the server puts the old genuine keys back.
    const forged = await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 3,
      vaultKey: old,
      document: { default: { A: "the leaver's" } },
      members: [],
    });
    forged.keys = replay;
    await expect(pullVault(t.machine.ctx, { org: "acme", environment: "default" })).rejects.toMatchObject({
      code: "LK_VAULT_ROLLBACK",
      details: { offered: 1, highestSeen: 2 },
    });
    expect(await holdings(t)).toEqual(before);
  });

  it("a share records its version as the key version this machine has had; a push leaves it", async () => {
    const t = await checkout();
    expect(await runCli(["env", "set", "A=1"], t.machine.ctx)).toBe(0);
    await shareVault(t.machine.ctx, { org: "acme" });
    expect(await runCli(["env", "set", "A=2"], t.machine.ctx)).toBe(0);
    await pushVault(t.machine.ctx, { org: "acme" });
    expect(
      await getSyncEntry(t.machine.ctx.paths.home, SHARING_SERVER, t.me.userId, VAULT, "acme"),
    ).toMatchObject({
      highestVersion: 2,
      highestKeyVersion: 1,
    });
    // The share's key is wrapped from this machine's key for key version 1; a push keeps it.
    expect(t.org.copies.get(VAULT)!.keys.get(t.bob.userId)).toMatchObject({
      keyVersion: 1,
      wrappedBy: { userId: t.me.userId, fingerprint: t.machine.server.key!.fingerprint },
    });
  });

  it("a first pull of a copy shared by a member never seen here, without a terminal, needs --trust-new-members", async () => {
    const t = await checkout();
    const carol: FakeMember = {
      userId: "44444444-4444-4444-8444-444444444444",
      email: "carol@example.com",
      role: "maintainer",
      pair: await memberKeyPair(),
    };
    t.org.members.push(carol);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: { default: { A: "1" } },
      members: [t.me, carol],
      sharer: carol,
    });
    noTerminal(t);
    expect(await runCli(["env", "pull", "--org", "acme"], t.machine.ctx)).not.toBe(0);
    expect(t.machine.ctx.stderr.text()).toContain("LK_ORG_MEMBER_UNTRUSTED");
    expect(
      await getSyncEntry(t.machine.ctx.paths.home, SHARING_SERVER, t.me.userId, VAULT, "acme"),
    ).toBeNull();
    expect(await runCli(["env", "pull", "--org", "acme", "--trust-new-members"], t.machine.ctx)).toBe(0);
    expect((await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]!.acme![carol.userId]).toMatchObject({
      fingerprint: carol.pair!.fingerprint,
    });
    // Pinned: the next pull needs no flag.
    expect(await runCli(["env", "pull", "--org", "acme"], t.machine.ctx)).toBe(0);
  });
});
