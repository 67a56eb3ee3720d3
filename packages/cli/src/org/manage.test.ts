// The organisation commands that manage membership, against a fake of the organisation routes: `org delete`'s
// typed confirmation (nothing is deleted unless the slug is typed again), the step-up that add, set-role and
// delete each need on a terminal (the fake, like the server, takes a proof of the change's own scope once), and
// what each asks of the server first.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noTerminal, orgTeam, wrapperOf, type OrgTeam } from "../../test/support/org-server.js";
import { SHARING_PASSWORD, type SharingMachineOptions } from "../../test/support/sharing-key-server.js";
import { describeMembers } from "../commands/org.js";
import { addOrgMember, deleteOrg, orgMembers, setOrgMemberRole } from "./manage.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-org-manage-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const deletes = (t: { machine: { server: { seen: { method: string; path: string }[] } } }) =>
  t.machine.server.seen.filter((r) => r.method === "DELETE" && r.path === "/api/v1/orgs/acme");

/** The step-up requests `t` made since `from` (the scopes it minted proofs for). */
const stepUps = (t: OrgTeam, from = 0) =>
  t.machine.server.seen
    .slice(from)
    .filter((r) => r.method === "POST" && r.path === "/api/v1/step-up")
    .map((r) => (JSON.parse(r.body) as { scope: string }).scope);

describe("org delete", () => {
  async function owner(options: SharingMachineOptions = {}) {
    return orgTeam(root, `m${++n}`, "owner", options);
  }

  it("on a terminal: deleted only when the slug is typed again, then the password", async () => {
    const wrong = await owner({ typed: ["acm"] });
    const from = wrong.machine.server.seen.length;
    await expect(deleteOrg(wrong.machine.ctx, "acme", {})).rejects.toMatchObject({ code: "LK_CANCELLED" });
    expect(wrong.machine.asked).toContain("Type acme to delete it");
    expect(stepUps(wrong, from)).toEqual([]);
    expect(deletes(wrong)).toHaveLength(0);
    expect(wrong.org.deleted).toBe(false);
    const right = await owner({ typed: ["acme"] });
    const asked = right.machine.asked.length;
    expect(await deleteOrg(right.machine.ctx, "acme", {})).toMatchObject({ slug: "acme", membersRemoved: 3 });
    expect(right.org.deleted).toBe(true);
    expect(right.machine.asked.slice(asked)).toEqual(["Type acme to delete it", "Password"]);
    expect(stepUps(right)).toContain("org:delete");
    expect(right.machine.ctx.stderr.text()).toContain("removes its 3 members and its 0 shared vault copies");
  });

  it("a wrong password deletes nothing", async () => {
    // The first password registers the sharing key (orgTeam); the three at the deletion's step-up are wrong.
    const t = await owner({ typed: ["acme"], passwords: [SHARING_PASSWORD, "wrong", "wrong", "wrong"] });
    await expect(deleteOrg(t.machine.ctx, "acme", {})).rejects.toMatchObject({ code: "LK_STEP_UP_FAILED" });
    expect(deletes(t)).toHaveLength(0);
    expect(t.org.deleted).toBe(false);
  });

  it("--confirm takes the place of the typed slug, never of the password: without a terminal nothing is deleted", async () => {
    const onTerminal = await owner();
    expect(await deleteOrg(onTerminal.machine.ctx, "acme", { confirm: "acme" })).toMatchObject({
      slug: "acme",
    });
    expect(onTerminal.machine.asked).not.toContain("Type acme to delete it");
    expect(onTerminal.machine.asked).toContain("Password");

    const t = await owner();
    noTerminal(t);
    await expect(deleteOrg(t.machine.ctx, "acme", {})).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      hint: expect.stringContaining("--confirm only takes the place of the typed slug"),
    });
    const before = t.machine.server.seen.length;
    await expect(deleteOrg(t.machine.ctx, "acme", { confirm: "acme-2" })).rejects.toMatchObject({
      code: "LK_USAGE",
    });
    // A wrong --confirm is refused before anything is asked of the server.
    expect(t.machine.server.seen).toHaveLength(before);
    await expect(deleteOrg(t.machine.ctx, "acme", { confirm: "acme" })).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      message: expect.stringContaining("To delete an organisation"),
    });
    expect(deletes(t)).toHaveLength(0);
    expect(t.org.deleted).toBe(false);
  });

  it("only an owner: another role is told so before anything is typed or deleted", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin", { typed: ["acme"] });
    await expect(deleteOrg(t.machine.ctx, "acme", {})).rejects.toMatchObject({
      code: "LK_ORG_FORBIDDEN",
      message: "Only an owner of acme may delete it; your role is admin.",
    });
    expect(t.machine.asked).not.toContain("Type acme to delete it");
    expect(deletes(t)).toHaveLength(0);
  });

  it("a slug that cannot be one is LK_USAGE before any request", async () => {
    const t = await owner();
    const before = t.machine.server.seen.length;
    await expect(deleteOrg(t.machine.ctx, "Acme Corp", { confirm: "Acme Corp" })).rejects.toMatchObject({
      code: "LK_USAGE",
    });
    expect(t.machine.server.seen).toHaveLength(before);
  });
});

