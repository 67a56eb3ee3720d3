// Issue 6 point 9, first bullet: 32 concurrent clients × 200 versioned pushes on ONE vault, over real HTTP with
// real access tokens through the real app, on SQLite and PostgreSQL (one in-process server on a real port; the
// two-process case is sync-concurrency-processes.test.ts). Each client pushes with the base it knows and, on a
// 409, continues from the currentVersion the server reported. Every acknowledged push must be in the history
// exactly once (same version, same blob digest), every other push must have got 409, the versions must be 1..N
// without a gap, and the final copy must be the last acknowledged push: 0 lost updates.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { listVersions } from "../src/sync/data.js";
import { describeEachDatabase } from "./databases.js";
import { CLIENTS, PUSHES, checkRace, pullFinal, pushAuditCount, race } from "./sync-race.js";
import { apiHeaders, openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

describeEachDatabase("sync concurrency, one server", (target) => {
  let database: OpenDatabase;
  let close: () => Promise<void>;
  let url: string;
  let token: string;
  let userId: string;
  let server: SyncServer;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database, { listen: true });
    url = server.url;
    ({ token, userId } = await server.caller());
    close = async () => {
      await server.close();
      await database.close();
    };
  });
  afterAll(async () => close?.());

  it(`keeps every acknowledged push of ${CLIENTS}×${PUSHES} racing pushes, in order, exactly once`, async () => {
    const vaultId = randomUUID();
    const result = await race([url], token, vaultId);
    const history = await listVersions(database.db, vaultId, userId);
    checkRace(
      target.kind,
      result,
      history,
      await pullFinal(url, token, vaultId),
      await pushAuditCount(database, vaultId),
    );
  }, 120_000);

  it("lets exactly one of several users racing to push a new vault id own it; the others get 404", async () => {
    const racers = await Promise.all(Array.from({ length: 8 }, () => server.caller()));
    const vaultId = randomUUID();
    const answers = await Promise.all(
      racers.map((racer) =>
        fetch(`${url}/api/v1/vaults/${vaultId}`, {
          method: "PUT",
          headers: { ...apiHeaders(racer.token), "content-type": "application/json" },
          body: JSON.stringify({
            encryptedBlob: "QUFBQQ==",
            wrappedKey: "QUFBQQ==",
            name: "claim",
            baseVersion: 0,
          }),
        }).then((r) => r.status),
      ),
    );
    expect(answers.filter((s) => s === 200)).toHaveLength(1);
    expect(answers.filter((s) => s === 404)).toHaveLength(racers.length - 1);
    const winner = racers[answers.indexOf(200)]!;
    const owners = await database.db
      .selectFrom("vaults")
      .select("owner_id")
      .where("id", "=", vaultId)
      .execute();
    expect(owners).toEqual([{ owner_id: winner.userId }]);
    const heads = await database.db
      .selectFrom("vault_heads")
      .select("user_id")
      .where("vault_id", "=", vaultId)
      .execute();
    expect(heads).toEqual([{ user_id: winner.userId }]);
  }, 60_000);
});
