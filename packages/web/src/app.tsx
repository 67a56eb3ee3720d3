/**
 * The app shell: the header (navigation, the account, sign out) and the view the router picks from routes.tsx.
 */
import { ROUTES, type Route } from "./routes.js";
import { BASE, Link, matchPath, usePathname, type RouteParams } from "./router.js";

/** The row of `pathname` in the table, or undefined (not found). */
export function routeFor(pathname: string): { route: Route; params: RouteParams } | undefined {
  for (const route of ROUTES) {
    const params = matchPath(route.path, pathname);
    if (params) return { route, params };
  }
  return undefined;
}

function NotFound() {
  return (
    <section aria-labelledby="not-found-heading">
      <h1 id="not-found-heading">Page not found</h1>
      <p>
        There is no dashboard page here. <Link href={BASE}>Go to your vaults</Link>.
      </p>
    </section>
  );
}

/** The whole dashboard. */
export function App() {
  const pathname = usePathname();
  const found = routeFor(pathname);
  document.title = `${found?.route.title ?? "Not found"} · Latchkey`;
  return (
    <>
      <header class="top">
        <a class="brand" href={BASE}>
          Latchkey
        </a>
        <nav aria-label="Dashboard">
          <ul>
            {ROUTES.filter((r) => r.nav !== undefined).map((r) => (
              <li key={r.path}>
                <Link href={r.path} aria-current={r === found?.route ? "page" : undefined}>
                  {r.nav}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main">{found ? found.route.render(found.params) : <NotFound />}</main>
    </>
  );
}
