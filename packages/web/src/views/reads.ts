/**
 * The server reads the views make, each through the page's one API client (api.ts: signed, schema-checked answers)
 * with the route's schema from core. Paths are built here, so each view names what it reads, not how it is spelt.
 */
import {
  ACCOUNT_AUDIT_PATH,
  ORGS_PATH,
  PAIRINGS_PATH,
  VAULTS_PATH,
  auditPageResponseSchema,
  orgListResponseSchema,
  orgMembersResponseSchema,
  orgPullResponseSchema,
  orgVaultsResponseSchema,
  pairingListResponseSchema,
  pairingRevokeAllResponseSchema,
  pairingViewSchema,
  pullResponseSchema,
  vaultListResponseSchema,
  type AuditPageResponse,
  type OrgMembersResponse,
  type OrgPullResponse,
  type OrgSummary,
  type OrgVaultSummary,
  type PairingSummary,
  type PullResponse,
  type VaultSummary,
} from "@latchkey/core";
import { api, type ApiClient } from "../api.js";

const segment = (value: string): string => encodeURIComponent(value);

/** The caller's personal vaults. */
export async function listVaults(client: ApiClient = api()): Promise<VaultSummary[]> {
  return (await client.call({ method: "GET", path: VAULTS_PATH, answer: vaultListResponseSchema })).vaults;
}

/** The caller's organisations. */
export async function listOrgs(client: ApiClient = api()): Promise<OrgSummary[]> {
  return (await client.call({ method: "GET", path: ORGS_PATH, answer: orgListResponseSchema })).orgs;
}

/** An organisation's vaults. */
export async function listOrgVaults(slug: string, client: ApiClient = api()): Promise<OrgVaultSummary[]> {
  const path = `${ORGS_PATH}/${segment(slug)}/vaults`;
  return (await client.call({ method: "GET", path, answer: orgVaultsResponseSchema })).vaults;
}

/** The caller's own copy of a vault: its blob, wrapped key and envSchema (decrypted by pairing/unlock.ts). */
export function pullPersonal(vaultId: string, client: ApiClient = api()): Promise<PullResponse> {
  return client.call({
    method: "GET",
    path: `${VAULTS_PATH}/${segment(vaultId)}`,
    answer: pullResponseSchema,
  });
}

/** An organisation's copy of a vault, with the key wrapped for the caller (the server audits the first pull). */
export function pullOrg(slug: string, vaultId: string, client: ApiClient = api()): Promise<OrgPullResponse> {
  const path = `${ORGS_PATH}/${segment(slug)}/vaults/${segment(vaultId)}`;
  return client.call({ method: "GET", path, answer: orgPullResponseSchema });
}

/** An organisation's members with their key states (and last pulls, for maintainers and above). */
export function listMembers(slug: string, client: ApiClient = api()): Promise<OrgMembersResponse> {
  const path = `${ORGS_PATH}/${segment(slug)}/members`;
  return client.call({ method: "GET", path, answer: orgMembersResponseSchema });
}

/** Which audit log: the account's, a personal vault's, or an organisation's. */
export type AuditLogScope =
  { kind: "account" } | { kind: "vault"; vaultId: string } | { kind: "org"; slug: string };

/** The filters of the audit view; empty strings are no filter. Times are ISO-8601. */
export interface AuditFilters {
  action: string;
  user: string;
  vault: string;
  environment: string;
  from: string;
  to: string;
}

/** No filter at all. */
export const NO_FILTERS: AuditFilters = {
  action: "",
  user: "",
  vault: "",
  environment: "",
  from: "",
  to: "",
};

/** The path of one page of `scope`'s log with `filters`, after `cursor` (null: the newest page). */
export function auditPath(scope: AuditLogScope, filters: AuditFilters, cursor: string | null): string {
  const base =
    scope.kind === "account"
      ? ACCOUNT_AUDIT_PATH
      : scope.kind === "vault"
        ? `${VAULTS_PATH}/${segment(scope.vaultId)}/audit`
        : `${ORGS_PATH}/${segment(scope.slug)}/audit`;
  const query = new URLSearchParams();
  const { action, user, vault, environment, from, to } = filters;
  if (action !== "") query.set("action", action);
  if (user !== "") query.set("user", user);
  if (vault !== "" && scope.kind === "org") query.set("vault", vault);
  if (environment !== "") query.set("environment", environment);
  if (from !== "") query.set("from", from);
  if (to !== "") query.set("to", to);
  if (cursor !== null) query.set("cursor", cursor);
  const search = query.toString();
  return search === "" ? base : `${base}?${search}`;
}

/** One page of an audit log. */
export function auditPage(
  scope: AuditLogScope,
  filters: AuditFilters,
  cursor: string | null,
  client: ApiClient = api(),
): Promise<AuditPageResponse> {
  return client.call({
    method: "GET",
    path: auditPath(scope, filters, cursor),
    answer: auditPageResponseSchema,
  });
}

/** The account's pairings: the unfinished ones and those of the last 24 hours. */
export async function listPairings(client: ApiClient = api()): Promise<PairingSummary[]> {
  return (await client.call({ method: "GET", path: PAIRINGS_PATH, answer: pairingListResponseSchema }))
    .pairings;
}

/** Revokes one pairing this session takes part in. */
export async function revokePairing(pairingId: string, client: ApiClient = api()): Promise<void> {
  const path = `${PAIRINGS_PATH}/${segment(pairingId)}/revoke`;
  await client.call({ method: "POST", path, answer: pairingViewSchema });
}

/** Revokes every unfinished pairing of the account, from any of its sessions; how many. */
export async function revokeAllPairings(client: ApiClient = api()): Promise<number> {
  const path = `${PAIRINGS_PATH}/revoke-all`;
  return (await client.call({ method: "POST", path, answer: pairingRevokeAllResponseSchema })).revoked;
}
