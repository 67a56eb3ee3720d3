/**
 * The vaults list, the landing view: the account's personal vaults and each of its organisations' vaults, with
 * their names, versions and last pushes, and the way to each vault, its audit log and the organisation's members.
 * Names and versions are what the server knows; values need the browser unlocked (pairing/unlock-view.tsx).
 */
import {
  ORG_ROLES,
  type OrgRole,
  type OrgSummary,
  type OrgVaultSummary,
  type VaultSummary,
} from "@latchkey/core";
import { LockedNotice } from "../pairing/unlock-view.js";
import { useHeldKeys } from "../pairing/unlock.js";
import { BASE, Link } from "../router.js";
import { ReadOnlyNote, Show, TableWrap, Time, useLoad } from "./common.js";
import { listOrgs, listOrgVaults, listVaults } from "./reads.js";
import "./views.css";

/** The path of a personal vault's view. */
export const vaultPath = (vaultId: string): string => `${BASE}vaults/${encodeURIComponent(vaultId)}`;
/** The path of an organisation vault's view. */
export const orgVaultPath = (slug: string, vaultId: string): string =>
  `${BASE}orgs/${encodeURIComponent(slug)}/vaults/${encodeURIComponent(vaultId)}`;
/** The path of an organisation's members view. */
export const membersPath = (slug: string): string => `${BASE}orgs/${encodeURIComponent(slug)}/members`;
/** The path of an organisation's audit log. */
export const orgAuditPath = (slug: string): string => `${BASE}orgs/${encodeURIComponent(slug)}/audit`;
/** The path of a personal vault's audit log. */
export const vaultAuditPath = (vaultId: string): string => `${vaultPath(vaultId)}/audit`;
/** The path of the account's audit log. */
export const ACCOUNT_AUDIT_VIEW = `${BASE}audit`;

/** Whether `role` may read the organisation's audit log (the server's audit.read: maintainer and above). */
export function readsAudit(role: OrgRole): boolean {
  return ORG_ROLES.indexOf(role) <= ORG_ROLES.indexOf("maintainer");
}

interface VaultsData {
  vaults: VaultSummary[];
  orgs: { org: OrgSummary; vaults: OrgVaultSummary[] }[];
}

async function loadVaults(): Promise<VaultsData> {
  const [vaults, orgs] = await Promise.all([listVaults(), listOrgs()]);
  const withVaults = await Promise.all(
    orgs.map(async (org) => ({ org, vaults: await listOrgVaults(org.slug) })),
  );
  return { vaults, orgs: withVaults };
}

function PersonalVaults(props: { vaults: VaultSummary[] }) {
  if (props.vaults.length === 0) {
    return (
      <p class="muted">
        None of your vaults is on this server yet: <code>latchkey env push</code> in a project sends its
        vault.
      </p>
    );
  }
  return (
    <TableWrap label="Your personal vaults">
      <table>
        <caption class="visually-hidden">Your personal vaults</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Version</th>
            <th scope="col">Last push</th>
            <th scope="col">Organisation copies</th>
            <th scope="col">Audit log</th>
          </tr>
        </thead>
        <tbody>
          {props.vaults.map((vault) => (
            <tr key={vault.vaultId}>
              <th scope="row">
                <Link href={vaultPath(vault.vaultId)}>{vault.name}</Link>
              </th>
              <td>{vault.version}</td>
              <td>
                <Time iso={vault.updatedAt} />
              </td>
              <td>
                {vault.orgs.length === 0 ? (
                  <span class="muted">none</span>
                ) : (
                  <ul class="inline">
                    {vault.orgs.map((slug) => (
                      <li key={slug}>
                        <Link href={orgVaultPath(slug, vault.vaultId)}>{slug}</Link>
                      </li>
                    ))}
                  </ul>
                )}
              </td>
              <td>
                <Link href={vaultAuditPath(vault.vaultId)}>
                  Audit log<span class="visually-hidden"> of {vault.name}</span>
                </Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

function OrgVaults(props: { org: OrgSummary; vaults: OrgVaultSummary[] }) {
  const { org, vaults } = props;
  const headingId = `org-${org.slug}-heading`;
  return (
    <section aria-labelledby={headingId} class="org">
      <h2 id={headingId}>
        {org.name} <span class="muted">({org.slug})</span>
      </h2>
      <p class="muted">
        Your role: {org.role}.{" "}
        <Link href={membersPath(org.slug)}>
          Member access<span class="visually-hidden"> of {org.slug}</span>
        </Link>
        {readsAudit(org.role) && (
          <>
            {" · "}
            <Link href={orgAuditPath(org.slug)}>
              Audit log<span class="visually-hidden"> of {org.slug}</span>
            </Link>
          </>
        )}
      </p>
      {vaults.length === 0 ? (
        <p class="muted">No vault is shared with this organisation yet.</p>
      ) : (
        <TableWrap label={`Vaults of ${org.slug}`}>
          <table>
            <caption class="visually-hidden">Vaults of {org.slug}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Last push</th>
              </tr>
            </thead>
            <tbody>
              {vaults.map((vault) => (
                <tr key={vault.vaultId}>
                  <th scope="row">
                    <Link href={orgVaultPath(org.slug, vault.vaultId)}>{vault.name}</Link>
                  </th>
                  <td>{vault.version}</td>
                  <td>
                    <Time iso={vault.updatedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

/** The landing view once signed in. */
export function VaultsView() {
  const keys = useHeldKeys();
  const [state, reload] = useLoad(loadVaults, []);
  return (
    <section aria-labelledby="vaults-heading">
      <h1 id="vaults-heading">Vaults</h1>
      <ReadOnlyNote />
      {keys === null && <LockedNotice />}
      <Show state={state} what="your vaults" retry={reload}>
        {(data) => (
          <>
            <section aria-labelledby="personal-heading">
              <h2 id="personal-heading">Your vaults</h2>
              <PersonalVaults vaults={data.vaults} />
            </section>
            {data.orgs.map(({ org, vaults }) => (
              <OrgVaults key={org.slug} org={org} vaults={vaults} />
            ))}
            <p>
              <Link href={ACCOUNT_AUDIT_VIEW}>Your account's audit log</Link>: sign-ins, step-ups, pairings.
            </p>
          </>
        )}
      </Show>
    </section>
  );
}
