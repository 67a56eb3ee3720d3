// No secret value reaches the server in the clear through an organisation (docs/teams.md): 1,000 canaries —
// unique random values — shared with an organisation of 5 members and pulled by each of them, one member then
// removed (its vault rotated, its notices queued); then every canary is looked for in the server's SQLite file and
// its write-ahead log, everything the server process printed, every audit row and every outbox row: none appears
// anywhere. Positive controls show each search would find what is there: the members hold every canary, the
// database holds the organisation's slug and the members' emails, the log names the organisation's routes.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  readDatabase,
  registerSharingKey,
  secretsOf,
  type Member,
} from "./support/teams.js";

const CANARIES = 1_000;
const NAMES = ["ann", "bob", "cid", "dee", "eve"] as const;

describe.skipIf(!requirePart("the teams canary e2e suite", terminalCheck()))(
  "1,000 canaries shared with and pulled by 5 members never reach the server in the clear",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let members: Member[];
    const canaries = new Map<string, string>();

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-teams-canaries-"));
      server = await startLatchkeyServer({ dataDir: join(root, "server") });
      members = [];
      for (const name of NAMES) members.push(await newMember(server, root, name, `${name}@canary.example`));
      for (let i = 0; i < CANARIES; i++)
        canaries.set(`CANARY_${String(i).padStart(4, "0")}`, `canary-${randomBytes(16).toString("hex")}`);
    }, 180_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it("shared, pulled by all, one member removed: 0 occurrences in the database, WAL, logs, audit and outbox", async () => {
      const [ann, ...others] = members as [Member, ...Member[]];
      const created = await onTerminal(ann, ["org", "create", "canary"]);
      expect(created.code, created.output).toBe(0);
      for (const member of others) {
        await registerSharingKey(member);
        await addMember(ann, "canary", member.email);
      }
      const dir = await projectDir(root, "app-ann", "canary-app");
      const dotenv = [...canaries].map(([key, value]) => `${key}=${value}\n`).join("");
      ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: dir, input: dotenv }));
      const shared = ok(
        await latchkey(ann.m, ["env", "share", "--org", "canary", "--trust-new-members", "--json"], {
          cwd: dir,
        }),
      );
      expect((JSON.parse(shared.stdout) as { sharedWith: string[] }).sharedWith).toHaveLength(NAMES.length);
      const expected = Object.fromEntries(canaries);
      for (const member of members) {
        const checkout =
          member === ann
            ? dir
            : await projectDir(root, `app-${member.m.name}`, "canary-app", await latchkeyJsonOf(dir));
        // ann wrapped the keys: the others' first pull takes her sharing key with the flag.
        ok(
          await latchkey(member.m, ["env", "pull", "--org", "canary", "--trust-new-members"], {
            cwd: checkout,
          }),
        );
        // The positive control of the whole test: every member really holds every canary.
        expect(await secretsOf(member, checkout)).toEqual(expected);
      }
      const removal = await onTerminal(ann, ["org", "remove", "canary", others[0]!.email]);
      expect(removal.code, removal.output).toBe(0);
      expect(removal.output).toContain("CANARY_0999");

      const database = join(server.dataDir, "latchkey.sqlite");
      const files = [database, `${database}-wal`].filter((file) => existsSync(file));
      expect(files).toContain(`${database}-wal`);
      const stores: Record<string, string> = {
        logs: `${server.stdout()}\n${server.stderr()}`,
        audit: JSON.stringify(readDatabase(server, (db) => db.prepare("SELECT * FROM audit_events").all())),
        outbox: JSON.stringify(readDatabase(server, (db) => db.prepare("SELECT * FROM outbox").all())),
      };
      for (const file of files) stores[file] = (await readFile(file)).toString("latin1");
      // Each search finds what is there (the newest rows may still be in the write-ahead log only).
      const onDisk = files.map((file) => stores[file]).join("");
      expect(onDisk).toContain("canary-app");
      expect(onDisk).toContain(ann.email);
      expect(stores.logs).toContain("/api/v1/orgs/canary");
      expect(stores.audit).toContain("org.vault.pull");
      expect(stores.outbox).toContain(others[0]!.email);
      const found: string[] = [];
      for (const [where, text] of Object.entries(stores))
        for (const [key, value] of canaries) if (text.includes(value)) found.push(`${key} in ${where}`);
      expect(found).toEqual([]);
    }, 600_000);
  },
);
