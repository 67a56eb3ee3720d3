/**
 * The outbox service: queueing notices inside the caller's write transaction, and the states a stored notice
 * is in. Queued in the transaction of the change a notice reports, a notice exists exactly when the change does:
 * a rolled-back change queues nothing, and a committed one cannot lose its notice to a crash before a send.
 */
import { timeOrderedId } from "../db/ids.js";
import type { Db, OutboxRow } from "./data.js";
import { insertNotices } from "./data.js";

/** `security`: to the account a change was done to; `impact`: to the owners and admins of an org it touches. */
export type NoticeKind = "security" | "impact";

/** One e-mail to send. Subject and body name accounts, orgs and vaults only: never a secret value or a key. */
export interface Notice {
  recipient: string;
  kind: NoticeKind;
  subject: string;
  /** Plain text. */
  body: string;
}

/**
 * Queues `notice` in `trx`, the transaction of the change it reports (call it before that transaction commits,
 * never after). `createdAt` is the change's time (ISO-8601), and it is due at once.
 */
export function enqueueNotice(trx: Db, notice: Notice, createdAt: string): Promise<void> {
  return enqueueNotices(trx, [notice], createdAt);
}

/** Queues several notices in `trx`, as {@link enqueueNotice} does one. */
export function enqueueNotices(trx: Db, notices: readonly Notice[], createdAt: string): Promise<void> {
  const ms = Date.parse(createdAt);
  return insertNotices(
    trx,
    notices.map((n) => ({ ...n, id: timeOrderedId(ms), createdAt })),
  );
}

/** Where a stored notice is, as `latchkey-server admin outbox` shows it. */
export type NoticeStatus =
  /** Not sent, and no attempt has failed (one may be running). */
  | "queued"
  /** An attempt failed; another one is due at next_attempt_at. */
  | "retrying"
  | "sent"
  /** Every allowed attempt failed; kept for the operator to see. */
  | "failed";

/** The status of a stored row. */
export function noticeStatus(
  row: Pick<OutboxRow, "sent_at" | "next_attempt_at" | "last_error">,
): NoticeStatus {
  if (row.sent_at !== null) return "sent";
  if (row.next_attempt_at === null) return "failed";
  return row.last_error === null ? "queued" : "retrying";
}
