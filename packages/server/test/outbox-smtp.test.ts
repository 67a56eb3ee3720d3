// The outbox with a real SMTP server (smtp-server on loopback) and nodemailer, on SQLite and PostgreSQL: a queued
// notice arrives with its recipient and subject; a refused or unreachable SMTP server means retries on the
// injected clock, after the backoff and not before, then delivery once it takes mail again; two senders on one
// database (two connections, as two server processes have) deliver every notice exactly once; a rolled-back
// change queues nothing; and SMTP_URL's password appears in no log line, stored error or admin listing.
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import type { DatabaseConfig, OpenDatabase } from "../src/db/index.js";
import { printOutbox, outboxOptions } from "../src/outbox/admin.js";
import { listNotices } from "../src/outbox/data.js";
import { impactNotices, securityNotice, type NoticeEvent } from "../src/outbox/notices.js";
import { createOutboxSender, type OutboxSenderOptions, type SenderLog } from "../src/outbox/sender.js";
import { enqueueNotices, noticeStatus, type Notice } from "../src/outbox/service.js";
import { createSmtpTransport } from "../src/outbox/smtp.js";
import { describeEachDatabase } from "./databases.js";
import { startSmtpReceiver, type SmtpReceiver } from "./support/smtp.js";
import { openMigrated } from "./sync-support.js";

const USER = "notices@example.test";
const PASSWORD = "Smtp-Pa55word-7f3a9c";
const FROM = "Latchkey <latchkey@latchkey.example.test>";
const T0 = Date.parse("2026-12-07T10:00:00.000Z");
const OPTIONS: Partial<OutboxSenderOptions> = {
  maxAttempts: 5,
  baseDelayMs: 60_000,
  maxDelayMs: 240_000,
  leaseMs: 300_000,
};
/** The sender is driven by runOnce here: its timers must never be used. */
const NO_TIMERS = {
  setTimeout: (): never => {
    throw new Error("no timers in this suite");
  },
  clearTimeout: () => undefined,
};

const rotated: NoticeEvent = {
  type: "sharing-key-rotated",
  account: "ann@example.test",
  at: new Date(T0).toISOString(),
  orgs: ["acme"],
};

function captureLog(): SenderLog & { text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString("utf8");
      done();
    },
  });
  const logger = pino({ level: "trace" }, stream);
  return {
    info: (fields, message) => logger.info(fields, message),
    warn: (fields, message) => logger.warn(fields, message),
    error: (fields, message) => logger.error(fields, message),
    text: () => text,
  };
}

