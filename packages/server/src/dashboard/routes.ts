/**
 * The browser dashboard under /dashboard/: the static bundle packages/web builds, with the same security headers
 * on every answer (docs/dashboard.md "Security headers"). Any path below /dashboard/ that names no built file is
 * a view of the app, answered with index.html; a missing build is a 503 page saying how to build it.
 */
import { DASHBOARD_PATH } from "@latchkey/core";
import type { FastifyInstance, FastifyReply } from "fastify";
import { readDashboardFile } from "./files.js";

const DASHBOARD_PREFIX = DASHBOARD_PATH;

/**
 * The Content-Security-Policy of every dashboard answer: the page's own origin only, no inline script or style,
 * no plugins, no <base>, forms posting only back here, never framed.
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The headers every dashboard answer carries, whatever its status. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": DASHBOARD_CSP,
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cross-origin-opener-policy": "same-origin",
};

/** The build's content-hashed names (app-<hash>.js): their content never changes, so browsers keep them. */
const HASHED = /-[A-Z0-9]{8,}\.(js|css)$/;

/** What the routes need. */
export interface DashboardDeps {
  /** The built dashboard (packages/web/dist); null when it is not there to serve. */
  dir: string | null;
}

const NOT_BUILT =
  '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Dashboard not built · Latchkey</title></head>' +
  "<body><h1>Dashboard not built</h1><p>This server has no built dashboard. Run <code>npm run build</code> in the " +
  "Latchkey repository, then reload this page.</p></body></html>";

function withHeaders(reply: FastifyReply): FastifyReply {
  return reply.headers(DASHBOARD_HEADERS);
}

/** Mounts the dashboard on `app`. */
export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const index = async (reply: FastifyReply): Promise<FastifyReply> => {
    const file = deps.dir === null ? null : await readDashboardFile(deps.dir, "index.html");
    if (!file) {
      return withHeaders(reply)
        .code(503)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .send(NOT_BUILT);
    }
    // Never cached: it names the current build's files, and a stale one would ask for files that are gone.
    return withHeaders(reply)
      .header("content-type", file.contentType)
      .header("cache-control", "no-cache")
      .send(file.body);
  };

  // /dashboard without the slash: relative to it, the app's paths would resolve one level too high.
  app.get(DASHBOARD_PREFIX, async (_request, reply) =>
    withHeaders(reply).header("cache-control", "no-store").redirect(`${DASHBOARD_PREFIX}/`, 308),
  );
  app.get<{ Params: { "*": string } }>(`${DASHBOARD_PREFIX}/*`, async (request, reply) => {
    const rest = request.params["*"];
    const last = rest.slice(rest.lastIndexOf("/") + 1);
    // A file name (it has an extension) directly under /dashboard/ is a built file or nothing; anything else is a
    // path of the app's router.
    if (!/\.[A-Za-z0-9]+$/.test(last)) return index(reply);
    const file = deps.dir !== null && !rest.includes("/") ? await readDashboardFile(deps.dir, last) : null;
    if (!file) {
      if (deps.dir === null) return index(reply);
      return withHeaders(reply)
        .code(404)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store")
        .send("Not found.");
    }
    return withHeaders(reply)
      .header("content-type", file.contentType)
      .header("cache-control", HASHED.test(last) ? "public, max-age=31536000, immutable" : "no-cache")
      .send(file.body);
  });
}
