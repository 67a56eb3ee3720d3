/**
 * Who may do what in an organisation: the one table of permissions, read by the organisation service for every
 * request (and by any other slice that acts on an organisation). Roles are ordered (ORG_ROLES, strongest first) and
 * each may do everything the weaker ones may, so an action names the least role that may do it.
 */
import { ORG_SHARING_ROLE, orgRoleAtLeast, type OrgRole } from "@latchkey/core";

/** Every action on an organisation, with the least role that may take it. */
export const ORG_PERMISSIONS = {
  "org.read": "member",
  "org.delete": "owner",
  "members.list": "member",
  "members.add": "admin",
  "members.set-role": "admin",
  "members.remove": "admin",
  "vaults.list": "member",
  "vault.pull": "member",
  "vault.push": "member",
  "vault.share": ORG_SHARING_ROLE,
  "vault.unshare": "maintainer",
  "vault.ci.read": "member",
  "vault.ci.manage": "maintainer",
  "vault.platforms.read": "member",
  "vault.platforms.record": "member",
  "vault.platforms.manage": "maintainer",
  "public-keys.read": "maintainer",
  "audit.read": "maintainer",
} as const satisfies Record<string, OrgRole>;

/** An action of {@link ORG_PERMISSIONS}. */
export type OrgAction = keyof typeof ORG_PERMISSIONS;

/** Whether `role` is `least` or stronger (core's ordering, which members' CLIs use too). */
export const atLeast: (role: OrgRole, least: OrgRole) => boolean = orgRoleAtLeast;

/** The least role that may take `action`. */
export function leastRoleFor(action: OrgAction): OrgRole {
  return ORG_PERMISSIONS[action];
}

/** Whether a member with `role` may take `action`. */
export function allows(role: OrgRole, action: OrgAction): boolean {
  return atLeast(role, ORG_PERMISSIONS[action]);
}

/**
 * The least role that may take the membership `action` on a member of role `from` (null: a new member), leaving
 * them with role `to` (null: removed): the action's role, and no weaker than either role involved — nobody hands out
 * or takes away a role stronger than their own, so owners are the owners' to make, change and remove.
 */
export function leastRoleToManage(
  action: "members.add" | "members.set-role" | "members.remove",
  from: OrgRole | null,
  to: OrgRole | null,
): OrgRole {
  let least: OrgRole = ORG_PERMISSIONS[action];
  for (const role of [from, to]) if (role !== null && !atLeast(least, role)) least = role;
  return least;
}
