/**
 * An audit log: the account's, a personal vault's or an organisation's, newest first, 50 entries a page, filtered by
 * action, member (an organisation's), vault (an organisation's), environment and time range, and exported as CSV
 * built here from the server's pages (csv.ts: a Blob download, never a URL carrying rows). The server's rules: an
 * organisation's log is its maintainers', admins' and owners' to read; a vault's is its owner's.
 */
import {
  AUDIT_PAGE_SIZE,
  isUuid,
  type AuditPageEntry,
  type AuditPageResponse,
  type OrgMembersResponse,
} from "@latchkey/core";
import { useState } from "preact/hooks";
import { Link } from "../router.js";
import { auditCsv, downloadText } from "./csv.js";
import { describeError, Short, Show, TableWrap, Time, useLoad } from "./common.js";
import { auditPage, listMembers, NO_FILTERS, type AuditFilters, type AuditLogScope } from "./reads.js";
import { ACCOUNT_AUDIT_VIEW, membersPath } from "./vaults.js";
import "./views.css";

/** Most pages one export reads (10,000 entries): a log longer than that is exported newest first, cut there. */
export const MAX_EXPORT_PAGES = 200;

/** Actions the filter suggests (any other action may be typed): what the server writes most. */
const KNOWN_ACTIONS = [
  "vault.push",
  "vault.rewrap",
  "vault.ci.enable",
  "vault.ci.disable",
  "vault.ci.exchange",
  "vault.ci.pull",
  "org.create",
  "org.delete",
  "org.member.add",
  "org.member.role",
  "org.member.remove",
  "org.vault.share",
  "org.vault.unshare",
  "org.vault.push",
  "org.vault.pull",
  "auth.login",
  "auth.login_failed",
  "step_up.granted",
  "pairing.create",
  "pairing.approve",
  "pairing.consume",
  "pairing.revoke",
  "pairing.revoke_all",
  "account.sessions.revoke_all",
];

