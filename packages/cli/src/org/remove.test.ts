// `org remove` against a fake of the organisation routes: the step-up, the rotation of every vault the leaver held
// a key for, and the offboarding report (names, never values, and the last pull).
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memberVaultKey, openFakeCopy, orgTeam, sealedCopy } from "../../test/support/org-server.js";
import type { CapturedStream } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { readOrgKeys } from "./pins.js";
import { removeOrgMember } from "./remove.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const OTHER_VAULT = "1f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const DOCUMENT = { default: { API_KEY: "value-7a1c", DB: "value-9e02" }, prod: { TOKEN: "value-33fd" } };
const random = (size: number) => randomFillSync(new Uint8Array(size));

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-remove-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("org remove", () => {
  it("removes with a step-up proof, rotates every vault they held a key for and names what they could read", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    const carol = { ...t.bob, userId: "44444444-4444-4444-8444-444444444444", email: "carol@example.com" };
    t.org.members.push(carol);
    const oldKey = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 3,
      vaultKey: oldKey,
      document: DOCUMENT,
      name: "web",
      members: [t.me, t.bob, carol],
    });
    t.org.pulls.set(`${t.bob.userId}:${VAULT}`, { version: 2, at: "2030-01-01T00:00:05.000Z" });
    const report = await removeOrgMember(t.machine.ctx, "acme", "BOB@example.com", {
      rotate: true,
      trustNewMembers: true,
    });
    expect(report).toMatchObject({
      org: "acme",
      removed: { email: "bob@example.com", role: "maintainer" },
      rotate: true,
      vaults: [
        {
          vaultId: VAULT,
          name: "web",
          version: 3,
          lastPulledAt: "2030-01-01T00:00:05.000Z",
          lastPulledVersion: 2,
          environments: { default: ["API_KEY", "DB"], prod: ["TOKEN"] },
          rotatedVersion: 4,
        },
      ],
    });
    expect(JSON.stringify(report)).not.toMatch(/value-/);
    const proofs = [...t.machine.server.proofs.values()].filter((p) => p.scope === "org:member:remove");
    expect(proofs).toEqual([{ scope: "org:member:remove", spent: true }]);
    const after = t.org.copies.get(VAULT)!;
    expect(after.keys.has(t.bob.userId)).toBe(false);
    // The maintainer who wrapped the old key was opened for the rotation, then forgotten here.
    expect((await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]?.acme?.[t.bob.userId]).toBeUndefined();
    // What bob kept opens nothing of the new version; carol opens it with her new key.
    await expect(openFakeCopy(after, t.org, VAULT, oldKey)).rejects.toMatchObject({
      code: "LK_DECRYPT_FAILED",
    });
    expect(await openFakeCopy(after, t.org, VAULT, await memberVaultKey(after, carol, t.org, VAULT))).toEqual(
      DOCUMENT,
    );
  });

  it("reports the CI policies the server deleted with them and those left on the vaults they held", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    for (const vaultId of [VAULT, OTHER_VAULT]) {
      await sealedCopy(t.machine.server, t.org, vaultId, {
        version: 1,
        vaultKey: random(32),
        document: DOCUMENT,
        name: vaultId === VAULT ? "web" : "api",
        members: [t.me, t.bob],
      });
    }
    t.org.ci = [
      {
        vaultId: VAULT,
        provider: "github",
        repository: "bob/exfil",
        enabledBy: t.bob.userId,
        enabledByEmail: t.bob.email,
      },
      {
        vaultId: OTHER_VAULT,
        provider: "github",
        repository: "acme/api",
        enabledBy: t.me.userId,
        enabledByEmail: t.me.email,
      },
    ];
    const code = await runCli(["org", "remove", "acme", t.bob.email, "--trust-new-members"], t.machine.ctx);
    expect(code, t.machine.ctx.stderr.text()).toBe(0);
    const stdout = (t.machine.ctx.stdout as CapturedStream).text();
    expect(stdout).toContain(
      `CI pulls they enabled were disabled with them: bob/exfil (github) no longer pulls vault ${VAULT}.`,
    );
    expect(stdout).toContain(
      "CI: acme/api (github, enabled by me@example.com) still pulls it, the new key included; if it should not, `latchkey env ci disable --org acme` in its project.",
    );
    expect(stdout.match(/ CI: /g)).toHaveLength(1);
  });

  it("a plain member removed: the key they wrapped is not opened for the rotation, and their pin is gone", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    // bob, a member whose key this machine pinned as a recipient, wrapped the copy's key himself (with a lying
    // server's help): his removal must not get his key re-shared to everyone.
    t.bob.role = "member";
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
      sharer: t.bob,
    });
    const pinned = async () =>
      (await readOrgKeys(t.machine.ctx)).servers[SHARING_SERVER]?.acme?.[t.bob.userId];
    expect(await pinned()).toBeDefined();
    const report = await removeOrgMember(t.machine.ctx, "acme", t.bob.email, { rotate: true });
    expect(report.vaults[0]).toMatchObject({
      rotatedVersion: null,
      error: { code: "LK_ORG_SHARER_NOT_MAINTAINER" },
    });
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
    expect(await pinned()).toBeUndefined();
  });

  it("--no-rotate leaves the key but still names the secrets", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    const key = random(32);
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: key,
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    const report = await removeOrgMember(t.machine.ctx, "acme", t.bob.email, { rotate: false });
    expect(report.vaults[0]).toMatchObject({
      rotatedVersion: null,
      lastPulledAt: null,
      environments: { prod: ["TOKEN"] },
    });
    expect(t.org.copies.get(VAULT)!.version).toBe(1);
    expect(t.machine.server.seen.some((r) => r.path.endsWith("/share"))).toBe(false);
  });

  it("a vault this machine cannot open is reported, the others rotated; the command then fails with LK_ORG_ROTATION_INCOMPLETE", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin", { cwd: root });
    await sealedCopy(t.machine.server, t.org, VAULT, {
      version: 1,
      vaultKey: random(32),
      document: DOCUMENT,
      members: [t.me, t.bob],
    });
    await sealedCopy(t.machine.server, t.org, OTHER_VAULT, {
      version: 5,
      vaultKey: random(32),
      document: DOCUMENT,
      name: "api",
      members: [t.bob],
    });
    expect(await runCli(["org", "remove", "acme", t.bob.email, "--json"], t.machine.ctx)).toBe(1);
    const report = JSON.parse((t.machine.ctx.stdout as CapturedStream).text()) as {
      vaults: { vaultId: string; rotatedVersion: number | null; error?: { code: string } }[];
    };
    expect(report.vaults.find((v) => v.vaultId === VAULT)).toMatchObject({ rotatedVersion: 2 });
    expect(report.vaults.find((v) => v.vaultId === OTHER_VAULT)).toMatchObject({
      rotatedVersion: null,
      error: { code: "LK_ORG_VAULT_KEY_MISSING" },
    });
    const stderr = t.machine.ctx.stderr.text();
    expect(stderr).toContain("LK_ORG_ROTATION_INCOMPLETE");
    expect(stderr).toContain("latchkey org rotate-keys acme");
  });

  it("removing yourself needs --no-rotate (nobody could rotate after), before any password is asked", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    t.org.members.push({ ...t.bob, userId: "55555555-5555-4555-8555-555555555555", role: "owner" });
    await expect(
      removeOrgMember(t.machine.ctx, "acme", "me@example.com", { rotate: true }),
    ).rejects.toMatchObject({
      code: "LK_USAGE",
    });
    expect(t.machine.asked.filter((q) => q === "Password")).toHaveLength(1); // the key's registration only
    expect(t.org.members.some((m) => m.email === "me@example.com")).toBe(true);
  });

  it("without a terminal the step-up cannot be typed: LK_NOT_INTERACTIVE and the member stays", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    (t.machine.ctx as { stdin: typeof t.machine.ctx.stdin }).stdin = {
      isTTY: false,
      readAll: () => Promise.reject(new Error("no")),
    };
    await expect(removeOrgMember(t.machine.ctx, "acme", t.bob.email, { rotate: true })).rejects.toMatchObject(
      {
        code: "LK_NOT_INTERACTIVE",
      },
    );
    expect(t.org.members.some((m) => m.userId === t.bob.userId)).toBe(true);
  });

  it("an email that is not a member is LK_MEMBER_NOT_FOUND naming it", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    await expect(
      removeOrgMember(t.machine.ctx, "acme", "nobody@example.com", { rotate: true }),
    ).rejects.toMatchObject({
      code: "LK_MEMBER_NOT_FOUND",
      message: "nobody@example.com is not a member of organisation acme.",
    });
  });
});
