import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../db/index.js";
import { migrateToLatest } from "../db/migrations.js";
import { listNotices } from "./data.js";
import { enqueueNotice, enqueueNotices, noticeStatus, type Notice } from "./service.js";

let dir: string;
let opened: OpenDatabase;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-outbox-"));
  opened = await openDatabase({ dataDir: dir });
  await migrateToLatest(opened.db);
});
afterEach(async () => {
  await opened.close();
  await rm(dir, { recursive: true, force: true });
});

const notice = (recipient: string): Notice => ({ recipient, kind: "security", subject: "s", body: "b\n" });
const AT = "2026-12-07T10:00:00.000Z";

describe("the outbox service", () => {
  it("queues notices due at the change's time, with no attempt yet", async () => {
    await opened.db.transaction().execute(async (trx) => {
      await enqueueNotice(trx, notice("a@example.test"), AT);
      await enqueueNotices(trx, [notice("b@example.test"), notice("c@example.test")], AT);
    });
    const rows = await listNotices(opened.db, 10);
    expect(rows.map((r) => r.recipient).sort()).toEqual([
      "a@example.test",
      "b@example.test",
      "c@example.test",
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ created_at: AT, next_attempt_at: AT, attempts: 0, sent_at: null });
      expect(noticeStatus(row)).toBe("queued");
    }
    expect(new Set(rows.map((r) => r.id)).size).toBe(3);
  });

  it("queues nothing when the enclosing transaction rolls back", async () => {
    await expect(
      opened.db.transaction().execute(async (trx) => {
        await enqueueNotice(trx, notice("a@example.test"), AT);
        throw new Error("the change failed");
      }),
    ).rejects.toThrow("the change failed");
    expect(await listNotices(opened.db, 10)).toEqual([]);
  });

  it.each([
    [{ sent_at: AT, next_attempt_at: null, last_error: null }, "sent"],
    [{ sent_at: null, next_attempt_at: null, last_error: "ECONNECTION" }, "failed"],
    [{ sent_at: null, next_attempt_at: AT, last_error: null }, "queued"],
    [{ sent_at: null, next_attempt_at: AT, last_error: "ECONNECTION" }, "retrying"],
  ] as const)("reads %j as %s", (row, status) => {
    expect(noticeStatus(row)).toBe(status);
  });
});
