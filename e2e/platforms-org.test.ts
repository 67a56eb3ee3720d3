// `latchkey env platforms --org` on an organisation's copy, with the real server process, the built CLI and the
// loopback Fly.io double (docs/platforms.md, "Connections" and "Commands"): a maintainer connects, sealing the token
// with the organisation's vault key; a member lists, pushes (their machine unseals the token with the key it
// pulled) and records the status; a member's connect and disconnect are refused in the command's words; the
// organisation's audit log has the connect, push and disconnect rows, with no value or token; an unshare deletes
// the copy's connections.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFlyDouble, type FlyDouble } from "../packages/cli/test/support/platforms/fly-double.js";
import {
  latchkey,
  startServerWithUser,
  storedSession,
  newMachine,
  loginCli,
  type LatchkeyServer,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  readDatabase,
  refused,
  registerSharingKey,
  type Member,
} from "./support/teams.js";

const ANN = { email: "platforms-org-ann@example.com", password: "platforms org ann password for the e2e" };
const TOKEN = "fly-org-token-canary-4be8d1f7";
const VALUE = "lk-e2e-platform-org-value-canary-a93c";
const APP = "acme-org-web";
const ORG = "acme";

interface Connection {
  name: string;
  platform: string;
  environment: string;
  createdBy: string | null;
  lastPush: { version: number; added: number; outcome: string; pushedBy: string | null } | null;
}

interface LogEntry {
  action: string;
  vaultId: string | null;
  actor: { email: string } | null;
  metadata: Record<string, unknown>;
}

