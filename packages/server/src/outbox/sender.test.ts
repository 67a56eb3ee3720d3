import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../db/index.js";
import { migrateToLatest } from "../db/migrations.js";
import { listNotices } from "./data.js";
import {
  createOutboxSender,
  MailSendError,
  retryDelayMs,
  type MailMessage,
  type MailTransport,
  type OutboxSenderOptions,
  type SenderLog,
} from "./sender.js";
import { enqueueNotices, noticeStatus } from "./service.js";

let dir: string;
let opened: OpenDatabase;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-sender-"));
  opened = await openDatabase({ dataDir: dir });
  await migrateToLatest(opened.db);
});
afterEach(async () => {
  await opened.close();
  await rm(dir, { recursive: true, force: true });
});

const T0 = Date.parse("2026-12-07T10:00:00.000Z");
const OPTIONS: Partial<OutboxSenderOptions> = {
  pollMs: 1_000,
  batchSize: 10,
  maxAttempts: 4,
  baseDelayMs: 60_000,
  maxDelayMs: 150_000,
  leaseMs: 300_000,
};

/** A hand-moved clock and timers. */
function fakeTime() {
  let now = T0;
  const pending: { callback: () => void; ms: number }[] = [];
  return {
    now: () => new Date(now),
    advance: (ms: number) => (now += ms),
    pending,
    timers: {
      setTimeout: (callback: () => void, ms: number) => {
        const entry = { callback, ms };
        pending.push(entry);
        return entry;
      },
      clearTimeout: (handle: unknown) => {
        const i = pending.indexOf(handle as (typeof pending)[number]);
        if (i !== -1) pending.splice(i, 1);
      },
    },
  };
}

/** A transport that records what it sent and fails while `failing` says so. */
function fakeTransport() {
  const sent: MailMessage[] = [];
  const state = { failing: false, closed: false, hold: undefined as Promise<void> | undefined };
  const transport: MailTransport = {
    async send(message, signal) {
      if (state.hold) {
        await Promise.race([
          state.hold,
          new Promise<void>((_, reject) =>
            signal.addEventListener("abort", () => reject(new MailSendError("EABORT: aborted"))),
          ),
        ]);
      }
      if (state.failing) throw new MailSendError("EENVELOPE: refused (SMTP 550)");
      sent.push(message);
    },
    close() {
      state.closed = true;
    },
  };
  return { transport, sent, state };
}

function recordingLog(): SenderLog & { lines: string[] } {
  const lines: string[] = [];
  const write = (fields: object, message: string) => lines.push(JSON.stringify({ ...fields, message }));
  return { lines, info: write, warn: write, error: write };
}

async function queue(...recipients: string[]): Promise<void> {
  await opened.db.transaction().execute((trx) =>
    enqueueNotices(
      trx,
      recipients.map((r) => ({ recipient: r, kind: "security", subject: `to ${r}`, body: "body\n" })),
      new Date(T0).toISOString(),
    ),
  );
}

