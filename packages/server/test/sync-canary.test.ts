// Issue 6 point 9, canary: a canary secret sealed into vault blobs as the CLI seals them (core's sealEnvelope,
// associated data syncBlobContext) is pushed and pulled 1,000 times over real HTTP with a real token through the
// real app and its real logger configuration; afterwards no spelling of it (raw, base64 at every alignment, hex)
// occurs in the SQLite files (db, -wal, -shm), in any PostgreSQL table (SELECT * of every table), in the
// server's JSON log lines, or in the audit rows — and the bearer token, blobs and wrapped keys are not in the
// logs either. Positive controls show each place scanned does hold what it should (the ciphertext, the request
// lines), so an empty scan is not an accident.
import { randomBytes, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import {
  fromBase64,
  openEnvelope,
  randomKey,
  sealEnvelope,
  syncBlobContext,
  toBase64,
  utf8Decode,
  utf8Encode,
  type PullResponse,
  type PushResponse,
} from "@latchkey/core";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseConfig, OpenDatabase } from "../src/db/index.js";
import { loggerOptions } from "../src/logging.js";
import { describeEachDatabase } from "./databases.js";
import {
  canaryNeedles,
  countCanary,
  apiHeaders,
  expectedSignature,
  openMigrated,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const ROUNDS = 1_000;

describe("canary scanner (positive control)", () => {
  it("finds the canary raw, in hex and in base64 at every alignment, inside longer text", () => {
    const canary = `lk-canary-${randomBytes(20).toString("hex")}`;
    const needles = canaryNeedles(canary);
    const spellings = [
      Buffer.from(`x${canary}y`),
      Buffer.from(`..${Buffer.from(canary).toString("hex")}..`),
      Buffer.from(`..${Buffer.from(canary).toString("hex").toUpperCase()}..`),
      ...[0, 1, 2, 3, 4].map((pad) =>
        Buffer.from(`{"v":"${Buffer.from(`${"p".repeat(pad)}${canary}tail`).toString("base64")}"}`),
      ),
      Buffer.from(Buffer.from(`ab${canary}`).toString("base64url")),
    ];
    for (const haystack of spellings)
      expect(countCanary(haystack, needles), haystack.toString()).toBeGreaterThan(0);
    expect(countCanary(Buffer.from("nothing to see here"), needles)).toBe(0);
  });
});

describeEachDatabase("sync canary", (target) => {
  let config: DatabaseConfig;
  let database: OpenDatabase;
  let server: SyncServer;
  let alice: Caller;
  const logLines: string[] = [];
  const canary = `lk-canary-${randomBytes(20).toString("hex")}`;
  const needles = canaryNeedles(canary);
  const vaultId = randomUUID();
  const blobs: string[] = [];
  const wrappedKeys: string[] = [];

  beforeAll(async () => {
    config = await target.fresh();
    database = await openMigrated(config);
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(
          ...chunk
            .toString("utf8")
            .split("\n")
            .filter((l) => l !== ""),
        );
        done();
      },
    });
    // The server's own logger configuration, at its most verbose.
    server = await startSyncServer(database, {
      listen: true,
      logger: loggerOptions({ level: "trace", stream }),
    });
    alice = await server.caller("canary@example.test");
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  it(`pushes and pulls the canary ${ROUNDS} times`, async () => {
    const vaultKey = randomKey();
    const wrappingKey = randomKey();
    const path = `/api/v1/vaults/${vaultId}`;
    const url = `${server.url}${path}`;
    for (let i = 0; i < ROUNDS; i++) {
      const version = i + 1;
      const document = JSON.stringify({ env: { default: { API_TOKEN: canary, ROUND: String(i) } } });
      const encryptedBlob = toBase64(
        await sealEnvelope(vaultKey, utf8Encode(document), syncBlobContext(vaultId, version)),
      );
      const wrappedKey = toBase64(
        await sealEnvelope(wrappingKey, vaultKey, utf8Encode(`latchkey-vault-key:${vaultId}`)),
      );
      blobs.push(encryptedBlob);
      wrappedKeys.push(wrappedKey);
      const pushed = await fetch(url, {
        method: "PUT",
        headers: { ...apiHeaders(alice.token), "content-type": "application/json" },
        body: JSON.stringify({
          encryptedBlob,
          wrappedKey,
          schema: { API_TOKEN: { required: true, secret: true } },
          name: "canary-project",
          baseVersion: i,
        }),
      });
      expect(pushed.status).toBe(200);
      expect(((await pushed.json()) as PushResponse).version).toBe(version);

      const pullHeaders = apiHeaders(alice.token);
      const pulled = await fetch(url, { headers: pullHeaders });
      const text = await pulled.text();
      expect(pulled.status).toBe(200);
      const requestId = pullHeaders["x-latchkey-request-id"];
      expect(pulled.headers.get("x-latchkey-signature")).toBe(
        expectedSignature(alice.token, { method: "GET", path, requestId, status: 200 }, text),
      );
      const copy = JSON.parse(text) as PullResponse;
      expect(copy.version).toBe(version);
      // The canary really travels: the pulled blob opens to it (checked every 100 rounds to keep the loop fast).
      if (i % 100 === 0 || i === ROUNDS - 1) {
        const opened = utf8Decode(
          await openEnvelope(vaultKey, fromBase64(copy.encryptedBlob), syncBlobContext(vaultId, version)),
        );
        expect(opened).toContain(canary);
      }
    }
  }, 120_000);

  it("leaves no trace of the canary in the database", async () => {
    let dump: Buffer;
    if (target.kind === "sqlite") {
      // Read while the database is open, so the -wal file still holds what has not been checkpointed.
      const files = await readdir(config.dataDir);
      expect(files).toEqual(expect.arrayContaining(["latchkey.sqlite", "latchkey.sqlite-wal"]));
      const contents = await Promise.all(files.map((f) => readFile(join(config.dataDir, f))));
      dump = Buffer.concat(contents);
      console.log(`[sync-canary] sqlite: scanned ${files.join(", ")} (${dump.length} bytes)`);
    } else {
      const tables = await sql<{ table_name: string }>`
        select table_name from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(database.db);
      const parts: string[] = [];
      for (const { table_name } of tables.rows) {
        const rows = await sql`select * from ${sql.table(table_name)}`.execute(database.db);
        parts.push(`${table_name}:${JSON.stringify(rows.rows)}`);
      }
      dump = Buffer.from(parts.join("\n"));
      console.log(
        `[sync-canary] postgres: scanned ${tables.rows.length} tables (${tables.rows.map((t) => t.table_name).join(", ")}), ${dump.length} bytes`,
      );
      expect(tables.rows.map((t) => t.table_name)).toEqual(
        expect.arrayContaining(["vaults", "vault_heads", "vault_versions", "audit_events", "users"]),
      );
    }
    // Positive control: the latest ciphertext is in what was scanned.
    expect(dump.includes(Buffer.from(blobs.at(-1)!))).toBe(true);
    expect(countCanary(dump, needles)).toBe(0);
  });

  it("leaves no trace of the canary in the audit rows, which record every push", async () => {
    const rows = await database.db
      .selectFrom("audit_events")
      .selectAll()
      .where("vault_id", "=", vaultId)
      .execute();
    expect(rows.filter((r) => r.action === "vault.push")).toHaveLength(ROUNDS);
    const text = Buffer.from(JSON.stringify(rows));
    expect(countCanary(text, needles)).toBe(0);
    for (const secret of [blobs.at(-1)!, wrappedKeys.at(-1)!]) expect(text.includes(secret)).toBe(false);
  });

  it("leaves no canary, token, blob or wrapped key in the server's log lines", () => {
    // Positive control: the requests were logged.
    const requestLines = logLines.filter((l) => l.includes(`/api/v1/vaults/${vaultId}`));
    expect(requestLines.length).toBeGreaterThanOrEqual(2 * ROUNDS);
    const log = Buffer.from(logLines.join("\n"));
    console.log(`[sync-canary] ${target.kind}: scanned ${logLines.length} log lines (${log.length} bytes)`);
    expect(countCanary(log, needles)).toBe(0);
    expect(log.includes(Buffer.from(alice.token))).toBe(false);
    expect(countCanary(log, canaryNeedles(alice.token))).toBe(0);
    expect(blobs.some((b) => log.includes(Buffer.from(b)))).toBe(false);
    expect(wrappedKeys.some((k) => log.includes(Buffer.from(k)))).toBe(false);
  });
});