describeEachDatabase("outbox over SMTP", (target) => {
  let database: OpenDatabase;
  let receiver: SmtpReceiver;
  let clock = T0;
  const now = () => new Date(clock);
  const extra: OpenDatabase[] = [];

  let config: DatabaseConfig;

  beforeAll(async () => {
    config = await target.fresh();
    database = await openMigrated(config);
    receiver = await startSmtpReceiver(USER, PASSWORD);
  });
  afterAll(async () => {
    await receiver?.stop();
    await database?.close();
  });
  beforeEach(async () => {
    await database.db.deleteFrom("outbox").execute();
    receiver.received.length = 0;
    receiver.rcptAttempts = 0;
    receiver.refuseRecipients = false;
    clock = T0;
  });
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((d) => d.close()));
  });

  const sender = (options: { db?: OpenDatabase; log?: SenderLog; url?: string } = {}) =>
    createOutboxSender({
      db: (options.db ?? database).db,
      transport: createSmtpTransport({ url: options.url ?? receiver.url, from: FROM }),
      now,
      timers: NO_TIMERS,
      log: options.log ?? captureLog(),
      options: OPTIONS,
    });

  const queue = (notices: readonly Notice[]) =>
    database.db.transaction().execute((trx) => enqueueNotices(trx, notices, new Date(clock).toISOString()));

  it("delivers a queued notice to its recipient, with its subject, from SMTP_FROM", async () => {
    const notices = [
      securityNotice(rotated),
      ...impactNotices(rotated, [{ org: "acme", emails: ["olga@example.test"] }]),
    ];
    await queue(notices);
    expect(await sender().runOnce()).toEqual({ sent: 2, failed: 0 });

    const byRecipient = new Map(receiver.received.map((m) => [m.rcptTo.join(","), m]));
    expect([...byRecipient.keys()].sort()).toEqual(["ann@example.test", "olga@example.test"]);
    for (const notice of notices) {
      const mail = byRecipient.get(notice.recipient)!;
      expect(mail.headers.get("to")).toBe(notice.recipient);
      expect(mail.headers.get("subject")).toBe(notice.subject);
      expect(mail.headers.get("from")).toBe(FROM);
      expect(mail.mailFrom).toBe("latchkey@latchkey.example.test");
      expect(mail.text.trimEnd()).toBe(notice.body.trimEnd());
    }
    const rows = await listNotices(database.db, 10);
    expect(rows.map((r) => [noticeStatus(r), r.attempts, r.sent_at])).toEqual([
      ["sent", 1, new Date(T0).toISOString()],
      ["sent", 1, new Date(T0).toISOString()],
    ]);
    expect(await sender().runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(receiver.received).toHaveLength(2);
  });

  it("retries a notice the SMTP server refuses after the backoff, not before, and delivers it once accepted", async () => {
    await queue([securityNotice(rotated)]);
    receiver.refuseRecipients = true;
    const s = sender();
    expect(await s.runOnce()).toEqual({ sent: 0, failed: 1 });
    const [first] = await listNotices(database.db, 1);
    expect(first).toMatchObject({ attempts: 1, next_attempt_at: new Date(T0 + 60_000).toISOString() });
    expect(first!.last_error).toBe(
      "EENVELOPE: the SMTP server refused the sender or the recipient (SMTP 550)",
    );
    expect(noticeStatus(first!)).toBe("retrying");

    clock += 59_999;
    expect(await s.runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(receiver.rcptAttempts).toBe(1);
    clock += 1;
    expect(await s.runOnce()).toEqual({ sent: 0, failed: 1 });
    expect(receiver.rcptAttempts).toBe(2);
    // The second failure doubles the delay.
    expect((await listNotices(database.db, 1))[0]!.next_attempt_at).toBe(
      new Date(clock + 120_000).toISOString(),
    );

    receiver.refuseRecipients = false;
    clock += 119_999;
    expect(await s.runOnce()).toEqual({ sent: 0, failed: 0 });
    clock += 1;
    expect(await s.runOnce()).toEqual({ sent: 1, failed: 0 });
    expect(receiver.received.map((m) => m.rcptTo)).toEqual([["ann@example.test"]]);
    expect((await listNotices(database.db, 1))[0]).toMatchObject({
      attempts: 3,
      last_error: null,
      next_attempt_at: null,
    });
  });

  it("retries while the SMTP server is down and delivers once it is back", async () => {
    await queue([securityNotice(rotated)]);
    await receiver.stop();
    try {
      const s = sender();
      expect(await s.runOnce()).toEqual({ sent: 0, failed: 1 });
      const [row] = await listNotices(database.db, 1);
      expect(row!.last_error).toBe("ESOCKET: could not connect to the SMTP server, or the connection broke");
      clock += 60_000;
      expect(await s.runOnce()).toEqual({ sent: 0, failed: 1 });
      await receiver.start();
      clock += 60_000;
      expect(await s.runOnce()).toEqual({ sent: 0, failed: 0 });
      clock += 60_000;
      expect(await s.runOnce()).toEqual({ sent: 1, failed: 0 });
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.start();
    }
  });

  it("gives a notice up after the last attempt and keeps it, as failed", async () => {
    await queue([securityNotice(rotated)]);
    receiver.refuseRecipients = true;
    const s = sender();
    for (let i = 0; i < 5; i += 1) {
      expect(await s.runOnce()).toEqual({ sent: 0, failed: 1 });
      clock += 240_000;
    }
    receiver.refuseRecipients = false;
    clock += 24 * 3600_000;
    expect(await s.runOnce()).toEqual({ sent: 0, failed: 0 });
    const [row] = await listNotices(database.db, 1);
    expect(noticeStatus(row!)).toBe("failed");
    expect(row!.attempts).toBe(5);
    expect(receiver.received).toEqual([]);
  });

  it("two senders on one database, each with its own connection, deliver every notice exactly once", async () => {
    const recipients = Array.from({ length: 30 }, (_, i) => `member-${i}@example.test`);
    await queue(
      recipients.map((recipient) => ({
        recipient,
        kind: "impact",
        subject: `for ${recipient}`,
        body: "b\n",
      })),
    );
    // The same SQLite file, or the same PostgreSQL database, through a pool of its own.
    const second = await openMigrated(config);
    extra.push(second);
    const a = sender();
    const b = sender({ db: second });
    const totals = { a: 0, b: 0 };
    for (let round = 0; round < 5 && receiver.received.length < recipients.length; round += 1) {
      const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
      totals.a += ra.sent;
      totals.b += rb.sent;
    }
    const delivered = receiver.received.flatMap((m) => m.rcptTo).sort();
    expect(delivered).toEqual([...recipients].sort());
    expect(totals.a + totals.b).toBe(recipients.length);
    const rows = await listNotices(database.db, 100);
    expect(rows.every((r) => noticeStatus(r) === "sent" && r.attempts === 1)).toBe(true);
  });

  it("queues nothing when the transaction of the change rolls back", async () => {
    await expect(
      database.db.transaction().execute(async (trx) => {
        await enqueueNotices(trx, [securityNotice(rotated)], new Date(T0).toISOString());
        throw new Error("the change failed after queueing");
      }),
    ).rejects.toThrow("the change failed after queueing");
    expect(await listNotices(database.db, 10)).toEqual([]);
    expect(await sender().runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(receiver.received).toEqual([]);
  });

  it("never writes SMTP_URL's password to a log line, a stored error or the admin listing", async () => {
    const log = captureLog();
    // A server that wants another password: the sender's login is refused (EAUTH).
    const strict = await startSmtpReceiver(USER, "another-password-entirely");
    try {
      await queue([securityNotice(rotated)]);
      expect(
        await sender({ log, url: strict.url.replace("another-password-entirely", PASSWORD) }).runOnce(),
      ).toEqual({
        sent: 0,
        failed: 1,
      });
    } finally {
      await strict.stop();
    }
    const [refused] = await listNotices(database.db, 1);
    expect(refused!.last_error).toBe("EAUTH: the SMTP server refused the credentials (SMTP 535)");
    receiver.refuseRecipients = true;
    clock += 60_000;
    await sender({ log }).runOnce();
    receiver.refuseRecipients = false;
    clock += 120_000;
    expect(await sender({ log }).runOnce()).toEqual({ sent: 1, failed: 0 });

    const admin: string[] = [];
    for (const json of [false, true]) {
      await printOutbox(database.db, outboxOptions({ json, body: true, limit: undefined }), {
        stdout: { write: (t: string) => admin.push(t) },
      });
    }
    const everything = [log.text(), admin.join(""), JSON.stringify(await listNotices(database.db, 10))].join(
      "\n",
    );
    expect(log.text()).toContain('"event":"outbox.retry"');
    expect(log.text()).toContain('"event":"outbox.sent"');
    for (const form of [PASSWORD, encodeURIComponent(PASSWORD), Buffer.from(PASSWORD).toString("base64")]) {
      expect(everything).not.toContain(form);
    }
  });
});
