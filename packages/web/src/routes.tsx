/**
 * The dashboard's views, one row each: the router (router.tsx) shows the first row whose path matches. A view is
 * added here and nowhere else; `nav` puts it in the header's navigation, in table order.
 */
import type { VNode } from "preact";
import { BASE, type RouteParams } from "./router.js";
import { UNLOCK_PATH, UnlockView } from "./pairing/unlock-view.js";
import { AuditView } from "./views/audit.js";
import { MembersView } from "./views/members.js";
import { PairingsView } from "./views/pairings.js";
import { VaultView } from "./views/vault.js";
import { VaultsView } from "./views/vaults.js";

/** One view of the dashboard. */
export interface Route {
  /** `/dashboard/...`, with `:name` segments for params. */
  path: string;
  /** The page title's first part (never a value: titles reach history and tab lists). */
  title: string;
  /** The header navigation's label, when the view has an entry there. */
  nav?: string;
  render: (params: RouteParams) => VNode;
}

/** Every view, in the header's order. */
export const ROUTES: readonly Route[] = [
  { path: BASE, title: "Vaults", nav: "Vaults", render: () => <VaultsView /> },
  { path: `${BASE}vaults`, title: "Vaults", render: () => <VaultsView /> },
  {
    path: `${BASE}vaults/:vaultId`,
    title: "Vault",
    render: (p) => (
      <VaultView key={`personal:${p.vaultId!}`} scope={{ kind: "personal", vaultId: p.vaultId! }} />
    ),
  },
  {
    path: `${BASE}vaults/:vaultId/audit`,
    title: "Audit log",
    render: (p) => <AuditView key={`vault:${p.vaultId!}`} scope={{ kind: "vault", vaultId: p.vaultId! }} />,
  },
  {
    path: `${BASE}orgs/:slug/vaults/:vaultId`,
    title: "Vault",
    render: (p) => (
      <VaultView
        key={`org:${p.slug!}:${p.vaultId!}`}
        scope={{ kind: "org", slug: p.slug!, vaultId: p.vaultId! }}
      />
    ),
  },
  {
    path: `${BASE}orgs/:slug/members`,
    title: "Member access",
    render: (p) => <MembersView slug={p.slug!} />,
  },
  {
    path: `${BASE}orgs/:slug/audit`,
    title: "Audit log",
    render: (p) => <AuditView key={`org:${p.slug!}`} scope={{ kind: "org", slug: p.slug! }} />,
  },
  {
    path: `${BASE}audit`,
    title: "Audit log",
    nav: "Audit log",
    render: () => <AuditView key="account" scope={{ kind: "account" }} />,
  },
  { path: `${BASE}pairings`, title: "Pairings", nav: "Pairings", render: () => <PairingsView /> },
  { path: UNLOCK_PATH, title: "Unlock vaults", nav: "Unlock", render: () => <UnlockView /> },
];
