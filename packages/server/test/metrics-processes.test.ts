// GET /metrics of the built `latchkey-server` process on both databases, scraped from its own listener
// (--metrics-listen) and read with parse-prometheus-text-format, a parser independent of prom-client: the counters
// move after a push, a pull, a 409 and a 401; the public port has no /metrics; no label carries a user id, a vault
// id, an email or a token; each database shows its own gauges (PostgreSQL's pool, SQLite's writer queue).
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLatchkeyServer, type LatchkeyServer } from "../../../e2e/support/latchkey-server.js";
import type { OpenDatabase } from "../src/db/index.js";
import { createIdentity } from "../src/identity/identity.js";
import { describeEachDatabase } from "./databases.js";
import { createTestUser, mintAccessToken, TEST_SERVER_SECRET } from "./support/identity.js";
import { apiHeaders, newVaultKey, openMigrated, pushBody, sealBlob } from "./sync-support.js";

const PUBLIC_URL = "http://127.0.0.1:8787";
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const EMAIL = /[^\s@]+@[^\s@]+\.[^\s@]+/;

/**
 * Scrapes `url` and parses the answer; fails on anything but a 200 in the text format. The parser folds a
 * histogram's labelled series into one and drops their labels, so the families come from the text as sent (which
 * checks every line parses and the types) and the samples from the same text with histograms declared untyped:
 * each `_bucket`, `_sum` and `_count` line is then a sample with all its labels.
 */
