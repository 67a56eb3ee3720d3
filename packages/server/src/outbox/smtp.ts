/**
 * Notices by SMTP: SMTP_URL read and checked, and the nodemailer transport the sender (sender.ts) uses. SMTP_URL
 * may carry the mail account's password: it is never logged, never quoted in an error, and nodemailer's own
 * logger (which writes the SMTP conversation) stays off. What a failed send reports is a code and fixed words,
 * never the mail server's reply text.
 */
import { LatchkeyError } from "@latchkey/core";
import nodemailer from "nodemailer";
import { isLoopbackHost } from "../loopback.js";
import { MailSendError, type MailTransport } from "./sender.js";

/** Where and as whom notices are sent. */
export interface SmtpConfig {
  /** SMTP_URL as given: smtp://[user:pass@]host[:port][?options] or smtps://…. A credential: never log it. */
  url: string;
  /** The From address of notices (SMTP_FROM). */
  from: string;
}

/** Query options of SMTP_URL that would make nodemailer write the SMTP conversation, credentials and all. */
const REFUSED_OPTIONS = ["logger", "debug", "transactionLog"];

const hint =
  "For example SMTP_URL=smtps://notices%40example.com:PASSWORD@mail.example.com (user and password " +
  "percent-encoded), or smtp://127.0.0.1:25 for a relay on this machine; unset it to keep notices in the outbox.";

/**
 * Reads SMTP_URL and SMTP_FROM; undefined when SMTP_URL is unset (notices then stay queued). `publicUrl`'s host
 * names the default sender. Throws LK_CONFIG_INVALID, never quoting SMTP_URL.
 */
export function parseSmtpConfig(
  env: Readonly<Record<string, string | undefined>>,
  publicUrl: string | undefined,
): SmtpConfig | undefined {
  const url = env.SMTP_URL;
  if (url === undefined || url === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LatchkeyError("LK_CONFIG_INVALID", { message: "SMTP_URL is not a URL.", hint });
  }
  if ((parsed.protocol !== "smtp:" && parsed.protocol !== "smtps:") || parsed.hostname === "") {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: "SMTP_URL must be an smtp:// or smtps:// URL with a host.",
      hint,
    });
  }
  const refused = REFUSED_OPTIONS.find((name) => parsed.searchParams.has(name));
  if (refused !== undefined) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `SMTP_URL must not set ${refused}: it would write the SMTP conversation, the password included, to the log.`,
      hint: `Remove ${refused} from SMTP_URL's query.`,
    });
  }
  const from =
    env.SMTP_FROM || `Latchkey <latchkey@${publicUrl ? new URL(publicUrl).hostname : "localhost"}>`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(from)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: "SMTP_FROM must be one line.",
      hint: "For example SMTP_FROM='Latchkey <latchkey@example.com>'.",
    });
  }
  return { url, from };
}

/** SMTP_URL for a log line: scheme, host and port, never the user, password or options. */
export function describeSmtpUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

/** How long a send may wait at each step; all well inside the sender's claim (sender.ts leaseMs). */
const TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 };

/**
 * The transport of `config`: one connection per message (notices are few). A password on a plain smtp:// URL to
 * another machine is only sent after STARTTLS (requireTLS), unless the URL says `requireTLS=false`.
 */
export function createSmtpTransport(config: SmtpConfig): MailTransport {
  const parsed = new URL(config.url);
  const hasCredentials = parsed.username !== "" || parsed.password !== "";
  const mailer = nodemailer.createTransport(
    {
      url: config.url,
      ...TIMEOUTS,
      requireTLS: hasCredentials && parsed.protocol === "smtp:" && !isLoopbackHost(parsed.hostname),
      logger: false,
      debug: false,
      disableFileAccess: true,
      disableUrlAccess: true,
    },
    { from: config.from },
  );
  return {
    async send(message, signal) {
      try {
        await mailer.sendMail({ to: message.to, subject: message.subject, text: message.text, signal });
      } catch (err) {
        throw new MailSendError(describeSendError(err));
      }
    },
    close() {
      mailer.close();
    },
  };
}

const CODE_WORDS: Readonly<Record<string, string>> = {
  ECONNECTION: "the SMTP server closed the connection",
  ETIMEDOUT: "the SMTP server did not answer in time",
  ESOCKET: "could not connect to the SMTP server, or the connection broke",
  EDNS: "the SMTP server's name did not resolve",
  ETLS: "TLS with the SMTP server failed",
  EAUTH: "the SMTP server refused the credentials",
  ENOAUTH: "the SMTP server wants credentials and SMTP_URL has none",
  EENVELOPE: "the SMTP server refused the sender or the recipient",
  EMESSAGE: "the SMTP server refused the message",
  EPROTOCOL: "the SMTP server answered something unexpected",
  EABORT: "the send was aborted",
};

/**
 * A failed send in a few fixed words: nodemailer's error code and the SMTP reply code, never the message text
 * (a mail server's reply can quote addresses, and a driver's error what it was given).
 */
export function describeSendError(err: unknown): string {
  const fields = typeof err === "object" && err !== null ? (err as Record<string, unknown>) : {};
  const code =
    typeof fields.code === "string" && /^E[A-Z0-9]{2,15}$/.test(fields.code) ? fields.code : undefined;
  const reply =
    typeof fields.responseCode === "number" && Number.isInteger(fields.responseCode)
      ? ` (SMTP ${fields.responseCode})`
      : "";
  if (code === undefined) return `the send failed${reply}`;
  return `${code}: ${CODE_WORDS[code] ?? "the send failed"}${reply}`;
}
