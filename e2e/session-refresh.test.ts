// One refresh at a time, against the real server's OpenID provider, which rotates refresh tokens and takes a second
// use of a spent one for theft (it revokes the whole grant). Two CLI processes meeting the same expired session,
// and one `env pull --org` whose two concurrent requests are both refused, must each end with the grant alive:
// one refresh recorded by the server, no grant revoked, and the stored session good for the next refresh too.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  latchkey,
  startLatchkeyServer,
  storedSession,
  type LatchkeyServer,
} from "./support/latchkey-server.js";
import {
  newMember,
  ok,
  onTerminal,
  projectDir,
  readDatabase,
  secretsOf,
  userIdOf,
  type Member,
} from "./support/teams.js";

interface Session {
  access_token: string;
  refresh_token?: string;
  expires_at: number;
}

describe.skipIf(!requirePart("the session refresh e2e suite", terminalCheck()))(
  "one refresh at a time against the real provider",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let ann: Member;
    let annId: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-refresh-"));
      server = await startLatchkeyServer({ dataDir: join(root, "server") });
      ann = await newMember(server, root, "ann", "ann@example.com");
      annId = userIdOf(server, ann.email);
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    async function session(): Promise<Session> {
      const stored = (await storedSession(ann.m, server)) as Session | null;
      expect(stored).not.toBeNull();
      return stored!;
    }

    async function storeSession(value: Session): Promise<void> {
      ok(
        await latchkey(ann.m, ["keystore", "set", `session:${server.url}`], { input: JSON.stringify(value) }),
      );
    }

    /** How many of ann's refreshes the provider granted, and how many of her grants it revoked as stolen. */
    function providerEvents(): { refreshed: number; revoked: number } {
      return readDatabase(server, (db) => {
        const count = (action: string) =>
          Number(
            db
              .prepare("SELECT COUNT(*) AS n FROM audit_events WHERE user_id = ? AND action = ?")
              .get(annId, action)!.n,
          );
        return { refreshed: count("auth.token_refreshed"), revoked: count("auth.session_revoked") };
      });
    }

    const expired = (s: Session): Session => ({ ...s, expires_at: Math.floor(Date.now() / 1000) - 120 });

    /** The grant is alive: an expired copy of the stored session is refreshed again, and the server answers. */
    async function expectGrantAlive(): Promise<void> {
      const before = providerEvents();
      await storeSession(expired(await session()));
      ok(await latchkey(ann.m, ["whoami"]));
      expect(providerEvents()).toEqual({ refreshed: before.refreshed + 1, revoked: 0 });
    }

    it("two processes on the same expired session: one refresh, both answer, the grant lives on", async () => {
      await storeSession(expired(await session()));
      const before = providerEvents();
      const both = await Promise.all([latchkey(ann.m, ["whoami"]), latchkey(ann.m, ["whoami"])]);
      for (const result of both) ok(result);
      expect(providerEvents()).toEqual({ refreshed: before.refreshed + 1, revoked: 0 });
      await expectGrantAlive();
    }, 120_000);

    it("env pull --org whose concurrent requests are both refused (401) refreshes once and pulls", async () => {
      const dir = await projectDir(root, "app", "app");
      const created = await onTerminal(ann, ["org", "create", "acme"]);
      expect(created.code, created.output).toBe(0);
      ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: dir, input: "API_KEY=sk-refresh-41d7\n" }));
      ok(await latchkey(ann.m, ["env", "share", "--org", "acme"], { cwd: dir }));

      // An access token the server does not know, not yet expired here: the sharing-key check and the copy's
      // GET go out together with it, both meet a 401, and both want a refresh.
      await storeSession({ ...(await session()), access_token: "refused-by-the-server" });
      const before = providerEvents();
      ok(await latchkey(ann.m, ["env", "pull", "--org", "acme"], { cwd: dir }));
      expect(await secretsOf(ann, dir)).toEqual({ API_KEY: "sk-refresh-41d7" });
      expect(providerEvents()).toEqual({ refreshed: before.refreshed + 1, revoked: 0 });
      await expectGrantAlive();
    }, 180_000);
  },
);
