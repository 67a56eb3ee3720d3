// Issue 6 point 9, first bullet, third case: the race of sync-concurrency.test.ts against TWO built
// `latchkey-server` processes sharing one PostgreSQL (needs `npm run build`), clients spread over both. The same
// race on one SQLite file: each process commits pushes on its own writer thread (sync/writer-thread.ts), so two
// threads of two processes contend for SQLite's write lock.
import { randomUUID } from "node:crypto";
import { toBase64 } from "@latchkey/core";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PostgresCluster } from "../../../e2e/support/postgres.js";
import type { OpenDatabase } from "../src/db/index.js";
import { createIdentity } from "../src/identity/identity.js";
import { listVersions } from "../src/sync/data.js";
import { postgresRuns } from "./databases.js";
import { createTestUser, mintAccessToken, TEST_ESCROW_KEY, TEST_SERVER_SECRET } from "./support/identity.js";
import { CLIENTS, PUSHES, checkRace, pullFinal, pushAuditCount, race } from "./sync-race.js";
import { apiHeaders, openMigrated, startServerProcess, type ServerProcess } from "./sync-support.js";

for (const kind of ["postgres", "sqlite"] as const) {
  describe.skipIf(kind === "postgres" && !postgresRuns)(
    `sync concurrency, two server processes on one ${kind === "postgres" ? "PostgreSQL" : "SQLite file"}`,
    () => {
      let cluster: PostgresCluster | undefined;
      let database: OpenDatabase | undefined;
      const servers: ServerProcess[] = [];
      const dirs: string[] = [];

      beforeAll(async () => {
        if (kind === "postgres") cluster = await startPostgres();
      });
      afterAll(async () => {
        for (const server of servers.splice(0)) await server.stop();
        await database?.close();
        await cluster?.stop();
        await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
      });

      it(`keeps every acknowledged push of ${CLIENTS}×${PUSHES} racing pushes spread over both processes`, async () => {
        // Both processes sit behind one public URL and share the secret and the escrow key, as behind a load
        // balancer; on SQLite they share the data directory (the file), on PostgreSQL the database.
        const publicUrl = "http://latchkey.test";
        const shared = await tempDir();
        const databaseUrl = kind === "postgres" ? await cluster!.createDatabase() : undefined;
        database = await openMigrated({ ...(databaseUrl ? { databaseUrl } : {}), dataDir: shared });
        const env = {
          ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
          LATCHKEY_SERVER_SECRET: TEST_SERVER_SECRET,
          LATCHKEY_ESCROW_KEY: toBase64(TEST_ESCROW_KEY.privateKey),
          PUBLIC_URL: publicUrl,
        };
        const dataDir = async (): Promise<string> => (kind === "sqlite" ? shared : await tempDir());
        servers.push(
          await startServerProcess(await dataDir(), env),
          await startServerProcess(await dataDir(), env),
        );

        // A real account and a real token, written to the shared database by the same identity code the processes
        // run; each process finds it there.
        const identity = createIdentity({ db: database.db, secret: TEST_SERVER_SECRET, publicUrl });
        const user = await createTestUser(database.db, "racer@example.test", `pw-${randomUUID()}`);
        const token = await mintAccessToken(identity, { userId: user.userId });
        for (const server of servers) {
          const me = await fetch(`${server.url}/api/v1/me`, { headers: apiHeaders(token) });
          expect(me.status).toBe(200);
        }

        const vaultId = randomUUID();
        const result = await race(
          servers.map((s) => s.url),
          token,
          vaultId,
        );
        const history = await listVersions(database.db, vaultId, user.userId);
        checkRace(
          `two processes, ${kind}`,
          result,
          history,
          await pullFinal(servers[1]!.url, token, vaultId),
          await pushAuditCount(database, vaultId),
        );
        // Both processes took part: each acknowledged pushes of the clients routed to it.
        const perProcess = [0, 1].map((p) => result.acked.filter((a) => a.client % 2 === p).length);
        console.log(
          `[sync-concurrency] two processes (${kind}): acknowledged per process ${perProcess.join(" / ")}`,
        );
        expect(perProcess.every((n) => n > 0)).toBe(true);
      }, 180_000);

      async function tempDir(): Promise<string> {
        const dir = await mkdtemp(join(tmpdir(), "lk-sync-race-"));
        dirs.push(dir);
        return dir;
      }
    },
  );
}
