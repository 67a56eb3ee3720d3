/**
 * The dashboard's router: the page is chosen by `location.pathname` under {@link BASE}, with no hash and no
 * library. The server answers index.html for every path below /dashboard/, so a reload or a pasted link lands on
 * the same view. The table of views is routes.tsx.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

/** Where the server serves the dashboard; every route's path starts with it. */
export const BASE = "/dashboard/";

/** The values of a pattern's `:name` segments, decoded. */
export type RouteParams = Readonly<Record<string, string>>;

/**
 * The params of `pathname` under `pattern` (`/dashboard/vaults/:id`), or null when it does not match. A trailing
 * slash is ignored; a `:name` segment matches one non-empty segment.
 */
export function matchPath(pattern: string, pathname: string): RouteParams | null {
  const split = (path: string): string[] => path.replace(/\/+$/, "").split("/");
  const want = split(pattern);
  const got = split(pathname);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, segment] of want.entries()) {
    const actual = got[i]!;
    if (segment.startsWith(":")) {
      if (actual === "") return null;
      let value: string;
      try {
        value = decodeURIComponent(actual);
      } catch {
        return null;
      }
      params[segment.slice(1)] = value;
    } else if (segment !== actual) {
      return null;
    }
  }
  return params;
}

const listeners = new Set<() => void>();

/** Shows the view of `path` (under BASE) without a page load; `replace` keeps it out of the history. */
export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (!path.startsWith(BASE) && path !== BASE.slice(0, -1))
    throw new Error(`navigate: ${path} is not a dashboard path`);
  if (options.replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  for (const listener of listeners) listener();
}

/** The current pathname, re-rendering on navigate() and on the browser's back and forward. */
export function usePathname(): string {
  const [pathname, setPathname] = useState(location.pathname);
  useEffect(() => {
    const update = (): void => setPathname(location.pathname);
    listeners.add(update);
    addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      removeEventListener("popstate", update);
    };
  }, []);
  return pathname;
}

/**
 * A link to another view: a real `<a href>` (so it opens in a new tab, and keyboard and screen readers treat it as
 * a link), whose plain click navigates without a page load.
 */
export function onLinkClick(event: MouseEvent, path: string): void {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(path);
}

/** A link to another view of the dashboard (see onLinkClick). */
export function Link(props: {
  href: string;
  children: ComponentChildren;
  class?: string;
  "aria-current"?: "page" | undefined;
}) {
  const { href, children, ...rest } = props;
  return (
    <a href={href} onClick={(event) => onLinkClick(event, href)} {...rest}>
      {children}
    </a>
  );
}