/** `<input type="datetime-local">`'s value (the reader's local time) as ISO-8601, or "" when empty or invalid. */
export function localToIso(value: string): string {
  if (value === "") return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function scopeTitle(scope: AuditLogScope) {
  switch (scope.kind) {
    case "account":
      return <>your account</>;
    case "vault":
      return (
        <>
          vault <Short id={scope.vaultId} />
        </>
      );
    case "org":
      return <>organisation {scope.slug}</>;
  }
}

function fileName(scope: AuditLogScope): string {
  const what =
    scope.kind === "account"
      ? "account"
      : scope.kind === "vault"
        ? `vault-${scope.vaultId}`
        : `org-${scope.slug}`;
  return `latchkey-audit-${what}-${new Date().toISOString().slice(0, 10)}.csv`;
}

/** What an entry's metadata says, one `name: value` per member. */
function Details(props: { metadata: Record<string, unknown> }) {
  const entries = Object.entries(props.metadata);
  if (entries.length === 0) return null;
  return (
    <ul class="details">
      {entries.map(([name, value]) => (
        <li key={name}>
          <span class="muted">{name}:</span> {typeof value === "string" ? value : JSON.stringify(value)}
        </li>
      ))}
    </ul>
  );
}

function Entries(props: { entries: AuditPageEntry[]; scope: AuditLogScope }) {
  if (props.entries.length === 0) return <p class="muted">No entry matches.</p>;
  const showVault = props.scope.kind !== "vault";
  return (
    <TableWrap label="Audit entries, newest first">
      <table class="audit">
        <caption class="visually-hidden">Audit entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Action</th>
            <th scope="col">Who</th>
            {showVault && <th scope="col">Vault</th>}
            <th scope="col">Version</th>
            <th scope="col">Environment</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {props.entries.map((entry) => (
            <tr key={entry.id}>
              <td>
                <Time iso={entry.createdAt} />
              </td>
              <th scope="row">
                <code>{entry.action}</code>
                {entry.count > 1 && <span class="muted"> ×{entry.count}</span>}
              </th>
              <td>
                {entry.actor === null ? (
                  <span class="muted">no account (a CI job)</span>
                ) : (
                  (entry.actor.email ?? <span class="muted">a deleted account</span>)
                )}
              </td>
              {showVault && <td>{entry.vaultId === null ? "" : <Short id={entry.vaultId} />}</td>}
              <td>{entry.version ?? ""}</td>
              <td>{entry.environment ?? ""}</td>
              <td>
                <Details metadata={entry.metadata} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

/** The filter form: edited freely, applied on submit. */
function FilterForm(props: {
  scope: AuditLogScope;
  applied: AuditFilters;
  members: OrgMembersResponse | null;
  onApply: (filters: AuditFilters) => void;
}) {
  const { scope, members } = props;
  const [action, setAction] = useState(props.applied.action);
  const [user, setUser] = useState(props.applied.user);
  const [vault, setVault] = useState(props.applied.vault);
  const [environment, setEnvironment] = useState(props.applied.environment);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const submit = (event: Event) => {
    event.preventDefault();
    props.onApply({
      action: action.trim(),
      user,
      vault,
      environment: environment.trim(),
      from: localToIso(from),
      to: localToIso(to),
    });
  };
  const clear = () => {
    setAction("");
    setUser("");
    setVault("");
    setEnvironment("");
    setFrom("");
    setTo("");
    props.onApply(NO_FILTERS);
  };
  const input = (event: Event) => (event.currentTarget as HTMLInputElement).value;
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter the audit log">
      <div class="field">
        <label for="filter-action">Action</label>
        <input
          id="filter-action"
          list="filter-actions"
          value={action}
          onInput={(e) => setAction(input(e))}
          autocomplete="off"
          spellcheck={false}
        />
        <datalist id="filter-actions">
          {KNOWN_ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
      </div>
      {scope.kind === "org" && (
        <div class="field">
          <label for="filter-user">Member</label>
          <select id="filter-user" value={user} onChange={(e) => setUser(e.currentTarget.value)}>
            <option value="">Anyone</option>
            {(members?.members ?? []).map((m) => (
              <option key={m.userId} value={m.userId}>
                {m.email}
              </option>
            ))}
          </select>
        </div>
      )}
      {scope.kind === "org" && (
        <div class="field">
          <label for="filter-vault">Vault</label>
          <select id="filter-vault" value={vault} onChange={(e) => setVault(e.currentTarget.value)}>
            <option value="">Any vault</option>
            {(members?.vaults ?? []).map((v) => (
              <option key={v.vaultId} value={v.vaultId}>
                {v.name}
              </option>
            ))}
            {vault !== "" && !(members?.vaults ?? []).some((v) => v.vaultId === vault) && (
              <option value={vault}>{vault}</option>
            )}
          </select>
        </div>
      )}
      <div class="field">
        <label for="filter-environment">Environment</label>
        <input
          id="filter-environment"
          value={environment}
          onInput={(e) => setEnvironment(input(e))}
          aria-describedby="filter-environment-note"
          autocomplete="off"
          spellcheck={false}
        />
        <span id="filter-environment-note" class="muted small">
          Only CI pulls record one.
        </span>
      </div>
      <div class="field">
        <label for="filter-from">From</label>
        <input id="filter-from" type="datetime-local" value={from} onInput={(e) => setFrom(input(e))} />
      </div>
      <div class="field">
        <label for="filter-to">Until</label>
        <input id="filter-to" type="datetime-local" value={to} onInput={(e) => setTo(input(e))} />
      </div>
      <div class="field buttons">
        <button type="submit" class="primary">
          Apply filters
        </button>
        <button type="button" onClick={clear}>
          Clear
        </button>
      </div>
    </form>
  );
}

/** The view. An organisation's log opened with `?vault=ID` (the vault view's link) starts filtered on that vault. */
export function AuditView(props: { scope: AuditLogScope }) {
  const { scope } = props;
  const initialVault = scope.kind === "org" ? new URLSearchParams(location.search).get("vault") : null;
  const [filters, setFilters] = useState<AuditFilters>({
    ...NO_FILTERS,
    vault: initialVault !== null && isUuid(initialVault) ? initialVault.toLowerCase() : "",
  });
  // The cursors of the pages before this one (the first page's is null): "Newer" goes back along them.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const scopeKey = scope.kind === "account" ? "account" : scope.kind === "vault" ? scope.vaultId : scope.slug;
  const [page, reload] = useLoad(
    () => auditPage(scope, filters, cursor),
    [scope.kind, scopeKey, filters, cursor],
  );
  const [members] = useLoad<OrgMembersResponse | null>(
    () => (scope.kind === "org" ? listMembers(scope.slug) : Promise.resolve(null)),
    [scope.kind, scopeKey],
  );
  const [exporting, setExporting] = useState<string>("");

  const apply = (next: AuditFilters) => {
    setFilters(next);
    setCursors([null]);
  };
  const older = (next: string) => setCursors([...cursors, next]);
  const newer = () => setCursors(cursors.slice(0, -1));

  const exportCsv = async () => {
    setExporting("Exporting…");
    try {
      const entries: AuditPageEntry[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const answer: AuditPageResponse = await auditPage(scope, filters, next);
        entries.push(...answer.entries);
        next = answer.nextCursor;
        pages++;
      } while (next !== null && pages < MAX_EXPORT_PAGES);
      downloadText(auditCsv(entries), fileName(scope));
      setExporting(
        next === null
          ? `Exported ${entries.length} ${entries.length === 1 ? "entry" : "entries"} as CSV.`
          : `Exported the newest ${entries.length} entries as CSV; older ones were left out.`,
      );
    } catch (error) {
      setExporting(`The export failed: ${describeError(error).message}`);
    }
  };

  const membersLoaded = members.kind === "ok" ? members.value : null;
  return (
    <section aria-labelledby="audit-heading">
      <h1 id="audit-heading">Audit log of {scopeTitle(scope)}</h1>
      <p class="muted">
        Newest first, {AUDIT_PAGE_SIZE} entries a page. Entries never hold a secret value.{" "}
        {scope.kind !== "account" && <Link href={ACCOUNT_AUDIT_VIEW}>Your account's log</Link>}
        {scope.kind === "org" && (
          <>
            {" · "}
            <Link href={membersPath(scope.slug)}>Member access</Link>
          </>
        )}
      </p>
      <FilterForm
        key={`${scope.kind}\u0000${scopeKey}`}
        scope={scope}
        applied={filters}
        members={membersLoaded}
        onApply={apply}
      />
      <div class="toolbar">
        <button type="button" onClick={() => void exportCsv()} disabled={exporting === "Exporting…"}>
          Export CSV
        </button>
        <span role="status" class="muted">
          {exporting}
        </span>
      </div>
      <Show state={page} what="the audit log" retry={reload}>
        {(answer) => (
          <>
            <Entries entries={answer.entries} scope={scope} />
            <nav class="pager" aria-label="Audit log pages">
              <button type="button" onClick={newer} disabled={cursors.length === 1}>
                Newer entries
              </button>
              <span class="muted">Page {cursors.length}</span>
              <button
                type="button"
                onClick={() => answer.nextCursor !== null && older(answer.nextCursor)}
                disabled={answer.nextCursor === null}
              >
                Older entries
              </button>
            </nav>
          </>
        )}
      </Show>
    </section>
  );
}
