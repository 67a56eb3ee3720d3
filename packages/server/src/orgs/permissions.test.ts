import { describe, expect, it } from "vitest";
import { allows, atLeast, leastRoleToManage } from "./permissions.js";

describe("the organisation permission table", () => {
  it("orders the roles: each may do what the weaker ones may", () => {
    expect(atLeast("owner", "member")).toBe(true);
    expect(atLeast("admin", "admin")).toBe(true);
    expect(atLeast("maintainer", "admin")).toBe(false);
    expect(allows("member", "vault.pull")).toBe(true);
    expect(allows("member", "vault.share")).toBe(false);
    expect(allows("maintainer", "audit.read")).toBe(true);
    expect(allows("admin", "org.delete")).toBe(false);
  });

  it("keeps owners the owners' to make, change and remove; the rest is the admins'", () => {
    expect(leastRoleToManage("members.add", null, "member")).toBe("admin");
    expect(leastRoleToManage("members.add", null, "admin")).toBe("admin");
    expect(leastRoleToManage("members.add", null, "owner")).toBe("owner");
    expect(leastRoleToManage("members.set-role", "member", "admin")).toBe("admin");
    expect(leastRoleToManage("members.set-role", "owner", "admin")).toBe("owner");
    expect(leastRoleToManage("members.set-role", "admin", "owner")).toBe("owner");
    expect(leastRoleToManage("members.remove", "maintainer", null)).toBe("admin");
    expect(leastRoleToManage("members.remove", "owner", null)).toBe("owner");
  });
});
