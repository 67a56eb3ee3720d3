/**
 * The outbox sender: runs in every server process that has SMTP_URL, polls for due notices, claims each one
 * (data.ts claimNotice: one conditional UPDATE, so of several processes on one database exactly one sends an
 * attempt), sends it, and records the outcome. A failed attempt is retried with a doubling delay up to a cap;
 * after the last allowed attempt the row stays, as failed, for `latchkey-server admin outbox`. Delivery is at
 * least once: a process that dies after the SMTP server accepted a message but before it recorded that leaves
 * the row to be sent again once its claim runs out.
 *
 * Clock, timers, the transport and the log come in through OutboxSenderDeps, so tests move time by hand.
 */
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import { errorSummary } from "../logging.js";
import * as data from "./data.js";

/** One message as the sender hands it to a transport. */
export interface MailMessage {
  to: string;
  subject: string;
  /** Plain text. */
  text: string;
}

/** Where messages go (smtp.ts: nodemailer on SMTP_URL; tests: a fake). */
export interface MailTransport {
  /**
   * Sends one message; resolves once the mail server accepted it. Rejects with a {@link MailSendError} whose
   * message says what failed without quoting the server or the configuration. `signal` aborts the send.
   */
  send(message: MailMessage, signal: AbortSignal): Promise<void>;
  /** Closes any open connection. */
  close(): void;
}

/** A failed send, described without a value: fixed words, an error code, an SMTP reply code. */
export class MailSendError extends Error {
  constructor(description: string) {
    super(description);
    this.name = "MailSendError";
  }
}

