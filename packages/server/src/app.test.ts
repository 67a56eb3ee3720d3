import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { openDatabase, type OpenDatabase } from "./db/index.js";
import { MIGRATIONS, migrateToLatest } from "./db/migrations.js";
import { loggerOptions, redactUrl } from "./logging.js";
import type { Database } from "./db/schema.js";
import { createIdentity } from "./identity/identity.js";

/** The identity service every app has; these tests do not use it beyond its presence. */
const identityFor = (db: Kysely<Database>) =>
  createIdentity({
    db,
    secret: "app-test-secret-0123456789abcdefghijkl",
    publicUrl: "http://127.0.0.1:8787",
  });

let dir: string;
let database: OpenDatabase;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-app-"));
  database = await openDatabase({ dataDir: dir });
});
afterEach(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

describe("/healthz", () => {
  it("answers 200 while the process is up, whatever the database", async () => {
    const app = buildApp({ db: database.db, identity: identityFor(database.db) });
    await database.close();
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
    expect(res.headers["cache-control"]).toBe("no-store");
    await app.close();
  });
});

describe("the client address", () => {
  // What the sign-in limits count. light-my-request's peer is 127.0.0.1, as a proxy on the same host would be.
  const addressSeen = async (trustProxy: readonly string[] | undefined, forwardedFor: string) => {
    const app = buildApp({
      db: database.db,
      identity: identityFor(database.db),
      ...(trustProxy === undefined ? {} : { trustProxy }),
    });
    app.get("/address", (request) => ({ ip: request.ip }));
    const res = await app.inject({
      method: "GET",
      url: "/address",
      headers: { "x-forwarded-for": forwardedFor },
    });
    await app.close();
    return res.json<{ ip: string }>().ip;
  };

  it("is the one the trusted proxy saw, never an entry the client wrote at the left of X-Forwarded-For", async () => {
    expect(await addressSeen(["loopback"], "203.0.113.7")).toBe("203.0.113.7");
    expect(await addressSeen(["loopback"], "198.51.100.1, 203.0.113.7")).toBe("203.0.113.7");
    // A client on a public address claiming a private one (or the owner's) is still its own address.
    expect(await addressSeen(["loopback", "uniquelocal"], "10.0.0.9, 203.0.113.7")).toBe("203.0.113.7");
  });

  it("is the peer's when no proxy is trusted, whatever X-Forwarded-For says", async () => {
    expect(await addressSeen(undefined, "203.0.113.7")).toBe("127.0.0.1");
    expect(await addressSeen([], "203.0.113.7")).toBe("127.0.0.1");
  });
});

describe("/readyz", () => {
  it("answers 200 when the database is reachable and every migration has run", async () => {
    await migrateToLatest(database.db);
    const app = buildApp({ db: database.db, identity: identityFor(database.db) });
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ready" });
    await app.close();
  });

  it("answers 503 migrations_pending on a database that has not been migrated", async () => {
    const app = buildApp({ db: database.db, identity: identityFor(database.db) });
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: "unavailable", reason: "migrations_pending" });
    await app.close();
  });

  it("answers 503 migrations_pending when this server knows a migration the database lacks", async () => {
    await migrateToLatest(database.db);
    const newer = {
      ...MIGRATIONS,
      "9999_next": {
        async up(db: Kysely<unknown>) {
          await db.schema.createTable("next").addColumn("id", "text").execute();
        },
      },
    };
    const app = buildApp({ db: database.db, identity: identityFor(database.db), migrations: newer });
    const before = await app.inject({ method: "GET", url: "/readyz" });
    expect(before.statusCode).toBe(503);
    expect(before.json()).toMatchObject({ reason: "migrations_pending" });
    await migrateToLatest(database.db, newer);
    const after = await app.inject({ method: "GET", url: "/readyz" });
    expect(after.statusCode).toBe(200);
    await app.close();
  });

  it("answers 503 database_unreachable once the database is closed", async () => {
    await migrateToLatest(database.db);
    const app = buildApp({ db: database.db, identity: identityFor(database.db) });
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    await database.close();
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: "unavailable", reason: "database_unreachable" });
    await app.close();
  });

  it("answers 503 database_unreachable when the database does not answer in time", async () => {
    await migrateToLatest(database.db);
    // A transaction holds the single SQLite connection, so the readiness query queues behind it.
    let finish!: () => void;
    const held = database.db.transaction().execute(() => new Promise<void>((resolve) => (finish = resolve)));
    const app = buildApp({ db: database.db, identity: identityFor(database.db), readinessTimeoutMs: 50 });
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ reason: "database_unreachable" });
    finish();
    await held;
    await app.close();
  });
});

