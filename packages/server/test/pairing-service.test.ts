// The pairing service on SQLite and PostgreSQL, below the routes: what the HTTP suite (pairing-routes.test.ts)
// cannot steer — the code drawn (a collision with a pending code is drawn again), the sweep of expired pairings,
// and the stored rows themselves.
import { randomUUID } from "node:crypto";
import { fromBase64, openPairingKey, pairingCodeHash, PAIRING_TTL_SECONDS, toHex } from "@latchkey/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { joinPairing } from "../src/pairing/data.js";
import {
  createPairingService,
  type PairingActor,
  type PairingService,
  type StepUpSpend,
} from "../src/pairing/service.js";
import { describeEachDatabase } from "./databases.js";
import { approverKeys, newDevice, sealedWrappingKey } from "./pairing-support.js";
import { createTestUser } from "./support/identity.js";
import { openMigrated } from "./sync-support.js";

const proof: StepUpSpend = { method: "password", record: () => Promise.resolve(true) };

describeEachDatabase("pairing service", (target) => {
  let database: OpenDatabase;
  let clock = Date.parse("2026-12-08T10:00:00.000Z");
  let service: PairingService;
  let userId: string;
  const now = () => new Date(clock);

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    service = createPairingService({ db: database.db, now, randomId: randomUUID });
    userId = (await createTestUser(database.db, `${randomUUID()}@example.test`, "pw-service-long-enough"))
      .userId;
  });
  afterAll(async () => {
    await database?.close();
  });

  const session = (): PairingActor => ({ userId, grantId: randomUUID(), ip: "192.0.2.1" });
  const row = (id: string) =>
    database.db.selectFrom("pairings").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

  it("draws another code when the first collides with one of the user's pending codes", async () => {
    // Zero bytes make the code 222222 (the alphabet's first character six times).
    const zeros = (length: number) => new Uint8Array(length);
    const first = createPairingService({ db: database.db, now, randomId: randomUUID, randomBytes: zeros });
    const created = await first.create(
      session(),
      { label: "first", commitment: (await newDevice()).commitment },
      proof,
    );
    expect(created).toMatchObject({ kind: "created", code: "222222" });

    let draws = 0;
    const collideOnce = (length: number) =>
      draws++ === 0 ? new Uint8Array(length) : crypto.getRandomValues(new Uint8Array(length));
    const second = createPairingService({
      db: database.db,
      now,
      randomId: randomUUID,
      randomBytes: collideOnce,
    });
    const again = await second.create(
      session(),
      { label: "second", commitment: (await newDevice()).commitment },
      proof,
    );
    expect(again.kind).toBe("created");
    if (again.kind !== "created") return;
    expect(again.code).not.toBe("222222");
    expect(draws).toBeGreaterThan(1);

    // With every draw colliding, create fails and leaves nothing behind.
    const stuck = createPairingService({ db: database.db, now, randomId: randomUUID, randomBytes: zeros });
    await expect(
      stuck.create(session(), { label: "third", commitment: (await newDevice()).commitment }, proof),
    ).rejects.toThrow(/no free pairing code/);
    const labels = await database.db
      .selectFrom("pairings")
      .select("label")
      .where("user_id", "=", userId)
      .where("label", "=", "third")
      .execute();
    expect(labels).toEqual([]);
    await service.revokeAll(session());
  });

  it("goes from create to consume, and the sealed key opens on the new device and is gone from the row", async () => {
    const creator = session();
    const approver = session();
    const device = await newDevice();
    const created = await service.create(creator, { label: "laptop", commitment: device.commitment }, proof);
    if (created.kind !== "created") throw new Error(created.kind);
    const a = await approverKeys();
    expect((await service.join(approver, created.code.toLowerCase(), a.publicKey)).kind).toBe("ok");
    expect((await service.reveal(creator, created.pairingId, device.reveal)).kind).toBe("ok");
    const { sealedKey, wrappingKey } = await sealedWrappingKey(a.keys, device, "laptop", created.code);
    expect((await service.approve(approver, created.pairingId, sealedKey)).kind).toBe("ok");
    expect((await row(created.pairingId)).sealed_key).toBe(sealedKey);

    const consumed = await service.consume(creator, created.pairingId);
    if (consumed.kind !== "consumed") throw new Error(consumed.kind);
    const binding = {
      label: "laptop",
      code: created.code,
      newDeviceKey: device.keys.publicKey,
      approverKey: a.keys.publicKey,
    };
    expect(await openPairingKey(device.keys, binding, fromBase64(consumed.sealedKey))).toEqual({
      wrappingKey,
      sharingKey: null,
    });
    expect(await row(created.pairingId)).toMatchObject({ status: "consumed", sealed_key: null });
  });

  it("lets exactly one of many concurrent join statements move a pending pairing (no per-user lock before it)", async () => {
    // The route's join first counts the attempt on the user's row, which already orders one user's joins on
    // PostgreSQL; here the statements race on the pairing's row alone, each in its own transaction.
    const created = await service.create(
      session(),
      { label: "raced", commitment: (await newDevice()).commitment },
      proof,
    );
    if (created.kind !== "created") throw new Error(created.kind);
    const codeHash = toHex(await pairingCodeHash(created.code));
    const at = now().toISOString();
    const winners = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        database.db
          .transaction()
          .execute((trx) =>
            joinPairing(trx, { userId, codeHash, grantId: randomUUID(), approverKey: `key-${i}`, now: at }),
          ),
      ),
    );
    const joined = winners.filter((w) => w !== undefined);
    expect(joined).toHaveLength(1);
    expect((await row(created.pairingId)).approver_key).toBe(joined[0]!.approver_key);
    await service.revokeAll(session());
  });

  it("sweeps expired pairings: an approved one loses its sealed key, and its code is free again", async () => {
    const creator = session();
    const approver = session();
    const device = await newDevice();
    const created = await service.create(creator, { label: "old", commitment: device.commitment }, proof);
    if (created.kind !== "created") throw new Error(created.kind);
    const a = await approverKeys();
    await service.join(approver, created.code, a.publicKey);
    await service.reveal(creator, created.pairingId, device.reveal);
    const { sealedKey } = await sealedWrappingKey(a.keys, device, "old", created.code);
    await service.approve(approver, created.pairingId, sealedKey);

    clock += PAIRING_TTL_SECONDS * 1000;
    // Past its expiry, nobody can take the key, even before the sweep.
    expect(await service.consume(creator, created.pairingId)).toEqual({
      kind: "failed",
      reason: "expired",
      status: "expired",
    });
    // The next create (anyone's) sweeps it.
    await service.create(session(), { label: "next", commitment: (await newDevice()).commitment }, proof);
    expect(await row(created.pairingId)).toMatchObject({ status: "expired", sealed_key: null });

    // A day later it is forgotten.
    clock += 24 * 60 * 60 * 1000 + 1;
    await service.create(session(), { label: "later", commitment: (await newDevice()).commitment }, proof);
    const left = await database.db
      .selectFrom("pairings")
      .select("id")
      .where("id", "=", created.pairingId)
      .execute();
    expect(left).toEqual([]);
  });
});
