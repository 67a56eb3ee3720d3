// The organisation commands that manage membership, against a fake of the organisation routes: `org delete`'s
// typed confirmation (nothing is deleted unless the slug is typed again), and what each asks of the server first.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orgTeam, wrapperOf } from "../../test/support/org-server.js";
import type { SharingMachineOptions } from "../../test/support/sharing-key-server.js";
import { describeMembers } from "../commands/org.js";
import { deleteOrg, orgMembers, setOrgMemberRole } from "./manage.js";

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

describe("org delete", () => {
  async function owner(options: SharingMachineOptions = {}) {
    return orgTeam(root, `m${++n}`, "owner", options);
  }

  it("on a terminal: deleted only when the slug is typed again", async () => {
    const wrong = await owner({ typed: ["acm"] });
    await expect(deleteOrg(wrong.machine.ctx, "acme", {})).rejects.toMatchObject({ code: "LK_CANCELLED" });
    expect(wrong.machine.asked).toContain("Type acme to delete it");
    expect(deletes(wrong)).toHaveLength(0);
    expect(wrong.org.deleted).toBe(false);
    const right = await owner({ typed: ["acme"] });
    expect(await deleteOrg(right.machine.ctx, "acme", {})).toMatchObject({ slug: "acme", membersRemoved: 3 });
    expect(right.org.deleted).toBe(true);
    expect(right.machine.ctx.stderr.text()).toContain("removes its 3 members and its 0 shared vault copies");
  });

  it("without a terminal: --confirm must repeat the slug; without it, LK_NOT_INTERACTIVE", async () => {
    const t = await owner();
    const ctx = { ...t.machine.ctx, stdin: { isTTY: false, readAll: () => Promise.reject(new Error("no")) } };
    await expect(deleteOrg(ctx, "acme", {})).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      hint: expect.stringContaining("--confirm acme"),
    });
    const before = t.machine.server.seen.length;
    await expect(deleteOrg(ctx, "acme", { confirm: "acme-2" })).rejects.toMatchObject({ code: "LK_USAGE" });
    // A wrong --confirm is refused before anything is asked of the server.
    expect(t.machine.server.seen).toHaveLength(before);
    expect(deletes(t)).toHaveLength(0);
    expect(await deleteOrg(ctx, "acme", { confirm: "acme" })).toMatchObject({ slug: "acme" });
    expect(t.org.deleted).toBe(true);
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
      `bob@example.com  member  sharing key ${t.bob.pair!.fingerprint} (pinned on this machine)`,
    );
    expect(text).toContain("needs share: web (missing)");
    expect(text).toContain("eve@example.com  member  waiting for a sharing key");
    expect(text).not.toMatch(/eve@example\.com.*needs share/);
  });

  it("set-role finds the member by email whatever its case, and a weak role is told in the command's words", async () => {
    const t = await orgTeam(root, `m${++n}`, "admin");
    const changed = t.machine.server.seen.length;
    // The fake applies no role change; the request is what is checked here.
    t.machine.server.extra = ((inner) => async (seen) => {
      if (seen.method === "PATCH") {
        return seen.path.endsWith(t.bob.userId)
          ? {
              status: 200,
              body: {
                member: {
                  userId: t.bob.userId,
                  email: t.bob.email,
                  role: "maintainer",
                  addedAt: "2030-01-01T00:00:00.000Z",
                },
              },
            }
          : null;
      }
      return inner(seen);
    })(t.machine.server.extra!);
    expect(await setOrgMemberRole(t.machine.ctx, "acme", "Bob@Example.com", "maintainer", {})).toMatchObject({
      role: "maintainer",
    });
    expect(t.machine.server.seen.slice(changed).map((r) => `${r.method} ${r.path}`)).toContain(
      `PATCH /api/v1/orgs/acme/members/${t.bob.userId}`,
    );
    t.machine.server.extra = ((inner) => async (seen) =>
      seen.method === "PATCH"
        ? { status: 403, body: { error: "OrgForbiddenError", code: "LK_ORG_FORBIDDEN", message: "x" } }
        : inner(seen))(t.machine.server.extra);
    await expect(setOrgMemberRole(t.machine.ctx, "acme", t.bob.email, "owner", {})).rejects.toMatchObject({
      code: "LK_ORG_FORBIDDEN",
      message:
        "Your role in organisation acme does not allow you to make bob@example.com owner (it needs owner or stronger).",
    });
  });
});
