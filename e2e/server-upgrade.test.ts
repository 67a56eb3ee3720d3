// A rolling upgrade on one PostgreSQL (docs/operations.md, "Upgrades"): the previous release's server — its own
// code, built from git (support/previous-release.ts) — migrates a fresh database and serves; today's built server
// starts on the same database while a client keeps pushing through the previous one, applies the newer migrations,
// and then both answer pushes and pulls of the same vault, each seeing what the other wrote, with valid response
// signatures and an unbroken history.
//
// The previous release is the last commit whose migration list is a prefix of today's. Migration 0013 is not
// additive, and no commit ever ran the list through 0013 alone (0015 was written first and 0013/0014 after it, so
// a database of the commits that had 0015 without 0013 cannot be upgraded at all — see the docs): the releases here
// start from 0015 and 0016, so the test crosses 0016, 0017 and 0018, never 0013.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pullResponseSchema, pushResponseSchema, toBase64 } from "@latchkey/core";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../packages/server/src/db/index.js";
import { MIGRATIONS } from "../packages/server/src/db/migrations.js";
import { createIdentity } from "../packages/server/src/identity/identity.js";
import { listVersions } from "../packages/server/src/sync/data.js";
import { postgresRuns } from "../packages/server/test/databases.js";
import {
  mintAccessToken,
  TEST_ESCROW_KEY,
  TEST_SERVER_SECRET,
} from "../packages/server/test/support/identity.js";
import { apiHeaders, expectedSignature, fakeWrappedKey } from "../packages/server/test/sync-support.js";
import { runProcess, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import { startPostgres, type PostgresCluster } from "./support/postgres.js";
import { buildRelease, releaseMigrations } from "./support/previous-release.js";

/** Previous releases: commits whose migration list is a prefix of today's, the newest last. */
const PREVIOUS_RELEASES = [
  // server: who wrapped an organisation vault key (0001-0015)
  "bfc571f77def0b317ecab8a6777af9d3e33ba67a",
  // the commit before the dashboard's read routes (0001-0016)
  "1735fb99db9233c354cbf9b11b9a4525d64c4705",
];

const PUBLIC_URL = "http://latchkey.test";
const ALL = Object.keys(MIGRATIONS).sort();

describe.skipIf(!postgresRuns)("rolling upgrade on PostgreSQL: the previous release beside today's", () => {
  let cluster: PostgresCluster;
  const servers: LatchkeyServer[] = [];
  const dirs: string[] = [];
  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => {
    for (const server of servers.splice(0)) await server.stop();
    await cluster.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  async function tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  }

  for (const commit of PREVIOUS_RELEASES) {
    const previous = releaseMigrations(commit);
    it(`serves from ${commit.slice(0, 7)} (through ${previous.at(-1)}) while today's applies ${ALL.slice(previous.length).join(", ")}`, async () => {
      expect(ALL.slice(0, previous.length)).toEqual(previous);
      expect(previous.length).toBeLessThan(ALL.length);
      const script = await buildRelease(commit, await tempDir("lk-release-"));
      const databaseUrl = await cluster.createDatabase();
      // Both processes share the secret and the escrow key, as processes behind one load balancer do; each has
      // its own data directory.
      const env = { LATCHKEY_ESCROW_KEY: toBase64(TEST_ESCROW_KEY.privateKey), PUBLIC_URL };
      const old = await startLatchkeyServer({
        dataDir: await tempDir("lk-old-"),
        databaseUrl,
        secret: TEST_SERVER_SECRET,
        env,
        script,
      });
      servers.push(old);
      const oldUrl = loopback(old);
      expect((await fetch(`${oldUrl}/readyz`)).status).toBe(200);

      const database = await openDatabase({ dataDir: old.dataDir, databaseUrl });
      try {
        expect(await migrationNames(database)).toEqual(previous);
        const identity = createIdentity({
          db: database.db,
          secret: TEST_SERVER_SECRET,
          publicUrl: PUBLIC_URL,
        });
        // The account is made by the previous release's own admin command: today's code writes audit columns
        // that its schema does not have yet.
        const created = await runProcess(
          process.execPath,
          [script, "admin", "create-user", "upgrade@example.test", "--data-dir", old.dataDir],
          { env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...old.env }, input: `pw-${randomUUID()}\n` },
        );
        expect(created.code, created.stderr).toBe(0);
        const userId = created.stdout.trim();
        const token = await mintAccessToken(identity, { userId });
        const client = { token, pushed: new Map<string, Map<number, Pushed>>() };

        const shared = randomUUID();
        for (let i = 0; i < 3; i++) await push(client, oldUrl, shared);
        expect((await pull(client, oldUrl, shared)).version).toBe(3);

        // The upgrade: today's server starts (and migrates) while a client keeps pushing and pulling through the
        // old one, and every one of those requests must succeed: the migrator gives way to the serving processes'
        // transactions (docs/operations.md, "Upgrades"), so a push that meets a migration waits, never fails.
        let upgraded = false;
        let during = 0;
        let after = 0;
        // The first failed request ends the loop and is the test's failure (returned, so it is never an unhandled
        // rejection while the server is still starting).
        const traffic = (async (): Promise<unknown> => {
          try {
            while (after < 5) {
              await push(client, oldUrl, shared);
              expect(await pull(client, oldUrl, shared)).toEqual(latest(client, shared));
              if (upgraded) after++;
              else during++;
            }
            return undefined;
          } catch (err) {
            return err;
          }
        })();
        let failed: unknown;
        let current: LatchkeyServer;
        try {
          current = await startLatchkeyServer({
            dataDir: await tempDir("lk-new-"),
            databaseUrl,
            secret: TEST_SERVER_SECRET,
            env,
          });
        } finally {
          upgraded = true;
          failed = await traffic;
        }
        expect(failed).toBeUndefined();
        // The requests overlapped the migrations: some were sent while today's server was starting.
        expect(during).toBeGreaterThan(0);
        servers.push(current);
        const newUrl = loopback(current);
        const starting = current.logLines().find((l) => l.event === "server.starting");
        expect(starting?.migrationsRun).toEqual(ALL.slice(previous.length));
        expect(await migrationNames(database)).toEqual(ALL);

        // Both ready, each for its own list.
        for (const url of [oldUrl, newUrl]) {
          const readyz = await fetch(`${url}/readyz`);
          expect(readyz.status).toBe(200);
        }
        // Each sees what the other writes, on the vault from before the upgrade and the one pushed across it.
        const other = randomUUID();
        for (const vaultId of [shared, other]) {
          await push(client, oldUrl, vaultId);
          expect(await pull(client, newUrl, vaultId)).toEqual(latest(client, vaultId));
          await push(client, newUrl, vaultId);
          expect(await pull(client, oldUrl, vaultId)).toEqual(latest(client, vaultId));
          await push(client, oldUrl, vaultId);
          expect(await pull(client, newUrl, vaultId)).toEqual(latest(client, vaultId));
          // Every acknowledged version, whichever process took it, is in the history with its blob.
          const pushed = client.pushed.get(vaultId)!;
          const history = await listVersions(database.db, vaultId, userId);
          expect(history.map((h) => [h.version, h.blobSha256])).toEqual(
            [...pushed.keys()].sort((a, b) => a - b).map((v) => [v, pushed.get(v)!.sha256]),
          );
        }
        console.log(
          `[server-upgrade] ${commit.slice(0, 7)} → today: ${during} pushes and pulls through the previous ` +
            `release while ${ALL.slice(previous.length).join(", ")} ran, ${after} after`,
        );
      } finally {
        await database.close();
      }
    }, 240_000);
  }
});

