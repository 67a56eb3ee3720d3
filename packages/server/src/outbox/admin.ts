/**
 * `latchkey-server admin outbox`: the newest notices and where each one is (queued, retrying, sent, failed), for
 * an operator checking that mail goes out. Bodies only when asked for: they name accounts and orgs.
 */
import { LatchkeyError } from "@latchkey/core";
import { listNotices, type Db } from "./data.js";
import { noticeStatus, type NoticeStatus } from "./service.js";

/** The lines of `latchkey-server admin --help` about the command. */
export const OUTBOX_USAGE = `  outbox              list the newest notices (security and impact e-mails), newest first: status (queued,
                      retrying, sent, failed), kind, recipient, attempts, when queued and when next tried or
                      sent, and the last error. --json for a script, --body to add the texts, --limit N rows
                      (default 100). Notices go out only from a server started with SMTP_URL.
`;

/** The command's options, checked. */
export interface OutboxListOptions {
  json: boolean;
  body: boolean;
  limit: number;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

/** Checks the options as given on the command line; throws LK_USAGE. */
export function outboxOptions(raw: {
  json: boolean;
  body: boolean;
  limit: string | undefined;
}): OutboxListOptions {
  const limit = raw.limit === undefined ? DEFAULT_LIMIT : Number(raw.limit);
  if (raw.limit !== undefined && (!/^\d+$/.test(raw.limit) || limit < 1 || limit > MAX_LIMIT)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--limit must be a number from 1 to ${MAX_LIMIT}, not "${raw.limit}".`,
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  return { json: raw.json, body: raw.body, limit };
}

/** One notice as `--json` prints it. */
export interface OutboxEntry {
  id: string;
  status: NoticeStatus;
  kind: string;
  recipient: string;
  subject: string;
  attempts: number;
  createdAt: string;
  /** When it is tried next (queued, retrying); null once sent or failed. */
  nextAttemptAt: string | null;
  sentAt: string | null;
  lastError: string | null;
  /** Only with --body. */
  body?: string;
}

/** Prints the newest notices of `db` on stdout; returns the exit code (0). */
export async function printOutbox(
  db: Db,
  options: OutboxListOptions,
  out: { stdout: { write(text: string): unknown } },
): Promise<number> {
  const rows = await listNotices(db, options.limit);
  const entries: OutboxEntry[] = rows.map((r) => ({
    id: r.id,
    status: noticeStatus(r),
    kind: r.kind,
    recipient: r.recipient,
    subject: r.subject,
    attempts: r.attempts,
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at,
    sentAt: r.sent_at,
    lastError: r.last_error,
    ...(options.body ? { body: r.body } : {}),
  }));
  if (options.json) {
    out.stdout.write(`${JSON.stringify({ notices: entries }, null, 2)}\n`);
    return 0;
  }
  if (entries.length === 0) {
    out.stdout.write("The outbox is empty.\n");
    return 0;
  }
  const table = [
    ["STATUS", "KIND", "ATTEMPTS", "RECIPIENT", "QUEUED", "NEXT TRY / SENT", "LAST ERROR"],
    ...entries.map((e) => [
      e.status,
      e.kind,
      String(e.attempts),
      e.recipient,
      e.createdAt,
      e.sentAt ?? e.nextAttemptAt ?? "-",
      e.lastError ?? "-",
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row, i) => {
    const line = row
      .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd();
    const entry = i === 0 ? undefined : entries[i - 1];
    return entry?.body === undefined ? line : `${line}\n    Subject: ${entry.subject}\n${indent(entry.body)}`;
  });
  out.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((l) => (l === "" ? "" : `    ${l}`))
    .join("\n");
}
