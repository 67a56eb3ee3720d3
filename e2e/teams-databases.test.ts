// The organisation flow on both databases (docs/teams.md): the real server process on SQLite and on PostgreSQL,
// three users with a machine each share a vault and pull identical secrets; one is removed (its vault key rotated)
// and can no longer pull, while the other two pull the new version. The full suite of organisation cases runs in
// teams.test.ts (SQLite, where it reads the database file).
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkey, startLatchkeyServer, tempDir, type LatchkeyServer } from "./support/latchkey-server.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  refused,
  registerSharingKey,
  secretsOf,
  type Member,
} from "./support/teams.js";

const SECRETS = { API_KEY: "sk-db-3c81", DATABASE_URL: "postgres://app:pw-5e2d@db.internal/app" };

if (requirePart("the teams database e2e suite", terminalCheck())) {
  describeEachDatabase("three members share an organisation vault", (target) => {
    let root: { path: string; cleanup: () => Promise<void> };
    let server: LatchkeyServer;
    let team: [Member, Member, Member];

    beforeAll(async () => {
      const config = await target.fresh();
      root = await tempDir("lk-e2e-teams-db-");
      server = await startLatchkeyServer({
        dataDir: config.dataDir,
        ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      });
      team = [
        await newMember(server, root.path, "ann", "ann@db.example"),
        await newMember(server, root.path, "bob", "bob@db.example"),
        await newMember(server, root.path, "cid", "cid@db.example"),
      ];
    }, 180_000);
    afterAll(async () => {
      await server?.stop();
      await root?.cleanup();
    });

    it("each pulls the same secrets; a removed member cannot pull the rotated copy", async () => {
      const [ann, bob, cid] = team;
      const created = await onTerminal(ann, ["org", "create", "acme"]);
      expect(created.code, created.output).toBe(0);
      for (const member of [bob, cid]) {
        await registerSharingKey(member);
        await addMember(ann, "acme", member.email);
      }
      const annDir = await projectDir(root.path, "app-ann", "app");
      const dotenv = Object.entries(SECRETS)
        .map(([key, value]) => `${key}=${value}\n`)
        .join("");
      ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: annDir, input: dotenv }));
      ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: annDir }));
      const dirs = new Map<Member, string>([[ann, annDir]]);
      for (const member of [bob, cid]) {
        const dir = await projectDir(root.path, `app-${member.m.name}`, "app", await latchkeyJsonOf(annDir));
        dirs.set(member, dir);
        ok(await latchkey(member.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: dir }));
      }
      for (const member of team) expect(await secretsOf(member, dirs.get(member)!)).toEqual(SECRETS);

      const removal = await onTerminal(ann, ["org", "remove", "acme", bob.email]);
      expect(removal.code, removal.output).toBe(0);
      expect(removal.output).toContain("new vault key as version 2");
      refused(
        await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: dirs.get(bob)! }),
        "LK_ORG_NOT_FOUND",
      );
      for (const member of [ann, cid]) {
        const pulled = ok(
          await latchkey(member.m, ["env", "pull", "--org", "acme", "--json"], { cwd: dirs.get(member)! }),
        );
        expect(JSON.parse(pulled.stdout)).toMatchObject({ org: "acme", version: 2 });
        expect(await secretsOf(member, dirs.get(member)!)).toEqual(SECRETS);
      }
    }, 240_000);
  });
}