/** setTimeout and clearTimeout, or a test's hand-moved replacement. */
export interface SenderTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The log lines the sender writes (pino's logger has these). */
export interface SenderLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Tunables; the defaults suit a server, tests shorten them. */
export interface OutboxSenderOptions {
  /** How often an idle sender looks for due notices. */
  pollMs: number;
  /** Most notices one round sends (one at a time) before it looks again. */
  batchSize: number;
  /** Attempts before a notice is given up (kept, as failed). */
  maxAttempts: number;
  /** The delay after the first failed attempt; each further failure doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * How long a claim keeps other senders off a row: longer than any send can take (smtp.ts's timeouts), or a
   * slow send could be claimed and sent a second time.
   */
  leaseMs: number;
  /** Sent rows older than this are deleted. */
  keepSentMs: number;
  /** How often a sender deletes them (a scan of the sent rows, so not every round). */
  purgeEveryMs: number;
}

/** The defaults: retries after 1, 2, 4, 8, 16, 32 minutes, then hourly, giving up after 10 attempts (~4 h). */
export const DEFAULT_SENDER_OPTIONS: Readonly<OutboxSenderOptions> = {
  pollMs: 5_000,
  batchSize: 20,
  maxAttempts: 10,
  baseDelayMs: 60_000,
  maxDelayMs: 60 * 60_000,
  leaseMs: 5 * 60_000,
  keepSentMs: 30 * 24 * 60 * 60_000,
  purgeEveryMs: 60 * 60_000,
};

/** What the sender needs. */
export interface OutboxSenderDeps {
  db: Kysely<Database>;
  transport: MailTransport;
  now: () => Date;
  timers: SenderTimers;
  log: SenderLog;
  options?: Partial<OutboxSenderOptions>;
}

/** What one round did. */
export interface RoundResult {
  sent: number;
  /** Attempts that failed (retried later or given up). */
  failed: number;
}

/** A running (or runnable) sender. */
export interface OutboxSender {
  /** Sends what is due now, one round; what the polling loop runs. Exposed for tests. */
  runOnce(): Promise<RoundResult>;
  /** Starts polling: a round now, then one every pollMs (at once after a full batch). */
  start(): void;
  /**
   * Stops: no new round or send starts, a send in flight is aborted and its attempt handed back (the row is due
   * again at once, for whichever process runs next), and the transport is closed. Resolves when all that is done.
   */
  stop(): Promise<void>;
}

/** The delay before the attempt after `attempts` failed ones: doubling from baseDelayMs, capped at maxDelayMs. */
export function retryDelayMs(
  attempts: number,
  options: Pick<OutboxSenderOptions, "baseDelayMs" | "maxDelayMs">,
): number {
  const doublings = Math.min(Math.max(attempts - 1, 0), 40);
  return Math.min(options.baseDelayMs * 2 ** doublings, options.maxDelayMs);
}

const INTERRUPTED = "the server stopped during the last attempt";

/** Makes a sender; nothing runs until start() or runOnce(). */
export function createOutboxSender(deps: OutboxSenderDeps): OutboxSender {
  const options: OutboxSenderOptions = { ...DEFAULT_SENDER_OPTIONS, ...deps.options };
  const iso = (ms: number): string => new Date(ms).toISOString();
  let stopping = false;
  let timer: unknown;
  let round: Promise<RoundResult> | undefined;
  let purgedAt = -Infinity;
  const aborter = new AbortController();

  async function sendOne(due: data.DueNotice): Promise<"sent" | "failed" | "skipped"> {
    const claimedAt = deps.now().getTime();
    const row = await data.claimNotice(deps.db, {
      id: due.id,
      attempts: due.attempts,
      now: iso(claimedAt),
      leaseUntil: iso(claimedAt + options.leaseMs),
    });
    if (row === undefined) return "skipped";
    const attempts = Number(row.attempts);
    let failure: string | undefined;
    try {
      await deps.transport.send({ to: row.recipient, subject: row.subject, text: row.body }, aborter.signal);
    } catch (err) {
      failure = err instanceof MailSendError ? err.message : `unexpected ${errorSummary(err).name}`;
    }
    const at = deps.now().getTime();
    if (failure === undefined) {
      const recorded = await data.markSent(deps.db, row.id, attempts, iso(at));
      deps.log.info(
        { event: "outbox.sent", id: row.id, kind: row.kind, attempts, recorded },
        recorded ? "notice sent" : "notice sent, but another process had taken it over",
      );
      return "sent";
    }
    if (stopping) {
      await data.releaseClaim(deps.db, row.id, attempts, iso(at));
      deps.log.info({ event: "outbox.interrupted", id: row.id }, "notice send interrupted by shutdown");
      return "skipped";
    }
    const giveUp = attempts >= options.maxAttempts;
    const nextAttemptAt = giveUp ? null : iso(at + retryDelayMs(attempts, options));
    await data.markFailed(deps.db, { id: row.id, attempts, error: failure, nextAttemptAt });
    if (giveUp) {
      deps.log.error(
        { event: "outbox.failed", id: row.id, kind: row.kind, attempts, error: failure },
        `notice given up after ${attempts} attempts`,
      );
    } else {
      deps.log.warn(
        { event: "outbox.retry", id: row.id, kind: row.kind, attempts, error: failure, nextAttemptAt },
        "notice not sent; will retry",
      );
    }
    return "failed";
  }

  async function runOnce(): Promise<RoundResult> {
    const result: RoundResult = { sent: 0, failed: 0 };
    const now = deps.now().getTime();
    await data.giveUpExhausted(deps.db, iso(now), options.maxAttempts, INTERRUPTED);
    if (now - purgedAt >= options.purgeEveryMs) {
      await data.purgeSent(deps.db, iso(now - options.keepSentMs));
      purgedAt = now;
    }
    const due = await data.listDue(deps.db, iso(now), options.batchSize);
    for (const notice of due) {
      if (stopping) break;
      const outcome = await sendOne(notice);
      if (outcome === "sent") result.sent += 1;
      else if (outcome === "failed") result.failed += 1;
    }
    return result;
  }

  function schedule(ms: number): void {
    if (stopping) return;
    timer = deps.timers.setTimeout(() => {
      timer = undefined;
      const current = runOnce().catch((err: unknown): RoundResult => {
        deps.log.error({ event: "outbox.round-failed", err: errorSummary(err) }, "outbox round failed");
        return { sent: 0, failed: 0 };
      });
      round = current;
      void current.then((r) => {
        if (round === current) round = undefined;
        schedule(r.sent + r.failed >= options.batchSize ? 0 : options.pollMs);
      });
    }, ms);
  }

  return {
    runOnce,
    start() {
      schedule(0);
    },
    async stop() {
      stopping = true;
      if (timer !== undefined) deps.timers.clearTimeout(timer);
      timer = undefined;
      aborter.abort();
      await round;
      deps.transport.close();
    },
  };
}
