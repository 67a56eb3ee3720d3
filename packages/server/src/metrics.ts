/**
 * The server's Prometheus metrics (`--metrics-listen`, off by default): requests and their latency per route and
 * status, vault pushes, pulls and conflicts, authentication failures and rate-limit hits, the database's pool or
 * writer-thread queue, and the process's own metrics. Served on a listener of their own (startMetricsListener),
 * never on the public port: an operator's scraper reaches them, the internet does not.
 *
 * Labels name only what the server's own code fixes: the method, the route's PATTERN as registered
 * (/api/v1/vaults/:vaultId, never the URL asked for), the status, the kind of vault copy. Never a user id, vault id,
 * organisation slug, email, token or address: those would put who does what on every dashboard, and give each
 * user a series of their own.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { API_PREFIX, ORGS_PATH } from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { CI_PULL_SEGMENT } from "./ci/job-routes.js";
import type { PoolStats } from "./db/postgres.js";

/** Where the database's gauges are read from at each scrape: one of the two, by dialect. */
export interface MetricsSources {
  /** PostgreSQL: this process's connection pool. */
  pool?: () => PoolStats;
  /** SQLite: the writes handed to the writer thread and not answered yet (sync/writer-thread.ts). */
  writerQueue?: () => number;
}

/** The metrics of one server process. */
export interface Metrics {
  readonly registry: Registry;
  /** Counts every answer of `app` (one onResponse hook); call before the app's plugins load. */
  instrument(app: FastifyInstance): void;
}

/** The route label of a request no route matched (a 404): one series, whatever was asked for. */
export const UNMATCHED_ROUTE = "(unmatched)";

type Copy = "personal" | "org" | "ci";
type VaultOperation = { kind: "push" | "pull"; copy: Copy };

const ORG_VAULT = `${ORGS_PATH}/:slug/vaults/:vaultId`;
/**
 * The routes that push or pull a vault's version, by method and pattern. A share is a push too (a new version with
 * its wrapped keys). metrics.test.ts checks each is a route the application has.
 */
export const VAULT_OPERATIONS: ReadonlyMap<string, VaultOperation> = new Map<string, VaultOperation>([
  [`PUT ${API_PREFIX}/vaults/:vaultId`, { kind: "push", copy: "personal" }],
  [`GET ${API_PREFIX}/vaults/:vaultId`, { kind: "pull", copy: "personal" }],
  [`PUT ${ORG_VAULT}`, { kind: "push", copy: "org" }],
  [`PUT ${ORG_VAULT}/share`, { kind: "push", copy: "org" }],
  [`GET ${ORG_VAULT}`, { kind: "pull", copy: "org" }],
  [`GET ${API_PREFIX}/vaults/:vaultId/${CI_PULL_SEGMENT}`, { kind: "pull", copy: "ci" }],
]);