async function scrape(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ families: ParsedFamily[]; samples: ParsedFamily[] }> {
  const response = await fetch(`${url}/metrics`, { headers });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return {
    families: parsePrometheusTextFormat(text),
    samples: parsePrometheusTextFormat(text.replace(/^(# TYPE \S+) histogram$/gm, "$1 untyped")),
  };
}

/** The value of `name`'s sample whose labels include `labels`; 0 when there is none yet. */
function sample(
  families: readonly ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number {
  // With histograms untyped, one name can head several families (each method, route and status's run of lines).
  const found = families
    .filter((f) => f.name === name)
    .flatMap((f) => f.metrics)
    .find((m) => Object.entries(labels).every(([key, value]) => m.labels?.[key] === value));
  return Number(found?.value ?? 0);
}

describeEachDatabase("metrics", (target) => {
  const dirs: string[] = [];
  let database: OpenDatabase;
  let server: LatchkeyServer;
  let metricsUrl: string;
  /** The public port (the server names PUBLIC_URL as its URL, so the port is read from its log). */
  let apiUrl: string;
  let token: string;
  let email: string;
  let userId: string;

  beforeAll(async () => {
    const config = await target.fresh();
    database = await openMigrated(config);
    const identity = createIdentity({ db: database.db, secret: TEST_SERVER_SECRET, publicUrl: PUBLIC_URL });
    email = `${randomUUID()}@example.test`;
    ({ userId } = await createTestUser(database.db, email, `pw-${randomUUID()}`));
    token = await mintAccessToken(identity, { userId });
    server = await startLatchkeyServer({
      dataDir: config.dataDir,
      ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      secret: TEST_SERVER_SECRET,
      // A pool other than the default's, to see DATABASE_POOL_MAX reach it (PostgreSQL; SQLite ignores it).
      env: { PUBLIC_URL, DATABASE_POOL_MAX: "4" },
      args: ["--metrics-listen", "127.0.0.1:0"],
    });
    metricsUrl = String((await server.waitForEvent("metrics.listening")).url);
    apiUrl = `http://127.0.0.1:${String((await server.waitForEvent("server.listening")).port)}`;
  });
  afterAll(async () => {
    await server?.stop();
    await database?.close();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("counts a push, a pull, a 409 and a 401 by route pattern, and names no user, vault or email", async () => {
    const before = (await scrape(metricsUrl)).samples;
    const vaultId = randomUUID();
    const path = `/api/v1/vaults/${vaultId}`;
    const blob = await sealBlob(newVaultKey(), vaultId, 1, "v1");
    const put = (baseVersion: number) =>
      fetch(`${apiUrl}${path}`, {
        method: "PUT",
        headers: { ...apiHeaders(token), "content-type": "application/json" },
        body: JSON.stringify(pushBody(blob, baseVersion)),
      });
    expect((await put(0)).status).toBe(200);
    expect((await fetch(`${apiUrl}${path}`, { headers: apiHeaders(token) })).status).toBe(200);
    expect((await put(0)).status).toBe(409);
    const revoked = await fetch(`${apiUrl}${path}`, { headers: apiHeaders(`${token}x`) });
    expect(revoked.status).toBe(401);
    // A path no route matches, carrying an id and an email: counted under one fixed label, never its text.
    expect((await fetch(`${apiUrl}/no-such/${vaultId}/${encodeURIComponent(email)}`)).status).toBe(404);
    const scraped = await scrape(metricsUrl);
    const after = scraped.samples;

    const delta = (name: string, labels: Record<string, string> = {}): number =>
      sample(after, name, labels) - sample(before, name, labels);
    const route = "/api/v1/vaults/:vaultId";
    expect(delta("latchkey_vault_pushes_total", { copy: "personal" })).toBe(1);
    expect(delta("latchkey_vault_pulls_total", { copy: "personal" })).toBe(1);
    expect(delta("latchkey_vault_conflicts_total", { copy: "personal" })).toBe(1);
    expect(delta("latchkey_auth_failures_total", { route })).toBe(1);
    expect(delta("latchkey_http_requests_total", { method: "PUT", route, status: "200" })).toBe(1);
    expect(delta("latchkey_http_requests_total", { method: "PUT", route, status: "409" })).toBe(1);
    expect(delta("latchkey_http_requests_total", { method: "GET", route, status: "200" })).toBe(1);
    expect(delta("latchkey_http_requests_total", { method: "GET", route, status: "401" })).toBe(1);
    expect(
      delta("latchkey_http_requests_total", { method: "GET", route: "(unmatched)", status: "404" }),
    ).toBe(1);
    expect(
      delta("latchkey_http_request_duration_seconds_count", { method: "PUT", route, status: "200" }),
    ).toBe(1);

    expect(scraped.families.find((f) => f.name === "latchkey_http_request_duration_seconds")?.type).toBe(
      "HISTOGRAM",
    );
    expect(
      delta("latchkey_http_request_duration_seconds_bucket", {
        le: "+Inf",
        method: "GET",
        route,
        status: "401",
      }),
    ).toBe(1);

    const secrets = [userId, vaultId, email, token, TEST_SERVER_SECRET];
    const values = after.flatMap((family) => family.metrics.flatMap((m) => Object.values(m.labels ?? {})));
    expect(values.length).toBeGreaterThan(20);
    for (const value of values) {
      expect(value).not.toMatch(UUID);
      expect(value).not.toMatch(EMAIL);
      for (const secret of secrets) expect(value).not.toContain(secret);
    }
  });

  it("is not on the public port", async () => {
    const response = await fetch(`${apiUrl}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain("latchkey_http_requests_total");
  });

  it(`shows ${target.kind === "postgres" ? "the PostgreSQL pool" : "the SQLite writer queue"} and the process`, async () => {
    const { families } = await scrape(metricsUrl);
    const names = new Set(families.map((f) => f.name));
    expect(sample(families, "process_resident_memory_bytes")).toBeGreaterThan(0);
    if (target.kind === "postgres") {
      expect(sample(families, "latchkey_db_pool_max")).toBe(4);
      // The server has run its migrations and answered requests: its pool has opened connections.
      expect(sample(families, "latchkey_db_pool_size")).toBeGreaterThanOrEqual(1);
      expect(names).toContain("latchkey_db_pool_in_use");
      expect(names).toContain("latchkey_db_pool_waiting");
      expect(names).not.toContain("latchkey_sqlite_writer_queue_depth");
    } else {
      expect(names).toContain("latchkey_sqlite_writer_queue_depth");
      expect(sample(families, "latchkey_sqlite_writer_queue_depth")).toBe(0);
      expect([...names].filter((name) => name.startsWith("latchkey_db_pool_"))).toEqual([]);
    }
  });

  it("asks for METRICS_TOKEN when one is set", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "lk-metrics-token-"));
    dirs.push(dataDir);
    const metricsToken = randomBytes(32).toString("base64url");
    const config = target.kind === "postgres" ? await target.fresh() : { dataDir };
    const guarded = await startLatchkeyServer({
      dataDir: config.dataDir,
      ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      env: { METRICS_LISTEN: "127.0.0.1:0", METRICS_TOKEN: metricsToken },
    });
    try {
      const url = String((await guarded.waitForEvent("metrics.listening")).url);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const wrong = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}x` } });
      expect(wrong.status).toBe(401);
      const { families } = await scrape(url, { authorization: `Bearer ${metricsToken}` });
      expect(families.map((f) => f.name)).toContain("latchkey_http_requests_total");
      expect(guarded.stdout()).not.toContain(metricsToken);
    } finally {
      await guarded.stop();
    }
  });
});
