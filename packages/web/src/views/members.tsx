/**
 * Member access of an organisation: who its members are, with their roles and sharing keys, and for each of its
 * vaults whether each member can open it (has access / needs a share / has no sharing key yet) and when they last
 * pulled it. The last pulls come from the audit log, so the server gives them to maintainers and above only.
 */
import type { OrgMemberDetail, OrgMembersResponse, OrgSummary, OrgVaultSummary } from "@latchkey/core";
import { Link } from "../router.js";
import { ReadOnlyNote, Short, Show, TableWrap, Time, useLoad } from "./common.js";
import { listMembers, listOrgs } from "./reads.js";
import { orgAuditPath, orgVaultPath, readsAudit } from "./vaults.js";
import "./views.css";

/** One member's access to one vault, in words. */
export type Access = "has access" | "needs share" | "no sharing key";

/** The access of `member` to the vault whose key state is `state`. */
export function accessOf(member: OrgMemberDetail, state: OrgMemberDetail["keys"][number]["state"]): Access {
  if (member.sharingKeyFingerprint === null) return "no sharing key";
  return state === "current" ? "has access" : "needs share";
}

const ACCESS_NOTE: Record<Access, string> = {
  "has access": "their key is wrapped for their current sharing key",
  "needs share": "a maintainer runs latchkey env share --org for them",
  "no sharing key": "they have not used an organisation vault from the command line yet",
};

function VaultAccess(props: {
  vault: OrgVaultSummary;
  members: OrgMemberDetail[];
  slug: string;
  auditor: boolean;
}) {
  const { vault, members, slug, auditor } = props;
  const headingId = `vault-${vault.vaultId}-heading`;
  return (
    <section aria-labelledby={headingId}>
      <h3 id={headingId}>
        <Link href={orgVaultPath(slug, vault.vaultId)}>{vault.name}</Link>{" "}
        <span class="muted">
          version {vault.version}, last push <Time iso={vault.updatedAt} />
        </span>
      </h3>
      <TableWrap label={`Member access to ${vault.name}`}>
        <table>
          <caption class="visually-hidden">Member access to {vault.name}</caption>
          <thead>
            <tr>
              <th scope="col">Member</th>
              <th scope="col">Role</th>
              <th scope="col">Access</th>
              <th scope="col">Last pull</th>
            </tr>
          </thead>
          <tbody>
            {members.map((member) => {
              const key = member.keys.find((k) => k.vaultId === vault.vaultId);
              const access = accessOf(member, key?.state ?? "missing");
              return (
                <tr key={member.userId}>
                  <th scope="row">{member.email}</th>
                  <td>{member.role}</td>
                  <td>
                    <span class={`access ${access.replace(/ /g, "-")}`}>{access}</span>
                    <span class="visually-hidden">: {ACCESS_NOTE[access]}</span>
                  </td>
                  <td>
                    {!auditor || key?.lastPulledAt === undefined ? (
                      <span class="muted">not shown to your role</span>
                    ) : key.lastPulledAt === null ? (
                      <span class="muted">never</span>
                    ) : (
                      <>
                        version {key.lastPulledVersion}, <Time iso={key.lastPulledAt} />
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableWrap>
    </section>
  );
}

function Contents(props: { slug: string; answer: OrgMembersResponse; org: OrgSummary | undefined }) {
  const { slug, answer, org } = props;
  const auditor = org !== undefined && readsAudit(org.role);
  return (
    <>
      <p class="muted">
        {org !== undefined && <>Your role: {org.role}. </>}
        {auditor && <Link href={orgAuditPath(slug)}>Audit log of {slug}</Link>}
      </p>
      <ReadOnlyNote />
      <section aria-labelledby="members-list-heading">
        <h2 id="members-list-heading">Members</h2>
        <TableWrap label={`Members of ${slug}`}>
          <table>
            <caption class="visually-hidden">Members of {slug}</caption>
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Role</th>
                <th scope="col">Sharing key</th>
                <th scope="col">Added</th>
                <th scope="col">Waiting for a share</th>
              </tr>
            </thead>
            <tbody>
              {answer.members.map((member) => (
                <tr key={member.userId}>
                  <th scope="row">{member.email}</th>
                  <td>{member.role}</td>
                  <td>
                    {member.sharingKeyFingerprint === null ? (
                      <span class="muted">none yet</span>
                    ) : (
                      <Short id={member.sharingKeyFingerprint} length={16} />
                    )}
                  </td>
                  <td>
                    <Time iso={member.addedAt} />
                  </td>
                  <td>{member.needsShare ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </section>
      <section aria-labelledby="access-heading">
        <h2 id="access-heading">Access to each vault</h2>
        {!auditor && (
          <p class="muted">Last pulls come from the audit log, which maintainers, admins and owners read.</p>
        )}
        {answer.vaults.length === 0 ? (
          <p class="muted">No vault is shared with this organisation yet.</p>
        ) : (
          answer.vaults.map((vault) => (
            <VaultAccess
              key={vault.vaultId}
              vault={vault}
              members={answer.members}
              slug={slug}
              auditor={auditor}
            />
          ))
        )}
      </section>
    </>
  );
}

/** The members view of organisation `slug`. */
export function MembersView(props: { slug: string }) {
  const { slug } = props;
  const [state, reload] = useLoad(async () => {
    const [answer, orgs] = await Promise.all([listMembers(slug), listOrgs()]);
    return { answer, org: orgs.find((o) => o.slug === slug) };
  }, [slug]);
  return (
    <section aria-labelledby="members-heading">
      <h1 id="members-heading">Member access of {slug}</h1>
      <Show state={state} what="the members" retry={reload}>
        {({ answer, org }) => <Contents slug={slug} answer={answer} org={org} />}
      </Show>
    </section>
  );
}