describe("org members and set-role", () => {
  it("shows each member's role, sharing key, and the vaults that need a share for them", async () => {
    const t = await orgTeam(root, `m${++n}`, "member");
    t.org.copies.set("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", {
      version: 2,
      encryptedBlob: "",
      name: "web",
      keys: new Map([
        [
          t.me.userId,
          {
            wrappedKey: "x",
            fingerprint: t.machine.server.key!.fingerprint,
            keyVersion: 2,
            wrappedBy: wrapperOf(t.bob),
          },
        ],
      ]),
    });
    const text = describeMembers(await orgMembers(t.machine.ctx, "acme", {}));
    expect(text).toContain(`This machine's sharing key: ${t.machine.server.key!.fingerprint}`);
    expect(text).toContain(
      `me@example.com  member  sharing key ${t.machine.server.key!.fingerprint} (yours)`,
    );
    expect(text).toContain(
      `bob@example.com  maintainer  sharing key ${t.bob.pair!.fingerprint} (pinned on this machine)`,
    );
    expect(text).toContain("needs share: web (missing)");
    expect(text).toContain("eve@example.com  member  waiting for a sharing key");
    expect(text).not.toMatch(/eve@example\.com.*needs share/);
  });

  it("set-role finds the member by email whatever its case, and a weak role is told in the command's words", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    const changed = t.machine.server.seen.length;
    expect(await setOrgMemberRole(t.machine.ctx, "acme", "Bob@Example.com", "maintainer", {})).toMatchObject({
      role: "maintainer",
    });
    expect(t.bob.role).toBe("maintainer");
    const sent = t.machine.server.seen.slice(changed);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toContain(
      `PATCH /api/v1/orgs/acme/members/${t.bob.userId}`,
    );
    expect(stepUps(t, changed)).toEqual(["org:member:role"]);
    await expect(setOrgMemberRole(t.machine.ctx, "acme", t.bob.email, "owner", {})).rejects.toMatchObject({
      code: "LK_ORG_FORBIDDEN",
      message:
        "Your role in organisation acme does not allow you to make bob@example.com owner (it needs owner or stronger).",
    });
  });

  it("set-role without a terminal is LK_NOT_INTERACTIVE, and changes nothing", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    noTerminal(t);
    await expect(setOrgMemberRole(t.machine.ctx, "acme", t.bob.email, "admin", {})).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      hint: expect.stringContaining("no --yes"),
    });
    expect(t.machine.server.seen.some((r) => r.method === "PATCH")).toBe(false);
    expect(t.bob.role).toBe("maintainer");
  });
});

describe("org add", () => {
  async function admin(options: SharingMachineOptions = {}) {
    const t = await orgTeam(root, `m${++n}`, "admin", options);
    t.org.accounts = [
      {
        userId: "44444444-4444-4444-8444-444444444444",
        email: "dan@example.com",
        role: "member",
        pair: null,
      },
    ];
    return t;
  }
  const posts = (t: OrgTeam) =>
    t.machine.server.seen.filter((r) => r.method === "POST" && r.path === "/api/v1/orgs/acme/members");

  it("asks for the password, then adds the account with a proof for adding", async () => {
    const t = await admin();
    const from = t.machine.server.seen.length;
    expect(await addOrgMember(t.machine.ctx, "acme", "dan@example.com", "maintainer", {})).toMatchObject({
      email: "dan@example.com",
      role: "maintainer",
    });
    expect(t.machine.asked).toContain("Password");
    expect(stepUps(t, from)).toEqual(["org:member:add"]);
    expect(t.org.members.map((m) => m.email)).toContain("dan@example.com");
  });

  it("without a terminal is LK_NOT_INTERACTIVE before anything is sent", async () => {
    const t = await admin();
    noTerminal(t);
    await expect(addOrgMember(t.machine.ctx, "acme", "dan@example.com", "member", {})).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      message: expect.stringContaining("To add a member to an organisation"),
    });
    expect(posts(t)).toHaveLength(0);
  });

  it("an unknown email is LK_ACCOUNT_NOT_FOUND, and the server's limit LK_RATE_LIMITED in the command's words", async () => {
    const t = await admin();
    await expect(
      addOrgMember(t.machine.ctx, "acme", "nobody@example.com", "member", {}),
    ).rejects.toMatchObject({
      code: "LK_ACCOUNT_NOT_FOUND",
    });
    t.machine.server.extra = ((inner) => async (seen) =>
      seen.method === "POST" && seen.path === "/api/v1/orgs/acme/members"
        ? { status: 429, body: { error: "RateLimitedError", code: "LK_RATE_LIMITED", message: "x" } }
        : inner(seen))(t.machine.server.extra!);
    await expect(addOrgMember(t.machine.ctx, "acme", "dan@example.com", "member", {})).rejects.toMatchObject({
      code: "LK_RATE_LIMITED",
      message: expect.stringContaining(
        "as many member additions (or attempts) in the past hour as it allows",
      ),
      hint: expect.stringMatching(/then try again/),
    });
    expect(t.org.members.map((m) => m.email)).not.toContain("dan@example.com");
  });
});
