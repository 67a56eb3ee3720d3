// The notices of a member's addition and removal, end to end on SQLite and PostgreSQL. The add route (the real
// app, a step-up proof) queues, in its transaction, the security notice to the added account and impact notices to
// the organisation's owners, not to the account that added it nor to admins; the removal route queues the security
// notice to the removed account and impact notices to the owners and admins (not to its maintainers and members).
// A change refused (no proof, an unknown email) queues nothing; the sender delivers what was queued to a real SMTP
// server.
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { listNotices } from "../src/outbox/data.js";
import { createOutboxSender } from "../src/outbox/sender.js";
import { createSmtpTransport } from "../src/outbox/smtp.js";
import { describeEachDatabase } from "./databases.js";
import { call, callWithProof, makeOrg, newMember, type Member } from "./org-support.js";
import { stepUpProofFor } from "./support/step-up.js";
import { startSmtpReceiver, type SmtpReceiver } from "./support/smtp.js";
import { openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

describeEachDatabase("notices of a member's addition and removal", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let receiver: SmtpReceiver;
  let owner: Member;
  let admin: Member;
  let deputy: Member;
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
    deputy = await newMember(server, database.db);
    maintainer = await newMember(server, database.db);
    member = await newMember(server, database.db);
    leaver = await newMember(server, database.db);
    await makeOrg(server, owner, "acme", [
      [admin, "admin"],
      [deputy, "admin"],
      [maintainer, "maintainer"],
      [member, "member"],
      [leaver, "member"],
    ]);
  });

  /** The notices queued since `before` (ids of earlier ones). */
  const queuedSince = async (before: readonly string[]) =>
    (await listNotices(database.db, 100)).filter((r) => !before.includes(r.id));
  const queuedIds = async () => (await listNotices(database.db, 100)).map((r) => r.id);

  it("queues the added account's notice and the owners' (not the adder's, not admins') in the addition", async () => {
    const newcomer = await server.caller();
    const before = await queuedIds();
    const add = (email: string, proof: boolean) =>
      proof
        ? callWithProof(server, admin.token, "org:member:add", "POST", "/acme/members", {
            email,
            role: "maintainer",
          })
        : call(app, admin.token, "POST", "/acme/members", { email, role: "maintainer" });
    expect((await add(newcomer.email, false)).statusCode).toBe(403);
    expect((await add("nobody@example.test", true)).statusCode).toBe(404);
    expect(await queuedSince(before)).toEqual([]);

    const added = await add(newcomer.email, true);
    expect(added.statusCode, added.body).toBe(201);
    const rows = await queuedSince(before);
    expect(rows.map((r) => [r.kind, r.recipient]).sort()).toEqual(
      [
        ["impact", owner.email],
        ["security", newcomer.email],
      ].sort(),
    );
    const security = rows.find((r) => r.kind === "security")!;
    expect(security.subject).toBe("Latchkey: you were added to the organisation acme");
    expect(security.body).toContain(
      `${admin.email} added the Latchkey account ${newcomer.email} to the organisation acme as maintainer`,
    );
    const impact = rows.find((r) => r.kind === "impact")!;
    expect(impact.subject).toBe(`Latchkey: ${newcomer.email} was added to the organisation acme`);
    expect(impact.body).toContain(`latchkey org remove acme ${newcomer.email}`);
    // Names and roles only: never a key or a fingerprint.
    for (const row of rows) expect(`${row.subject}\n${row.body}`).not.toMatch(/[0-9a-f]{64}|fingerprint/i);
  });
  afterAll(async () => {
    await receiver?.stop();
    await server?.close();
    await database?.close();
  });

  it("queues the removed account's notice and the owners' and admins' in the removal, and sends them", async () => {
    const path = `/acme/members/${leaver.userId}`;
    const before = await queuedIds();
    const refused = await call(app, admin.token, "DELETE", path);
    expect(refused.statusCode).toBe(403);
    expect(await queuedSince(before)).toEqual([]);

    const removed = await call(app, admin.token, "DELETE", path, undefined, {
      "x-latchkey-step-up": await stepUpProofFor(server.identity, admin.token, "org:member:remove"),
    });
    expect(removed.statusCode, removed.body).toBe(200);
    const rows = await queuedSince(before);
    expect(rows.map((r) => [r.kind, r.recipient]).sort()).toEqual(
      [
        ["impact", admin.email],
        ["impact", deputy.email],
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
    // Everything queued so far: the additions' notices (makeOrg's and the test's above) and the removal's.
    const queued = await listNotices(database.db, 100);
    expect(await sender.runOnce()).toEqual({ sent: queued.length, failed: 0 });
    await sender.stop();
    expect(receiver.received.map((m) => [m.rcptTo.join(), m.headers.get("subject")]).sort()).toEqual(
      queued.map((r) => [r.recipient, r.subject]).sort(),
    );
  });
});
