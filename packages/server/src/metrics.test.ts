import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "./db/index.js";
import { createMetrics, startMetricsListener, UNMATCHED_ROUTE, VAULT_OPERATIONS } from "./metrics.js";
import { buildTestApp } from "../test/support/identity.js";

const value = async (
  metrics: ReturnType<typeof createMetrics>,
  name: string,
  labels: Record<string, string>,
) => {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const found = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return found?.value ?? 0;
};

describe("metrics", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("counts 429s and 401s by route pattern, and an unmatched path under one label", async () => {
    const metrics = createMetrics();
    const app = Fastify();
    metrics.instrument(app);
    app.get("/api/v1/things/:thingId", async (_request, reply) => reply.code(429).send({}));
    app.get("/api/v1/other/:id", async (_request, reply) => reply.code(401).send({}));
    cleanups.push(() => app.close());
    await app.inject({ url: "/api/v1/things/0b6a3c1e-0000-4000-8000-000000000001" });
    await app.inject({ url: "/api/v1/things/someone@example.com" });
    await app.inject({ url: "/api/v1/other/x" });
    await app.inject({ url: "/nothing/here@example.com" });
    expect(await value(metrics, "latchkey_rate_limited_total", { route: "/api/v1/things/:thingId" })).toBe(2);
    expect(await value(metrics, "latchkey_auth_failures_total", { route: "/api/v1/other/:id" })).toBe(1);
    expect(
      await value(metrics, "latchkey_http_requests_total", { route: UNMATCHED_ROUTE, status: "404" }),
    ).toBe(1);
    const text = await metrics.registry.metrics();
    expect(text).not.toContain("0b6a3c1e");
    expect(text).not.toContain("example.com");
  });

  it("names in its push and pull table only routes the application has", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "lk-metrics-"));
    const database: OpenDatabase = await openDatabase({ dataDir });
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    cleanups.push(() => database.close());
    const { app } = buildTestApp({ db: database.db });
    cleanups.push(() => app.close());
    await app.ready();
    for (const key of VAULT_OPERATIONS.keys()) {
      const [method, url] = key.split(" ") as ["GET" | "PUT", string];
      expect(app.hasRoute({ method, url }), key).toBe(true);
    }
  });

  it("serves GET /metrics alone on its listener", async () => {
    const metrics = createMetrics({ writerQueue: () => 3 });
    const listener = await startMetricsListener(metrics, { host: "127.0.0.1", port: 0, token: undefined });
    cleanups.push(() => listener.close());
    const scraped = await fetch(`${listener.url}/metrics`);
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toMatch(/^latchkey_sqlite_writer_queue_depth 3$/m);
    expect((await fetch(`${listener.url}/`)).status).toBe(404);
    expect((await fetch(`${listener.url}/metrics`, { method: "POST" })).status).toBe(404);
  });
});
