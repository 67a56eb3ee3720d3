// Notices from the built `latchkey-server` process, on SQLite and PostgreSQL: started with SMTP_URL (a password in
// it) pointing at a real SMTP server on loopback, it sends a notice queued in its database, keeps one the SMTP
// server refuses for a retry, `admin outbox` shows both, SIGTERM stops it with exit 0 (the sender's timers do not
// hold the process), and the password is in none of its output. Started without SMTP_URL, it says notices stay
// queued and sends nothing.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import type { DatabaseConfig } from "../src/db/index.js";
import type { OutboxEntry } from "../src/outbox/admin.js";
import { securityNotice } from "../src/outbox/notices.js";
import { enqueueNotices } from "../src/outbox/service.js";
import { describeEachDatabase } from "./databases.js";
import { startSmtpReceiver, type SmtpReceiver } from "./support/smtp.js";
import { openMigrated } from "./sync-support.js";

const BIN = fileURLToPath(new URL("../bin/latchkey-server.mjs", import.meta.url));
if (!existsSync(fileURLToPath(new URL("../dist/main.mjs", import.meta.url)))) {
  throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
}

const PASSWORD = "Relay-Pa55-9d1e7b";
const FORMS = [PASSWORD, encodeURIComponent(PASSWORD), Buffer.from(PASSWORD).toString("base64")];

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

function env(config: DatabaseConfig, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    LANG: "C.UTF-8",
    LATCHKEY_SERVER_SECRET: randomBytes(32).toString("base64url"),
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}),
    ...extra,
  };
}

async function startServer(config: DatabaseConfig, extra: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [BIN, "--port", "0", "--data-dir", config.dataDir], {
    env: env(config, extra),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await vi.waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${output}`);
      expect(output).toContain('"event":"server.listening"');
    },
    { timeout: 30_000, interval: 50 },
  );
  return { child, output: () => output, exited };
}

function adminOutbox(
  config: DatabaseConfig,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, "admin", "outbox", "--json", "--data-dir", config.dataDir], {
    env: env(config, {}),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describeEachDatabase("notices from the server process", (target) => {
  let receiver: SmtpReceiver;
  beforeAll(async () => {
    receiver = await startSmtpReceiver("latchkey", PASSWORD);
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  async function queue(config: DatabaseConfig, account: string): Promise<void> {
    const database = await openMigrated(config);
    try {
      const at = new Date().toISOString();
      await database.db
        .transaction()
        .execute((trx) =>
          enqueueNotices(
            trx,
            [securityNotice({ type: "sharing-key-rotated", account, at, orgs: ["acme"] })],
            at,
          ),
        );
    } finally {
      await database.close();
    }
  }

  it("sends queued notices by SMTP_URL, retries a refused one, stops on SIGTERM, and never prints the password", async () => {
    const config = await target.fresh();
    receiver.received.length = 0;
    receiver.refuseRecipients = false;
    const server = await startServer(config, {
      SMTP_URL: receiver.url,
      SMTP_FROM: "Latchkey <latchkey@example.test>",
    });
    expect(server.output()).toContain(`"smtp":"smtp://127.0.0.1:${receiver.port}"`);

    await queue(config, "ann@example.test");
    await vi.waitFor(
      () => expect(receiver.received.map((m) => m.rcptTo.join())).toEqual(["ann@example.test"]),
      {
        timeout: 30_000,
        interval: 100,
      },
    );
    receiver.refuseRecipients = true;
    await queue(config, "bob@example.test");
    await vi.waitFor(() => expect(server.output()).toContain('"event":"outbox.retry"'), {
      timeout: 30_000,
      interval: 100,
    });

    const listed = await adminOutbox(config);
    expect(listed.code, listed.stderr).toBe(0);
    const { notices } = JSON.parse(listed.stdout) as { notices: OutboxEntry[] };
    expect(notices.map((n) => [n.recipient, n.status]).sort()).toEqual([
      ["ann@example.test", "sent"],
      ["bob@example.test", "retrying"],
    ]);
    expect(notices.find((n) => n.status === "retrying")?.lastError).toMatch(/^EENVELOPE: .*\(SMTP 550\)$/);

    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('"event":"shutdown.done"');
    for (const form of FORMS) expect(server.output() + listed.stdout + listed.stderr).not.toContain(form);
  });

  it("without SMTP_URL keeps notices queued and says so", async () => {
    const config = await target.fresh();
    receiver.received.length = 0;
    const server = await startServer(config, {});
    expect(server.output()).toContain('"event":"outbox.no-smtp"');
    await queue(config, "carl@example.test");
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    const listed = await adminOutbox(config);
    expect((JSON.parse(listed.stdout) as { notices: OutboxEntry[] }).notices).toMatchObject([
      { recipient: "carl@example.test", status: "queued", attempts: 0 },
    ]);
    expect(receiver.received).toEqual([]);
  });

  it("refuses to start with an SMTP_URL it cannot use, without printing it", async () => {
    const config = await target.fresh();
    const child = spawn(process.execPath, [BIN, "--port", "0", "--data-dir", config.dataDir], {
      env: env(config, { SMTP_URL: `smtp://latchkey:${PASSWORD}@127.0.0.1:25/?debug=true` }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(2);
    expect(output).toContain("error LK_CONFIG_INVALID: SMTP_URL must not set debug");
    for (const form of FORMS) expect(output).not.toContain(form);
  });
});