describe("the outbox sender", () => {
  it("sends what is due and marks it sent", async () => {
    const time = fakeTime();
    const { transport, sent } = fakeTransport();
    const sender = createOutboxSender({
      db: opened.db,
      transport,
      ...time,
      log: recordingLog(),
      options: OPTIONS,
    });
    await queue("a@example.test", "b@example.test");
    expect(await sender.runOnce()).toEqual({ sent: 2, failed: 0 });
    expect(sent.map((m) => [m.to, m.subject, m.text]).sort()).toEqual([
      ["a@example.test", "to a@example.test", "body\n"],
      ["b@example.test", "to b@example.test", "body\n"],
    ]);
    const rows = await listNotices(opened.db, 10);
    expect(rows.map((r) => [noticeStatus(r), r.attempts, r.sent_at])).toEqual([
      ["sent", 1, new Date(T0).toISOString()],
      ["sent", 1, new Date(T0).toISOString()],
    ]);
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(sent).toHaveLength(2);
  });

  it("retries a failed notice after a doubling delay, capped, and gives up after the last attempt", async () => {
    const time = fakeTime();
    const { transport, sent, state } = fakeTransport();
    const log = recordingLog();
    const sender = createOutboxSender({ db: opened.db, transport, ...time, log, options: OPTIONS });
    await queue("a@example.test");
    state.failing = true;
    const row = async () => (await listNotices(opened.db, 1))[0]!;
    const at = (ms: number) => new Date(ms).toISOString();

    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 1 });
    expect(await row()).toMatchObject({ attempts: 1, next_attempt_at: at(T0 + 60_000) });
    expect(noticeStatus(await row())).toBe("retrying");
    // 60 s after the first failure, then 120 s, then the cap of 150 s (not 240 s).
    for (const [delay, attempts] of [
      [60_000, 2],
      [120_000, 3],
      [150_000, 4],
    ] as const) {
      time.advance(delay - 1);
      expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
      time.advance(1);
      expect(await sender.runOnce()).toEqual({ sent: 0, failed: 1 });
      expect((await row()).attempts).toBe(attempts);
    }
    expect(await row()).toMatchObject({ attempts: 4, next_attempt_at: null, sent_at: null });
    expect((await row()).last_error).toBe("EENVELOPE: refused (SMTP 550)");
    expect(noticeStatus(await row())).toBe("failed");

    state.failing = false;
    time.advance(24 * 60 * 60_000);
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(sent).toEqual([]);
    expect(log.lines.filter((l) => l.includes('"outbox.retry"'))).toHaveLength(3);
    expect(log.lines.filter((l) => l.includes('"outbox.failed"'))).toHaveLength(1);
  });

  it("delivers a notice once the SMTP server takes it again", async () => {
    const time = fakeTime();
    const { transport, sent, state } = fakeTransport();
    const sender = createOutboxSender({
      db: opened.db,
      transport,
      ...time,
      log: recordingLog(),
      options: OPTIONS,
    });
    await queue("a@example.test");
    state.failing = true;
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 1 });
    state.failing = false;
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    time.advance(60_000);
    expect(await sender.runOnce()).toEqual({ sent: 1, failed: 0 });
    expect(sent.map((m) => m.to)).toEqual(["a@example.test"]);
    expect(await listNotices(opened.db, 1)).toMatchObject([{ attempts: 2, last_error: null }]);
  });

  it("polls on its timers, and stop() aborts the send in flight and hands its attempt back", async () => {
    const time = fakeTime();
    const { transport, sent, state } = fakeTransport();
    const log = recordingLog();
    const sender = createOutboxSender({ db: opened.db, transport, ...time, log, options: OPTIONS });
    sender.start();
    expect(time.pending.map((p) => p.ms)).toEqual([0]);
    let release!: () => void;
    state.hold = new Promise((r) => (release = r));
    await queue("a@example.test");
    time.pending.shift()!.callback();
    // The round claims the row, then waits in the held send.
    await expect.poll(async () => (await listNotices(opened.db, 1))[0]!.attempts).toBe(1);
    await sender.stop();
    release();
    expect(sent).toEqual([]);
    expect(state.closed).toBe(true);
    expect(time.pending).toEqual([]);
    expect(await listNotices(opened.db, 1)).toMatchObject([
      { attempts: 0, next_attempt_at: new Date(T0).toISOString(), sent_at: null, last_error: null },
    ]);
    expect(log.lines.some((l) => l.includes('"outbox.interrupted"'))).toBe(true);
  });

  it("schedules the next round pollMs after an idle one", async () => {
    const time = fakeTime();
    const { transport } = fakeTransport();
    const sender = createOutboxSender({
      db: opened.db,
      transport,
      ...time,
      log: recordingLog(),
      options: OPTIONS,
    });
    sender.start();
    time.pending.shift()!.callback();
    await expect.poll(() => time.pending.map((p) => p.ms)).toEqual([1_000]);
    await sender.stop();
    expect(time.pending).toEqual([]);
  });

  it("gives up a row whose last attempt was claimed by a sender that died", async () => {
    const time = fakeTime();
    const { transport, sent } = fakeTransport();
    await queue("a@example.test");
    await opened.db
      .updateTable("outbox")
      .set({ attempts: 4, next_attempt_at: new Date(T0 + 300_000).toISOString() })
      .execute();
    const sender = createOutboxSender({
      db: opened.db,
      transport,
      ...time,
      log: recordingLog(),
      options: OPTIONS,
    });
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(noticeStatus((await listNotices(opened.db, 1))[0]!)).toBe("queued");
    time.advance(300_000);
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    expect(sent).toEqual([]);
    const [row] = await listNotices(opened.db, 1);
    expect(noticeStatus(row!)).toBe("failed");
    expect(row!.last_error).toBe("the server stopped during the last attempt");
  });

  it("sends again a row whose sender died mid-attempt, once the claim runs out", async () => {
    const time = fakeTime();
    const { transport, sent } = fakeTransport();
    await queue("a@example.test");
    await opened.db
      .updateTable("outbox")
      .set({ attempts: 1, next_attempt_at: new Date(T0 + 300_000).toISOString() })
      .execute();
    const sender = createOutboxSender({
      db: opened.db,
      transport,
      ...time,
      log: recordingLog(),
      options: OPTIONS,
    });
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 0 });
    time.advance(300_000);
    expect(await sender.runOnce()).toEqual({ sent: 1, failed: 0 });
    expect(sent).toHaveLength(1);
  });

  it("deletes sent rows after keepSentMs and keeps failed ones", async () => {
    const time = fakeTime();
    const { transport, state } = fakeTransport();
    const options = { ...OPTIONS, maxAttempts: 1, keepSentMs: 1_000, purgeEveryMs: 5_000 };
    const sender = createOutboxSender({ db: opened.db, transport, ...time, log: recordingLog(), options });
    await queue("a@example.test");
    expect(await sender.runOnce()).toEqual({ sent: 1, failed: 0 });
    await queue("b@example.test");
    state.failing = true;
    expect(await sender.runOnce()).toEqual({ sent: 0, failed: 1 });
    time.advance(1_001);
    await sender.runOnce();
    // Not yet: the last purge (the first round's) was less than purgeEveryMs ago.
    expect(await listNotices(opened.db, 10)).toHaveLength(2);
    time.advance(5_000);
    await sender.runOnce();
    expect((await listNotices(opened.db, 10)).map((r) => [r.recipient, noticeStatus(r)])).toEqual([
      ["b@example.test", "failed"],
    ]);
  });
});

describe("retryDelayMs", () => {
  it("doubles from the base delay and stops at the cap", () => {
    const o = { baseDelayMs: 60_000, maxDelayMs: 3_600_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => retryDelayMs(n, o) / 60_000)).toEqual([
      1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]);
  });
});