/**
 * Latency buckets in seconds: a pull answered from the read cache takes well under a millisecond, a group-committed
 * push a few, a sign-in's Argon2 some hundred.
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A fresh registry with the server's metrics, reading the database's gauges from `sources`. */
export function createMetrics(sources: MetricsSources = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: "latchkey_http_requests_total",
    help: "HTTP answers by method, route pattern and status.",
    labelNames: ["method", "route", "status"] as const,
    registers,
  });
  const latency = new Histogram({
    name: "latchkey_http_request_duration_seconds",
    help: "Time from a request's arrival to its answer sent, by method, route pattern and status.",
    labelNames: ["method", "route", "status"] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const pushes = new Counter({
    name: "latchkey_vault_pushes_total",
    help: "Vault versions accepted (2xx answers to a push or share), by kind of copy.",
    labelNames: ["copy"] as const,
    registers,
  });
  const pulls = new Counter({
    name: "latchkey_vault_pulls_total",
    help: "Vault versions answered (2xx answers to a pull), by kind of copy.",
    labelNames: ["copy"] as const,
    registers,
  });
  const conflicts = new Counter({
    name: "latchkey_vault_conflicts_total",
    help: "Pushes refused with 409 (based on an older version, or a stale CI escrow), by kind of copy.",
    labelNames: ["copy"] as const,
    registers,
  });
  const authFailures = new Counter({
    name: "latchkey_auth_failures_total",
    help: "401 answers (missing, expired or revoked bearer tokens, wrong passwords or codes, refused CI tokens), by route pattern.",
    labelNames: ["route"] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: "latchkey_rate_limited_total",
    help: "429 answers (a sign-in, pairing, membership or CI exchange limit), by route pattern.",
    labelNames: ["route"] as const,
    registers,
  });
  // Created before any request, so that a scrape shows them at 0 rather than not at all.
  for (const copy of ["personal", "org", "ci"] as const) {
    pushes.labels(copy);
    pulls.labels(copy);
    conflicts.labels(copy);
  }

  const { pool, writerQueue } = sources;
  if (pool !== undefined) {
    const gauge = (name: string, help: string, read: (stats: PoolStats) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(pool()));
        },
      });
    };
    gauge("latchkey_db_pool_max", "Connections this process's PostgreSQL pool may open.", (s) => s.max);
    gauge("latchkey_db_pool_size", "Connections this process's PostgreSQL pool has open.", (s) => s.total);
    gauge(
      "latchkey_db_pool_in_use",
      "Pool connections running a query or transaction.",
      (s) => s.total - s.idle,
    );
    gauge("latchkey_db_pool_waiting", "Queries waiting for a free pool connection.", (s) => s.waiting);
  }
  if (writerQueue !== undefined) {
    new Gauge({
      name: "latchkey_sqlite_writer_queue_depth",
      help: "Pushes and rewraps handed to the SQLite writer thread and not answered yet.",
      registers,
      collect() {
        this.set(writerQueue());
      },
    });
  }

  return {
    registry,
    instrument: (app) => {
      app.addHook("onResponse", (request, reply, done) => {
        const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
        const status = reply.statusCode;
        const labels = { method: request.method, route, status: String(status) };
        requests.inc(labels);
        latency.observe(labels, reply.elapsedTime / 1000);
        if (status === 401) authFailures.inc({ route });
        else if (status === 429) rateLimited.inc({ route });
        const operation = VAULT_OPERATIONS.get(`${request.method} ${route}`);
        if (operation !== undefined) {
          if (status >= 200 && status < 300)
            (operation.kind === "push" ? pushes : pulls).inc({ copy: operation.copy });
          else if (status === 409 && operation.kind === "push") conflicts.inc({ copy: operation.copy });
        }
        done();
      });
    },
  };
}

/** Where the metrics listener listens, and the bearer token a scrape must carry (METRICS_TOKEN), if any. */
export interface MetricsListen {
  host: string;
  port: number;
  token: string | undefined;
}

/** The running metrics listener. */
export interface MetricsListener {
  /** http://HOST:PORT of the listener (the port it got, with port 0). */
  readonly url: string;
  close(): Promise<void>;
}

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * Serves `GET /metrics` of `metrics` on its own listener (a plain node:http server: none of the application's
 * routes, hooks or logs). With a token, a scrape without `Authorization: Bearer TOKEN` gets a 401; the token is
 * compared by its hash in constant time, so its length and prefix do not show in the answer's timing.
 */
export async function startMetricsListener(
  metrics: Metrics,
  listen: MetricsListen,
): Promise<MetricsListener> {
  const expected = listen.token === undefined ? undefined : sha256(`Bearer ${listen.token}`);
  const answer = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? "/").split("?", 1)[0];
    if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) {
      response
        .writeHead(404, { "content-type": "text/plain; charset=utf-8" })
        .end("Not found: try GET /metrics\n");
      return;
    }
    if (expected !== undefined && !timingSafeEqual(sha256(request.headers.authorization ?? ""), expected)) {
      response
        .writeHead(401, {
          "content-type": "text/plain; charset=utf-8",
          "www-authenticate": 'Bearer realm="metrics"',
        })
        .end("This listener needs the bearer token METRICS_TOKEN.\n");
      return;
    }
    const body = await metrics.registry.metrics();
    response.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" });
    response.end(request.method === "HEAD" ? undefined : body);
  };
  const server: Server = createServer((request, response) => {
    answer(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