describe("logging", () => {
  it("writes JSON lines with no credential from headers or query strings", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    await migrateToLatest(database.db);
    const app = buildApp({
      db: database.db,
      identity: identityFor(database.db),
      logger: loggerOptions({ stream }),
    });
    const canary = "lk-canary-5f1d0c7e9b";
    const headers = { authorization: `Bearer ${canary}`, cookie: `session=${canary}` };
    await app.inject({ method: "GET", url: `/readyz?code=${canary}&state=${canary}`, headers });
    const missing = await app.inject({ method: "GET", url: `/nowhere?token=${canary}`, headers });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ message: "No route for GET /nowhere" });
    // A log call that passes the request headers along must still not carry them.
    app.log.info({ req: { method: "GET", url: "/x", headers } }, "explicit");
    app.log.info({ headers }, "bare headers");
    await app.close();

    // One line per request (logging.ts OneLinePerRequest) for the two requests, then the two explicit calls.
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(lines.join("\n")).not.toContain(canary);
    const urls = lines.map((l) => JSON.parse(l).req?.url).filter(Boolean);
    expect(urls).toContain("/readyz?code=[redacted]&state=[redacted]");
    const bare = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "bare headers");
    expect(bare.headers.authorization).toBe("[redacted]");
  });

  it("answers a URL the router cannot take without repeating it, in the answer or the log", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    const app = buildApp({
      db: database.db,
      identity: identityFor(database.db),
      logger: loggerOptions({ stream }),
    });
    const canary = "lk-canary-2b8e41f7a3";
    const cases: Array<[string, number, string]> = [
      // Bad percent-encoding: fastify's FST_ERR_BAD_URL, on a sync route, an identity page and no route at all.
      [`/api/v1/vaults/%E0%A4%A?code=${canary}`, 400, "The request path is not a valid URL."],
      [`/oidc/%zz?code=${canary}`, 400, "The request path is not a valid URL."],
      [`/%zz?state=${canary}`, 400, "The request path is not a valid URL."],
      // A path parameter over fastify's maxParamLength: FST_ERR_MAX_PARAM_LENGTH.
      [
        `/api/v1/vaults/${canary.repeat(12)}?code=${canary}`,
        414,
        "A segment of the request path is too long.",
      ],
    ];
    for (const [url, status, message] of cases) {
      const res = await app.inject({ method: "GET", url });
      expect(res.body, url).not.toContain(canary);
      expect(res.body, url).not.toContain("?");
      expect(res.statusCode, url).toBe(status);
      expect(res.json(), url).toMatchObject({ statusCode: status, message });
    }
    await app.close();
    expect(lines.join("")).not.toContain(canary);
  });

  it("redacts every query value and keeps the keys", () => {
    expect(redactUrl("/a")).toBe("/a");
    expect(redactUrl("/a?")).toBe("/a?");
    expect(redactUrl("/cb?code=xyz&state=abc&flag")).toBe("/cb?code=[redacted]&state=[redacted]&flag");
    expect(redactUrl("/cb?x=a=b")).toBe("/cb?x=[redacted]");
  });
});
