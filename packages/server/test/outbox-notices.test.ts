// The notices of a member's removal, end to end on SQLite and PostgreSQL: the removal route (the real app, a
// step-up proof) queues, in its transaction, the security notice to the removed account and impact notices to the
// organisation's owners and admins (not to its maintainers and members); a removal refused for want of a proof
// queues nothing; and the sender delivers what was queued to a real SMTP server.
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { listNotices } from "../src/outbox/data.js";
import { createOutboxSender } from "../src/outbox/sender.js";
import { createSmtpTransport } from "../src/outbox/smtp.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, type Member } from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { startSmtpReceiver, type SmtpReceiver } from "./support/smtp.js";
import { openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

describeEachDatabase("notices of a member's removal", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let receiver: SmtpReceiver;
  let owner: Member;
  let admin: Member;
  let maintainer: Member;
  let member: Member;
  let leaver: Member;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    receiver = await startSmtpReceiver("notices", "relay-password-long");
    owner = await newMember(server, database.db);
    admin = await newMember(server, database.db);
    maintainer = await newMember(server, database.db);
    member = await newMember(server, database.db);
    leaver = await newMember(server, database.db);
    await makeOrg(app, owner, "acme", [
      [admin, "admin"],
      [maintainer, "maintainer"],
      [member, "member"],
      [leaver, "member"],
    ]);
  });
  afterAll(async () => {
    await receiver?.stop();
    await server?.close();
    await database?.close();
  });

  it("queues the removed account's notice and the owners' and admins' in the removal, and sends them", async () => {
    const path = `/acme/members/${leaver.userId}`;
    const refused = await call(app, admin.token, "DELETE", path);
    expect(refused.statusCode).toBe(403);
    expect(await listNotices(database.db, 10)).toEqual([]);

    const removed = await call(app, admin.token, "DELETE", path, undefined, {
      "x-latchkey-step-up": await stepUpProofFor(server.identity, admin.token, "org:member:remove"),
    });
    expect(removed.statusCode, removed.body).toBe(200);
    const rows = await listNotices(database.db, 10);
    expect(rows.map((r) => [r.kind, r.recipient]).sort()).toEqual(
      [
        ["impact", admin.email],
        ["impact", owner.email],
        ["security", leaver.email],
      ].sort(),
    );
    const security = rows.find((r) => r.kind === "security")!;
    expect(security.subject).toBe("Latchkey: you were removed from the organisation acme");
    expect(security.body).toContain(`${admin.email} removed the Latchkey account ${leaver.email}`);
    for (const row of rows.filter((r) => r.kind === "impact")) {
      expect(row.subject).toBe(`Latchkey: ${leaver.email} was removed from the organisation acme`);
    }

    const sender = createOutboxSender({
      db: database.db,
      transport: createSmtpTransport({ url: receiver.url, from: "latchkey@example.test" }),
      now: () => new Date(),
      timers: { setTimeout: () => undefined, clearTimeout: () => undefined },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    expect(await sender.runOnce()).toEqual({ sent: 3, failed: 0 });
    await sender.stop();
    expect(receiver.received.map((m) => [m.rcptTo.join(), m.headers.get("subject")]).sort()).toEqual(
      rows.map((r) => [r.recipient, r.subject]).sort(),
    );
  });
});
