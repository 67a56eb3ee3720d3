/**
 * The dashboard's views, one row each: the router (router.tsx) shows the first row whose path matches. A view is
 * added here and nowhere else; `nav` puts it in the header's navigation, in table order.
 */
import type { VNode } from "preact";
import { BASE, type RouteParams } from "./router.js";
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
];
