// The replay table of CI tokens (src/ci/replay.ts) on both databases: a token (issuer and jti) is spent once,
// also when two exchanges spend it at the same moment; a spend that rolls back leaves it unspent; the sweep
// removes only rows whose token can no longer verify.
import { afterAll, beforeAll, expect, it } from "vitest";
import { spendCiToken, sweepCiTokenUses } from "../src/ci/replay.js";
import { CI_TOKEN_LEEWAY_SECONDS } from "../src/ci/verify.js";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { openMigrated } from "./sync-support.js";

const ISSUER = "https://token.actions.githubusercontent.com";
const EXPIRES = new Date("2026-12-07T10:05:00.000Z");

describeEachDatabase("CI token replay table", (target) => {
  let database: OpenDatabase;
  let second: OpenDatabase | undefined;
  beforeAll(async () => {
    const config = await target.fresh();
    database = await openMigrated(config);
    // A second pool on the same database, so the concurrent spends really are two connections on PostgreSQL.
    if (target.kind === "postgres") second = await openMigrated(config);
  });
  afterAll(async () => {
    await second?.close();
    await database.close();
  });

  const spend = (jti: string, issuer = ISSUER, db = database.db) =>
    db.transaction().execute((trx) => spendCiToken(trx, { issuer, jti, expiresAt: EXPIRES }));

  it("accepts a token's jti once, and the same jti of another issuer once more", async () => {
    expect(await spend("jti-once")).toBe(true);
    expect(await spend("jti-once")).toBe(false);
    expect(await spend("jti-once")).toBe(false);
    expect(await spend("jti-once", "https://gitlab.com")).toBe(true);
    expect(await spend("jti-once", "https://gitlab.com")).toBe(false);
    // Exact strings: another spelling of the jti or the issuer is another row, as it is another token.
    expect(await spend("JTI-ONCE")).toBe(true);
    expect(await spend("jti-once", `${ISSUER}/`)).toBe(true);
  });

  it("lets exactly one of two concurrent spends of the same token through", async () => {
    for (let round = 0; round < 20; round++) {
      const jti = `race-${round}`;
      const results = await Promise.all([spend(jti), spend(jti, ISSUER, (second ?? database).db)]);
      expect(results.filter(Boolean), `round ${round}: ${results.join(", ")}`).toHaveLength(1);
    }
  });

  it("leaves a token unspent when the exchange's transaction rolls back", async () => {
    await expect(
      database.db.transaction().execute(async (trx) => {
        expect(await spendCiToken(trx, { issuer: ISSUER, jti: "rolled-back", expiresAt: EXPIRES })).toBe(
          true,
        );
        throw new Error("the exchange failed after spending");
      }),
    ).rejects.toThrow("the exchange failed after spending");
    expect(await spend("rolled-back")).toBe(true);
    expect(await spend("rolled-back")).toBe(false);
  });

  it("sweeps only the rows of tokens that can no longer verify", async () => {
    const early = new Date("2026-12-07T09:00:00.000Z");
    const late = new Date("2026-12-07T11:00:00.000Z");
    await database.db.transaction().execute(async (trx) => {
      await spendCiToken(trx, { issuer: ISSUER, jti: "sweep-early", expiresAt: early });
      await spendCiToken(trx, { issuer: ISSUER, jti: "sweep-late", expiresAt: late });
    });
    // Within the leeway after its exp, a token still verifies: its row stays.
    const withinLeeway = new Date(early.getTime() + (CI_TOKEN_LEEWAY_SECONDS - 1) * 1000);
    await sweepCiTokenUses(database.db, withinLeeway);
    expect(await spend("sweep-early")).toBe(false);
    const beyondLeeway = new Date(early.getTime() + (CI_TOKEN_LEEWAY_SECONDS + 1) * 1000);
    expect(await sweepCiTokenUses(database.db, beyondLeeway)).toBeGreaterThanOrEqual(1);
    const left = await database.db
      .selectFrom("ci_token_uses")
      .select("jti")
      .where("jti", "like", "sweep-%")
      .execute();
    expect(left.map((row) => row.jti)).toEqual(["sweep-late"]);
  });
});