/** One version the test pushed. */
interface Pushed {
  blob: string;
  sha256: string;
}

interface Client {
  token: string;
  pushed: Map<string, Map<number, Pushed>>;
}

/** The loopback address of `server` (its url is PUBLIC_URL, the issuer both processes share). */
function loopback(server: LatchkeyServer): string {
  const line = server.logLines().find((l) => l.event === "server.listening");
  return `http://127.0.0.1:${String(line?.port)}`;
}

async function migrationNames(database: OpenDatabase): Promise<string[]> {
  const result = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
    database.db,
  );
  return result.rows.map((r) => r.name);
}

function latest(client: Client, vaultId: string): { version: number; blob: string } {
  const pushed = client.pushed.get(vaultId)!;
  const version = Math.max(...pushed.keys());
  return { version, blob: pushed.get(version)!.blob };
}

/** Pushes the next version of `vaultId` through `url`; every push must be acknowledged, with its signature. */
async function push(client: Client, url: string, vaultId: string): Promise<void> {
  const pushed = client.pushed.get(vaultId) ?? new Map<number, Pushed>();
  client.pushed.set(vaultId, pushed);
  const base = Math.max(0, ...pushed.keys());
  const path = `/api/v1/vaults/${vaultId}`;
  const blob = randomBytes(64).toString("base64");
  const headers = apiHeaders(client.token);
  const response = await fetch(`${url}${path}`, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({
      encryptedBlob: blob,
      wrappedKey: fakeWrappedKey(),
      name: "upgrade",
      baseVersion: base,
    }),
  });
  const text = await response.text();
  expect(response.status, `push ${base + 1} through ${url}: ${text}`).toBe(200);
  expect(response.headers.get("x-latchkey-signature")).toBe(
    expectedSignature(
      client.token,
      { method: "PUT", path, requestId: headers["x-latchkey-request-id"], status: 200 },
      text,
    ),
  );
  expect(pushResponseSchema.parse(JSON.parse(text)).version).toBe(base + 1);
  pushed.set(base + 1, { blob, sha256: createHash("sha256").update(blob, "base64").digest("hex") });
}

/** The head of `vaultId` pulled through `url`, its signature checked. */
async function pull(
  client: Client,
  url: string,
  vaultId: string,
): Promise<{ version: number; blob: string }> {
  const path = `/api/v1/vaults/${vaultId}`;
  const headers = apiHeaders(client.token);
  const response = await fetch(`${url}${path}`, { headers });
  const text = await response.text();
  expect(response.status, `pull through ${url}: ${text}`).toBe(200);
  expect(response.headers.get("x-latchkey-signature")).toBe(
    expectedSignature(
      client.token,
      { method: "GET", path, requestId: headers["x-latchkey-request-id"], status: 200 },
      text,
    ),
  );
  const body = pullResponseSchema.parse(JSON.parse(text));
  return { version: body.version, blob: body.encryptedBlob };
}
