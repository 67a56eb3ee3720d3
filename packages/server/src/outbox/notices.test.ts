import { describe, expect, it } from "vitest";
import { impactNotices, securityNotice, type NoticeEvent } from "./notices.js";

const rotated: NoticeEvent = {
  type: "sharing-key-rotated",
  account: "ann@example.test",
  at: "2026-12-07T10:00:00.000Z",
  orgs: ["acme", "beta"],
};
const removed: NoticeEvent = {
  type: "member-removed",
  account: "ann@example.test",
  by: "olga@example.test",
  org: "acme",
  at: "2026-12-07T10:00:00.000Z",
  vaults: ["0f1e2d3c-0000-4000-8000-000000000001"],
};

const added: NoticeEvent = {
  type: "member-added",
  account: "ann@example.test",
  by: "olga@example.test",
  org: "acme",
  role: "admin",
  at: "2026-12-07T10:00:00.000Z",
};

describe("notice texts", () => {
  it("tells the account its sharing key was replaced, naming the orgs that must share again", () => {
    const notice = securityNotice(rotated);
    expect(notice).toMatchObject({ recipient: "ann@example.test", kind: "security" });
    expect(notice.subject).toMatch(/sharing key of your account was replaced/);
    expect(notice.body).toContain("acme, beta");
    expect(notice.body).toContain("2026-12-07T10:00:00.000Z");
    expect(notice.body).toMatch(/If you did not do this/);
  });

  it("tells a removed account who removed it from which org", () => {
    const notice = securityNotice(removed);
    expect(notice.recipient).toBe("ann@example.test");
    expect(notice.subject).toBe("Latchkey: you were removed from the organisation acme");
    expect(notice.body).toContain("olga@example.test removed the Latchkey account ann@example.test");
  });

  it("sends one impact notice per owner or admin and org, none to the account itself, none twice", () => {
    const notices = impactNotices(rotated, [
      { org: "acme", emails: ["olga@example.test", "ann@example.test", "olga@example.test"] },
      { org: "beta", emails: ["olga@example.test", "pete@example.test"] },
    ]);
    expect(notices.map((n) => [n.recipient, n.kind, n.subject.match(/organisation (\w+)/)?.[1]])).toEqual([
      ["olga@example.test", "impact", "acme"],
      ["olga@example.test", "impact", "beta"],
      ["pete@example.test", "impact", "beta"],
    ]);
    expect(notices[0]!.body).toContain("latchkey env share --org acme");
  });

  it("names the vaults a removed member could open in the impact notice", () => {
    const [notice] = impactNotices(removed, [{ org: "acme", emails: ["olga@example.test"] }]);
    expect(notice?.subject).toBe("Latchkey: ann@example.test was removed from the organisation acme");
    expect(notice?.body).toContain("0f1e2d3c-0000-4000-8000-000000000001");
  });

  it("tells an added account who added it to which org, with what role, and what to do if unexpected", () => {
    const notice = securityNotice(added);
    expect(notice).toMatchObject({ recipient: "ann@example.test", kind: "security" });
    expect(notice.subject).toBe("Latchkey: you were added to the organisation acme");
    expect(notice.body).toContain(
      "olga@example.test added the Latchkey account ann@example.test to the organisation acme as admin at 2026-12-07T10:00:00.000Z.",
    );
    expect(notice.body).toMatch(/If you do not expect this, tell an owner/);
  });

  it("tells the owners of an addition, but neither the added account nor the one who added it", () => {
    const notices = impactNotices(added, [
      { org: "acme", emails: ["olga@example.test", "ann@example.test", "pete@example.test"] },
    ]);
    expect(notices.map((n) => [n.recipient, n.kind])).toEqual([["pete@example.test", "impact"]]);
    expect(notices[0]!.subject).toBe("Latchkey: ann@example.test was added to the organisation acme");
    expect(notices[0]!.body).toContain("latchkey org remove acme ann@example.test");
  });

  it("keeps every field on one line, so nothing can start a mail header", () => {
    const notice = securityNotice({ ...removed, org: "acme\r\nBcc: eve@example.test" });
    expect(notice.subject).not.toMatch(/[\r\n]/);
    const [impact] = impactNotices({ ...rotated, account: "a@x\nBcc: eve" }, [
      { org: "o\r\nX: y", emails: ["b@x"] },
    ]);
    expect(impact?.subject).not.toMatch(/[\r\n]/);
  });
});