// The organisation commands that ask for a password (create, add, the sharing key's registration) run on a
// terminal.
describe.skipIf(!requirePart("the organisation platform e2e suite", terminalCheck()))(
  "env platforms on an organisation's copy",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let ann: Member;
    let bob: Member;
    let cid: Member;
    const dirs = new Map<Member, string>();
    let vaultId: string;
    let fly: FlyDouble;
    const outputs: ProcessResult[] = [];

    const run = async (member: Member, args: string[], input?: string): Promise<ProcessResult> => {
      const result = await latchkey(member.m, args, {
        cwd: dirs.get(member)!,
        ...(input === undefined ? {} : { input }),
      });
      outputs.push(result);
      return result;
    };
    const connectArgs = (name: string) => [
      "env",
      "platforms",
      "connect",
      "fly",
      "--org",
      ORG,
      "--env",
      "default",
      "--app",
      APP,
      "--base-url",
      fly.url,
      "--name",
      name,
      "--credential-stdin",
    ];
    const connections = async (member: Member): Promise<Connection[]> =>
      (
        JSON.parse(ok(await run(member, ["env", "platforms", "status", "--org", ORG, "--json"])).stdout) as {
          connections: Connection[];
        }
      ).connections;
    /** A call of the API with `member`'s CLI session, for what no command does; asserts a 200, returns its JSON. */
    const api = async (member: Member, method: string, path: string): Promise<unknown> => {
      const token = String((await storedSession(member.m, server))?.access_token);
      const response = await fetch(`${server.url}/api/v1/${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "x-latchkey-request-id": randomUUID() },
      });
      expect(response.status).toBe(200);
      return response.json();
    };
    /** The organisation's audit log (GET /api/v1/orgs/:slug/log) as `member` reads it. */
    const orgLog = async (member: Member): Promise<LogEntry[]> =>
      ((await api(member, "GET", `orgs/${ORG}/log`)) as { entries: LogEntry[] }).entries;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-org-"));
      server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
      const m = await newMachine(root, "ann");
      ok(await loginCli(m, server, ANN));
      ann = { ...ANN, m };
      const dir = await projectDir(root, "web-ann", "web");
      dirs.set(ann, dir);
      ok(await run(ann, ["env", "set", "API_KEY"], VALUE));
      ok(await run(ann, ["env", "push"]));
      const created = await onTerminal(ann, ["org", "create", ORG]);
      expect(created.code, created.output).toBe(0);
      bob = await newMember(server, root, "bob", "platforms-org-bob@example.com");
      cid = await newMember(server, root, "cid", "platforms-org-cid@example.com");
      for (const [member, role] of [
        [bob, "member"],
        [cid, "maintainer"],
      ] as const) {
        await registerSharingKey(member);
        await addMember(ann, ORG, member.email, role);
      }
      ok(await run(ann, ["env", "share", "--org", ORG, "--trust-new-members"]));
      vaultId = (JSON.parse(await latchkeyJsonOf(dir)) as { vault: string }).vault;
      for (const member of [bob, cid]) {
        dirs.set(member, await projectDir(root, `web-${member.m.name}`, "web", await latchkeyJsonOf(dir)));
        ok(await run(member, ["env", "pull", "--org", ORG, "--trust-new-members"]));
      }
      fly = await startFlyDouble({ token: TOKEN, app: APP });
    }, 240_000);
    afterAll(async () => {
      await fly?.close();
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it("a maintainer connects; a member lists, pushes with the key their machine pulled, and records the status", async () => {
      const connected = ok(await run(cid, connectArgs("fly-prod"), `${TOKEN}\n`));
      expect(connected.stderr).toContain("Connected fly-prod");
      expect(connected.stderr).toContain(`organisation ${ORG}`);

      const listed = JSON.parse(
        ok(await run(bob, ["env", "platforms", "list", "--org", ORG, "--json"])).stdout,
      ) as { org: string; vaultId: string; connections: Record<string, unknown>[] };
      expect(listed).toMatchObject({ org: ORG, vaultId });
      expect(listed.connections).toEqual([
        expect.objectContaining({
          name: "fly-prod",
          platform: "fly",
          environment: "default",
          createdBy: cid.email,
        }),
      ]);
      expect(listed.connections[0]).not.toHaveProperty("sealedCredential");

      const pushed = ok(await run(bob, ["env", "platforms", "push", "fly-prod", "--org", ORG]));
      expect(pushed.stderr).toContain("+ API_KEY");
      expect(fly.secrets.get("API_KEY") === VALUE).toBe(true);
      expect(fly.requests.length).toBeGreaterThan(0);
      expect(fly.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(fly.refusals).toEqual([]);
      expect(await connections(cid)).toEqual([
        expect.objectContaining({
          name: "fly-prod",
          lastPush: expect.objectContaining({ version: 1, added: 1, outcome: "ok", pushedBy: bob.email }),
        }),
      ]);
      // The organisation's copy only: the personal copy has no connections.
      const personal = JSON.parse(
        ok(await run(ann, ["env", "platforms", "list", "--personal", "--json"])).stdout,
      ) as { org: string | null; connections: unknown[] };
      expect(personal).toMatchObject({ org: null, connections: [] });
    }, 180_000);

    it("a member's connect and disconnect are refused in the command's words, and change nothing", async () => {
      const connect = refused(await run(bob, connectArgs("fly-bob"), `${TOKEN}\n`), "LK_ORG_FORBIDDEN");
      expect(connect.stderr).toContain(
        `Your role in organisation ${ORG} does not allow you to connect platforms to its copy of vault ${vaultId} (it needs maintainer or stronger). Nothing was changed.`,
      );
      expect(connect.stderr).toContain(`Ask a maintainer, admin or owner of ${ORG}`);
      const disconnect = refused(
        await run(bob, ["env", "platforms", "disconnect", "fly-prod", "--org", ORG]),
        "LK_ORG_FORBIDDEN",
      );
      expect(disconnect.stderr).toContain(
        `does not allow you to disconnect platforms of its copy of vault ${vaultId} (it needs maintainer or stronger)`,
      );
      expect((await connections(cid)).map((c) => c.name)).toEqual(["fly-prod"]);
    }, 120_000);

    it("the organisation's audit log has connect, push and disconnect rows, with no value or token", async () => {
      ok(await run(cid, ["env", "platforms", "disconnect", "fly-prod", "--org", ORG]));
      expect(await connections(cid)).toEqual([]);
      const entries = (await orgLog(ann)).filter((e) => e.action.startsWith("platform."));
      expect(entries.map((e) => `${e.action} ${e.actor?.email}`)).toEqual([
        `platform.disconnect ${cid.email}`,
        `platform.push ${bob.email}`,
        `platform.connect ${cid.email}`,
      ]);
      for (const entry of entries) {
        expect(entry.vaultId).toBe(vaultId);
        expect(entry.metadata).toMatchObject({ name: "fly-prod", platform: "fly", environment: "default" });
      }
      expect(entries[1]!.metadata).toMatchObject({ added: 1, changed: 0, removed: 0, outcome: "ok" });
      const text = JSON.stringify(entries);
      for (const secret of [TOKEN, VALUE]) expect(text.includes(secret)).toBe(false);
      // The copy's own log, through the CLI, says the same.
      const copyLog = JSON.parse(ok(await run(cid, ["env", "log", "--org", ORG, "--json"])).stdout) as {
        entries: { action: string }[];
      };
      expect(copyLog.entries.map((e) => e.action)).toEqual(
        expect.arrayContaining(["platform.connect", "platform.push", "platform.disconnect"]),
      );
    }, 120_000);

    it("unsharing the copy deletes its connections", async () => {
      ok(await run(cid, connectArgs("fly-again"), `${TOKEN}\n`));
      expect((await connections(bob)).map((c) => c.name)).toEqual(["fly-again"]);
      const connectionsOfOrg = () =>
        readDatabase(server, (db) =>
          Number(
            db
              .prepare(
                "SELECT count(*) AS n FROM platform_connections c JOIN orgs o ON o.id = c.org_id WHERE o.slug = ?",
              )
              .get(ORG)!.n,
          ),
        );
      expect(connectionsOfOrg()).toBe(1);

      // No CLI command unshares: the route, as the owner's CLI session.
      await api(ann, "DELETE", `orgs/${ORG}/vaults/${vaultId}`);
      expect(connectionsOfOrg()).toBe(0);
      refused(
        await run(bob, ["env", "platforms", "push", "fly-again", "--org", ORG]),
        "LK_ORG_VAULT_NOT_SHARED",
      );
      const gone = (await orgLog(ann)).find(
        (e) => e.action === "platform.disconnect" && e.metadata.name === "fly-again",
      );
      expect(gone?.metadata).toMatchObject({ cause: "org.vault.unshare", platform: "fly" });

      // Shared again, the copy starts with no connections.
      ok(await run(ann, ["env", "share", "--org", ORG, "--trust-new-members"]));
      expect(await connections(ann)).toEqual([]);
    }, 180_000);

    it("the token and the value are in no CLI output", () => {
      expect(outputs.length).toBeGreaterThan(10);
      for (const text of outputs.flatMap((o) => [o.stdout, o.stderr]))
        for (const secret of [TOKEN, VALUE]) expect(text.includes(secret)).toBe(false);
    });
  },
);
