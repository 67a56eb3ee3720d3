import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, expect, it } from "vitest";
import { buildApp } from "./app.js";
import { openDatabase, type OpenDatabase } from "./db/index.js";
import { migrateToLatest } from "./db/migrations.js";
import { createIdentity } from "./identity/identity.js";
import { loggerOptions } from "./logging.js";

let dir: string;
let database: OpenDatabase;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-logging-"));
  database = await openDatabase({ dataDir: dir });
  await migrateToLatest(database.db);
});
afterEach(async () => {
  await database.close();
  await rm(dir, { recursive: true, force: true });
});

it("writes one line per request, when it ends, with the redacted request, status and response time", async () => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const identity = createIdentity({
    db: database.db,
    secret: "logging-test-secret-0123456789abcdefghij",
    publicUrl: "http://127.0.0.1:8787",
  });
  const app = buildApp({ db: database.db, identity, logger: loggerOptions({ stream }) });
  const canary = "lk-canary-7a2e41";
  await app.inject({ method: "GET", url: `/healthz?token=${canary}` });
  const refused = await app.inject({
    method: "GET",
    url: "/api/v1/me",
    headers: { authorization: `Bearer ${canary}` },
  });
  expect(refused.statusCode).toBe(401);
  await app.close();

  const perRequest = lines.filter((l) => typeof l.reqId === "string" && l.req !== undefined);
  expect(lines.some((l) => l.msg === "incoming request")).toBe(false);
  expect(
    perRequest.map((l) => [
      l.msg,
      (l.req as { url: string }).url,
      (l.res as { statusCode: number }).statusCode,
    ]),
  ).toEqual([
    ["request completed", "/healthz?token=[redacted]", 200],
    ["request completed", "/api/v1/me", 401],
  ]);
  for (const line of perRequest) {
    expect(line.level).toBe(30);
    expect(line.responseTime).toEqual(expect.any(Number));
    expect((line.req as { method: string }).method).toBe("GET");
  }
  // One line per request id.
  const ids = lines.filter((l) => typeof l.reqId === "string").map((l) => l.reqId);
  expect(new Set(ids).size).toBe(ids.length);
  expect(JSON.stringify(lines)).not.toContain(canary);
});
