import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultDashboardDir } from "./files.js";
import { DASHBOARD_HEADERS, registerDashboard } from "./routes.js";

let dir: string;
let app: FastifyInstance;

const INDEX = '<!doctype html><script type="module" src="/dashboard/app-ABCDEFGH.js"></script>';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-dashboard-"));
  await writeFile(join(dir, "index.html"), INDEX);
  await writeFile(join(dir, "app-ABCDEFGH.js"), "console.log(1)");
  await writeFile(join(dir, "app-ABCDEFGH.css"), "body{}");
  await mkdir(join(dir, "nested"));
  await writeFile(join(dir, "nested", "secret.js"), "nope");
  await writeFile(join(tmpdir(), "outside-dashboard.js"), "nope");
});
afterEach(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

async function appWith(dashboardDir: string | null): Promise<FastifyInstance> {
  app = Fastify();
  registerDashboard(app, { dir: dashboardDir });
  await app.ready();
  return app;
}

function expectDashboardHeaders(headers: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(DASHBOARD_HEADERS)) expect(headers[name], name).toBe(value);
}

describe("the dashboard's static files", () => {
  it("answers index.html for the app's paths, never cached, with the security headers", async () => {
    await appWith(dir);
    for (const url of [
      "/dashboard/",
      "/dashboard/vaults",
      "/dashboard/vaults/abc/env",
      "/dashboard/callback?code=x",
    ]) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toBe(INDEX);
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["cache-control"]).toBe("no-cache");
      expectDashboardHeaders(res.headers);
    }
  });

  it("serves the built files with their types, the hashed ones cached for good", async () => {
    await appWith(dir);
    const js = await app.inject({ method: "GET", url: "/dashboard/app-ABCDEFGH.js" });
    expect(js.statusCode).toBe(200);
    expect(js.body).toBe("console.log(1)");
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expectDashboardHeaders(js.headers);
    const css = await app.inject({ method: "GET", url: "/dashboard/app-ABCDEFGH.css" });
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expectDashboardHeaders(css.headers);
  });

  it("answers 404 with the headers for a file that is not one of the build's, and reads nothing outside it", async () => {
    await appWith(dir);
    for (const url of [
      "/dashboard/missing.js",
      "/dashboard/nested/secret.js",
      "/dashboard/..%2Foutside-dashboard.js",
      "/dashboard/.hidden.js",
      "/dashboard/index.ts",
    ]) {
      const res = await app.inject({ method: "GET", url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain("nope");
      expectDashboardHeaders(res.headers);
    }
    // Dot segments are resolved before routing: this one leaves /dashboard/ and is no dashboard answer at all.
    const dots = await app.inject({ method: "GET", url: "/dashboard/%2E%2E/outside-dashboard.js" });
    expect(dots.statusCode).toBe(404);
    expect(dots.body).not.toContain("nope");
  });

  it("redirects /dashboard to /dashboard/", async () => {
    await appWith(dir);
    const res = await app.inject({ method: "GET", url: "/dashboard" });
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe("/dashboard/");
    expectDashboardHeaders(res.headers);
  });

  it("answers a 503 page saying how to build it when there is no build", async () => {
    for (const missing of [null, join(dir, "absent")]) {
      await app?.close();
      await appWith(missing);
      const res = await app.inject({ method: "GET", url: "/dashboard/vaults" });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain("npm run build");
      expectDashboardHeaders(res.headers);
    }
  });

  it("finds the workspace's build through @latchkey/web", () => {
    expect(defaultDashboardDir()).toMatch(/packages[/\\]web[/\\]dist$/);
  });
});
