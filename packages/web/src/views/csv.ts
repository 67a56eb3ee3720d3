/**
 * The audit view's CSV export, built in the browser from the pages the server answered and handed to the user as a
 * Blob download: never a URL that carries the rows, never a request of its own. RFC 4180 quoting, and a cell that a
 * spreadsheet would run as a formula (starting with =, +, -, @, tab or carriage return) gets a leading apostrophe:
 * audit rows carry text other people chose (emails, names in metadata).
 */
import type { AuditPageEntry } from "@latchkey/core";

/** The export's columns, in order. */
export const AUDIT_CSV_COLUMNS = [
  "time",
  "action",
  "actor",
  "actor_id",
  "vault",
  "version",
  "environment",
  "count",
  "metadata",
  "id",
] as const;

/** One cell as CSV writes it. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The CSV text of `entries`, a header first, lines ended by CRLF. */
export function auditCsv(entries: readonly AuditPageEntry[]): string {
  const lines = [AUDIT_CSV_COLUMNS.join(",")];
  for (const entry of entries) {
    const cells = [
      entry.createdAt,
      entry.action,
      entry.actor === null ? "" : (entry.actor.email ?? ""),
      entry.actor?.userId ?? "",
      entry.vaultId ?? "",
      entry.version === null ? "" : String(entry.version),
      entry.environment ?? "",
      String(entry.count),
      JSON.stringify(entry.metadata),
      entry.id,
    ];
    lines.push(cells.map(csvCell).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

/**
 * Offers `text` as a download named `filename` through a Blob URL (this document's, revoked at once after the
 * click): the content never travels in a URL the server, a proxy or the history could see.
 */
export function downloadText(text: string, filename: string, type = "text/csv;charset=utf-8"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  try {
    link.click();
  } finally {
    link.remove();
    // After the click's task: Chromium reads the Blob once the download starts.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}
