// A real SMTP server for the outbox suites (smtp-server on 127.0.0.1, a free port): it requires the user and
// password it was made with (plain AUTH without TLS, as a relay on loopback would), keeps every message it
// accepted, and can be told to refuse recipients (550 at RCPT TO) or be stopped and started again on the same
// port, to stand for a mail server that refuses or is down.
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** One accepted message. */
export interface ReceivedMail {
  /** The envelope's sender and recipients. */
  mailFrom: string;
  rcptTo: string[];
  /** Header names in lower case, folded lines joined. */
  headers: Map<string, string>;
  /** The text part, transfer encoding undone. */
  text: string;
  /** The message as it arrived. */
  raw: string;
}

/** A running receiver. */
export interface SmtpReceiver {
  readonly port: number;
  /** smtp://USER:PASSWORD@127.0.0.1:PORT, percent-encoded. */
  readonly url: string;
  readonly received: ReceivedMail[];
  /** RCPT TO commands seen, accepted or refused. */
  rcptAttempts: number;
  /** While true, every recipient is refused with 550. */
  refuseRecipients: boolean;
  /** Stops listening (the port is free until start()). */
  stop(): Promise<void>;
  /** Listens again on the same port; nothing when it is listening. */
  start(): Promise<void>;
}

/** Starts a receiver that accepts `user` with `password`. */
export async function startSmtpReceiver(user: string, password: string): Promise<SmtpReceiver> {
  const received: ReceivedMail[] = [];
  let server: SMTPServer | undefined;
  let port = 0;
  const receiver: SmtpReceiver = {
    get port() {
      return port;
    },
    get url() {
      return `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    },
    received,
    rcptAttempts: 0,
    refuseRecipients: false,
    async stop() {
      const current = server;
      server = undefined;
      if (current) await new Promise<void>((done) => current.close(() => done()));
    },
    async start() {
      if (server !== undefined) return;
      server = new SMTPServer({
        logger: false,
        // No certificate on loopback: plain AUTH, and no STARTTLS for the client to try.
        disabledCommands: ["STARTTLS"],
        allowInsecureAuth: true,
        closeTimeout: 1_000,
        onAuth(auth, _session, callback) {
          if (auth.username === user && auth.password === password) callback(null, { user });
          else callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
        },
        onRcptTo(_address, _session, callback) {
          receiver.rcptAttempts += 1;
          if (receiver.refuseRecipients) {
            callback(Object.assign(new Error("Mailbox unavailable"), { responseCode: 550 }));
          } else callback();
        },
        onData(stream, session, callback) {
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            const mailFrom = session.envelope.mailFrom;
            received.push({
              ...parseMessage(raw),
              mailFrom: mailFrom === false ? "" : mailFrom.address,
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              raw,
            });
            callback();
          });
        },
      });
      const listening = server;
      await new Promise<void>((done, fail) => {
        listening.once("error", fail);
        listening.listen(port, "127.0.0.1", () => done());
      });
      port = (listening.server.address() as AddressInfo).port;
    },
  };
  await receiver.start();
  return receiver;
}

function parseMessage(raw: string): { headers: Map<string, string>; text: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, " ");
  const headers = new Map<string, string>();
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.slice(split + 4).replace(/\r\n\.\r\n$/, "");
  if (headers.get("content-transfer-encoding")?.toLowerCase() === "quoted-printable") {
    body = Buffer.from(
      body
        .replace(/=\r\n/g, "")
        .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      "latin1",
    ).toString("utf8");
  }
  return { headers, text: body.replace(/\r\n/g, "\n") };
}
