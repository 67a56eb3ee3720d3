/**
 * One vault: a personal copy or an organisation's. Its environments are tabs; each lists its keys with the values
 * masked, a reveal and a copy per value, and the keys its envSchema requires that it lacks. The envSchema (which
 * the server keeps in the clear beside the copy) is shown read-only whether or not the browser is unlocked; the
 * values only once it is, decrypted here by pairing/unlock.ts (core's code). A decrypted document lives in this
 * view's state only: never in the address, the title, storage or the console, and gone when the view unmounts or
 * the keys are dropped.
 */
import type { OrgMembersResponse, OrgPullResponse, PullResponse, VaultDocument } from "@latchkey/core";
import { useEffect, useRef, useState } from "preact/hooks";
import { LockedNotice } from "../pairing/unlock-view.js";
import { openOrgCopy, openPersonalCopy, useHeldKeys, type OrgCopySharer } from "../pairing/unlock.js";
import { Link } from "../router.js";
import { copyValue } from "./clipboard.js";
import { describeError, ReadOnlyNote, Short, Show, TableWrap, Time, useLoad } from "./common.js";
import {
  environmentsOf,
  keysOf,
  missingRequired,
  readSchema,
  type ReadSchema,
  type SchemaRow,
} from "./env-schema.js";
import { listMembers, pullOrg, pullPersonal } from "./reads.js";
import { membersPath, orgAuditPath, vaultAuditPath } from "./vaults.js";
import "./views.css";

/** Which copy the view shows. */
export type VaultScope =
  { kind: "personal"; vaultId: string } | { kind: "org"; slug: string; vaultId: string };

type Pulled =
  | { kind: "personal"; copy: PullResponse }
  | { kind: "org"; slug: string; copy: OrgPullResponse; members: OrgMembersResponse };

async function loadCopy(scope: VaultScope): Promise<Pulled> {
  if (scope.kind === "personal") return { kind: "personal", copy: await pullPersonal(scope.vaultId) };
  const [copy, members] = await Promise.all([pullOrg(scope.slug, scope.vaultId), listMembers(scope.slug)]);
  return { kind: "org", slug: scope.slug, copy, members };
}

/** What opening the copy gave. */
type Opened =
  | { kind: "locked" }
  | { kind: "opening" }
  | { kind: "failed"; error: unknown }
  | { kind: "open"; document: VaultDocument; sharedBy: OrgCopySharer | null };

/** Opens `pulled` with the keys this page holds, whenever either changes. */
function useOpened(pulled: Pulled | null): Opened {
  const keys = useHeldKeys();
  const [opened, setOpened] = useState<Opened>({ kind: "locked" });
  useEffect(() => {
    if (keys === null || pulled === null) {
      setOpened({ kind: "locked" });
      return;
    }
    let current = true;
    setOpened({ kind: "opening" });
    const open =
      pulled.kind === "personal"
        ? openPersonalCopy(pulled.copy).then((document) => ({ document, sharedBy: null }))
        : openOrgCopy(pulled.slug, pulled.copy, pulled.members.members);
    open.then(
      ({ document, sharedBy }) => current && setOpened({ kind: "open", document, sharedBy }),
      (error: unknown) => current && setOpened({ kind: "failed", error }),
    );
    return () => {
      current = false;
    };
  }, [keys, pulled]);
  return opened;
}

const MASK = "••••••••";

