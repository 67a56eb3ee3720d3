import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../db/index.js";
import { migrateToLatest } from "../db/migrations.js";
import { outboxOptions, printOutbox, type OutboxEntry } from "./admin.js";
import { enqueueNotices } from "./service.js";

let dir: string;
let opened: OpenDatabase;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-outbox-admin-"));
  opened = await openDatabase({ dataDir: dir });
  await migrateToLatest(opened.db);
});
afterEach(async () => {
  await opened.close();
  await rm(dir, { recursive: true, force: true });
});

const AT = "2026-12-07T10:00:00.000Z";
const LATER = "2026-12-07T10:05:00.000Z";

/** One row in each status, oldest first: queued, retrying, sent, failed. */
async function fourRows(): Promise<void> {
  for (const [i, recipient] of ["queued", "retrying", "sent", "failed"].entries()) {
    await enqueueNotices(
      opened.db,
      [
        {
          recipient: `${recipient}@example.test`,
          kind: "impact",
          subject: `S ${recipient}`,
          body: `B ${recipient}\n`,
        },
      ],
      `2026-12-07T10:00:0${i}.000Z`,
    );
  }
  const set = (recipient: string, values: Record<string, string | number | null>) =>
    opened.db
      .updateTable("outbox")
      .set(values)
      .where("recipient", "=", `${recipient}@example.test`)
      .execute();
  await set("retrying", {
    attempts: 2,
    next_attempt_at: LATER,
    last_error: "ECONNECTION: could not reach it",
  });
  await set("sent", { attempts: 1, next_attempt_at: null, sent_at: LATER });
  await set("failed", { attempts: 10, next_attempt_at: null, last_error: "EAUTH: refused (SMTP 535)" });
}

function capture() {
  const out: string[] = [];
  return { out, stdout: { write: (t: string) => out.push(t) } };
}

describe("admin outbox", () => {
  it("says when the outbox is empty", async () => {
    const c = capture();
    expect(
      await printOutbox(opened.db, outboxOptions({ json: false, body: false, limit: undefined }), c),
    ).toBe(0);
    expect(c.out.join("")).toBe("The outbox is empty.\n");
  });

  it("lists status, kind, attempts, recipient and times, newest first, without subjects or bodies", async () => {
    await fourRows();
    const c = capture();
    await printOutbox(opened.db, outboxOptions({ json: false, body: false, limit: undefined }), c);
    const lines = c.out.join("").trimEnd().split("\n");
    expect(lines[0]).toMatch(
      /^STATUS\s+KIND\s+ATTEMPTS\s+RECIPIENT\s+QUEUED\s+NEXT TRY \/ SENT\s+LAST ERROR$/,
    );
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      [
        "failed",
        "impact",
        "10",
        "failed@example.test",
        "2026-12-07T10:00:03.000Z",
        "-",
        "EAUTH: refused (SMTP 535)",
      ],
      ["sent", "impact", "1", "sent@example.test", "2026-12-07T10:00:02.000Z", LATER, "-"],
      [
        "retrying",
        "impact",
        "2",
        "retrying@example.test",
        "2026-12-07T10:00:01.000Z",
        LATER,
        "ECONNECTION: could not reach it",
      ],
      ["queued", "impact", "0", "queued@example.test", AT, AT, "-"],
    ]);
    expect(c.out.join("")).not.toMatch(/\bB (queued|sent)|S queued/);
  });

  it("prints JSON for scripts, with bodies only when asked", async () => {
    await fourRows();
    const plain = capture();
    await printOutbox(opened.db, outboxOptions({ json: true, body: false, limit: "2" }), plain);
    const { notices } = JSON.parse(plain.out.join("")) as { notices: OutboxEntry[] };
    expect(notices.map((n) => [n.status, n.recipient, n.attempts, n.sentAt, n.nextAttemptAt])).toEqual([
      ["failed", "failed@example.test", 10, null, null],
      ["sent", "sent@example.test", 1, LATER, null],
    ]);
    expect(notices[0]).not.toHaveProperty("body");
    const withBody = capture();
    await printOutbox(opened.db, outboxOptions({ json: true, body: true, limit: "1" }), withBody);
    expect((JSON.parse(withBody.out.join("")) as { notices: OutboxEntry[] }).notices[0]?.body).toBe(
      "B failed\n",
    );
    const text = capture();
    await printOutbox(opened.db, outboxOptions({ json: false, body: true, limit: "1" }), text);
    expect(text.out.join("")).toContain("\n    Subject: S failed\n    B failed\n");
  });

  it.each(["0", "-1", "x", "10001", "1.5"])("refuses --limit %s", (limit) => {
    expect(() => outboxOptions({ json: false, body: false, limit })).toThrow(
      expect.objectContaining({ code: "LK_USAGE" }),
    );
  });
});