/** One value: masked until revealed; revealed and copied by its own buttons. */
function ValueCell(props: {
  name: string;
  value: string | undefined;
  rule: SchemaRow | undefined;
  announce: (text: string) => void;
}) {
  const { name, value, rule, announce } = props;
  const [shown, setShown] = useState(false);
  if (value === undefined || value === "") {
    return (
      <>
        <td>
          <span class="muted">{value === undefined ? "not set" : "empty"}</span>
          {rule?.default !== null && rule?.default !== undefined && (
            <span class="muted"> (the schema's default applies)</span>
          )}
        </td>
        <td />
      </>
    );
  }
  const copy = () => {
    copyValue(value).then(
      () => announce(`Copied the value of ${name}. The clipboard is cleared in 30 seconds.`),
      () => announce(`The browser did not let the page copy the value of ${name}.`),
    );
  };
  return (
    <>
      <td>
        {shown ? (
          <code class="value">{value}</code>
        ) : (
          <span class="masked" aria-label="masked value">
            {MASK}
          </span>
        )}
      </td>
      <td class="actions">
        <button type="button" aria-pressed={shown} onClick={() => setShown(!shown)}>
          {shown ? "Hide" : "Reveal"}
          <span class="visually-hidden"> the value of {name}</span>
        </button>
        <button type="button" onClick={copy}>
          Copy<span class="visually-hidden"> the value of {name}</span>
        </button>
      </td>
    </>
  );
}

/** The rule of a key in a few words. */
function ruleSummary(rule: SchemaRow | undefined): string {
  if (rule === undefined) return "";
  const parts: string[] = [];
  if (rule.required) parts.push("required");
  if (rule.format !== null) parts.push(rule.format);
  if (rule.secret) parts.push("secret");
  return parts.join(", ");
}

/** The environments as tabs (WAI-ARIA tabs: arrows, Home and End move between them). */
function Environments(props: { document: VaultDocument; schema: ReadSchema }) {
  const { document, schema } = props;
  const environments = environmentsOf(document);
  const [selected, setSelected] = useState(environments[0] ?? "");
  const [announcement, setAnnouncement] = useState("");
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  if (environments.length === 0) return <p class="muted">This vault holds no environment yet.</p>;
  const current = environments.includes(selected) ? selected : environments[0]!;
  const index = environments.indexOf(current);
  const select = (i: number) => {
    const next = (i + environments.length) % environments.length;
    setSelected(environments[next]!);
    tabs.current[next]?.focus();
  };
  const onKeyDown = (event: KeyboardEvent) => {
    const moves: Record<string, number> = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      Home: 0,
      End: environments.length - 1,
    };
    const to = moves[event.key];
    if (to === undefined) return;
    event.preventDefault();
    select(to);
  };
  const values = document[current] ?? {};
  const rules =
    schema.kind === "ok" ? new Map(schema.rows.map((r) => [r.key, r])) : new Map<string, SchemaRow>();
  const missing = schema.kind === "ok" ? missingRequired(schema.schema, values) : [];
  const keys = keysOf(values, schema.kind === "ok" ? schema.schema : null);
  const tabId = (env: string) => `env-tab-${env}`;
  const panelId = (env: string) => `env-panel-${env}`;
  return (
    <section aria-labelledby="environments-heading">
      <h2 id="environments-heading">Environments</h2>
      <div role="tablist" aria-label="Environments" class="tabs">
        {environments.map((env, i) => (
          <button
            key={env}
            type="button"
            role="tab"
            id={tabId(env)}
            aria-selected={env === current}
            aria-controls={panelId(env)}
            tabIndex={env === current ? 0 : -1}
            ref={(el) => {
              tabs.current[i] = el;
            }}
            onClick={() => select(i)}
            onKeyDown={onKeyDown}
          >
            {env}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={panelId(current)} aria-labelledby={tabId(current)} tabIndex={0} class="panel">
        {missing.length > 0 ? (
          <p class="warning">
            Missing required keys in {current}:{" "}
            {missing.map((key, i) => (
              <span key={key}>
                {i > 0 && ", "}
                <code>{key}</code>
              </span>
            ))}
            .
          </p>
        ) : (
          schema.kind === "ok" && <p class="muted">Every key the envSchema requires is set in {current}.</p>
        )}
        {keys.length === 0 ? (
          <p class="muted">No key in this environment.</p>
        ) : (
          <TableWrap label={`Keys of ${current}`}>
            <table>
              <caption class="visually-hidden">Keys of {current}</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Rule</th>
                  <th scope="col">Value</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {keys.map((key) => (
                  <tr key={`${current}\u0000${key}`}>
                    <th scope="row">
                      <code>{key}</code>
                    </th>
                    <td>{ruleSummary(rules.get(key))}</td>
                    <ValueCell
                      name={key}
                      value={values[key]}
                      rule={rules.get(key)}
                      announce={setAnnouncement}
                    />
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </div>
      <p role="status" aria-live="polite" class="muted">
        {announcement}
      </p>
    </section>
  );
}

/** The envSchema, read-only. */
function SchemaTable(props: { schema: ReadSchema }) {
  const { schema } = props;
  return (
    <section aria-labelledby="schema-heading">
      <h2 id="schema-heading">envSchema</h2>
      {schema.kind === "none" && (
        <p class="muted">
          This copy carries no envSchema: the project's <code>latchkey.json</code> declares none, or no push
          has sent it yet.
        </p>
      )}
      {schema.kind === "unreadable" && (
        <p class="warning">
          The envSchema stored with this copy is not one this dashboard reads ({schema.problem}).
        </p>
      )}
      {schema.kind === "ok" && (
        <TableWrap label="The envSchema's rules">
          <table>
            <caption class="visually-hidden">The envSchema's rules</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Required</th>
                <th scope="col">Format</th>
                <th scope="col">Pattern</th>
                <th scope="col">Default</th>
                <th scope="col">Secret</th>
                <th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              {schema.rows.map((row) => (
                <tr key={row.key}>
                  <th scope="row">
                    <code>{row.key}</code>
                  </th>
                  <td>{row.required ? "yes" : "no"}</td>
                  <td>{row.format ?? <span class="muted">any</span>}</td>
                  <td>
                    {row.pattern === null ? <span class="muted">none</span> : <code>{row.pattern}</code>}
                  </td>
                  <td>
                    {row.default === null ? (
                      <span class="muted">none</span>
                    ) : row.secret ? (
                      <span class="muted">set (secret, not shown)</span>
                    ) : (
                      <code>{row.default}</code>
                    )}
                  </td>
                  <td>{row.secret ? "yes" : "no"}</td>
                  <td>{row.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

function Contents(props: { pulled: Pulled }) {
  const { pulled } = props;
  const opened = useOpened(pulled);
  const schema = readSchema(pulled.copy.schema);
  const copy = pulled.copy;
  return (
    <>
      <h1 id="vault-heading">{copy.name}</h1>
      <dl class="facts">
        <dt>Copy</dt>
        <dd>{pulled.kind === "personal" ? "yours" : `organisation ${pulled.slug}`}</dd>
        <dt>Version</dt>
        <dd>{copy.version}</dd>
        <dt>Last push</dt>
        <dd>
          <Time iso={copy.updatedAt} />
        </dd>
        <dt>Vault id</dt>
        <dd>
          <Short id={copy.vaultId} />
        </dd>
        {opened.kind === "open" && opened.sharedBy !== null && (
          <>
            <dt>Key shared by</dt>
            <dd>
              {opened.sharedBy.self ? "you" : opened.sharedBy.email} (sharing key{" "}
              <Short id={opened.sharedBy.fingerprint} length={16} />)
            </dd>
          </>
        )}
      </dl>
      <p>
        {pulled.kind === "personal" ? (
          <Link href={vaultAuditPath(copy.vaultId)}>Audit log of this vault</Link>
        ) : (
          <>
            <Link href={`${orgAuditPath(pulled.slug)}?vault=${encodeURIComponent(copy.vaultId)}`}>
              Audit log of this vault
            </Link>
            {" · "}
            <Link href={membersPath(pulled.slug)}>Member access</Link>
          </>
        )}
      </p>
      <ReadOnlyNote />
      {opened.kind === "locked" && <LockedNotice />}
      {opened.kind === "opening" && (
        <p role="status" class="muted">
          Decrypting in this browser…
        </p>
      )}
      {opened.kind === "failed" && (
        <div class="failure" role="alert">
          <p>
            <strong>The values could not be opened here.</strong> {describeError(opened.error).message}
          </p>
          <p class="muted">{describeError(opened.error).hint}</p>
        </div>
      )}
      {opened.kind === "open" && <Environments document={opened.document} schema={schema} />}
      <SchemaTable schema={schema} />
    </>
  );
}

/** The vault view. */
export function VaultView(props: { scope: VaultScope }) {
  const { scope } = props;
  const [state, reload] = useLoad(
    () => loadCopy(scope),
    [scope.kind, scope.kind === "org" ? scope.slug : "", scope.vaultId],
  );
  return (
    <section aria-label="Vault" class="vault">
      <Show state={state} what="this vault" retry={reload}>
        {(pulled) => <Contents pulled={pulled} />}
      </Show>
    </section>
  );
}
