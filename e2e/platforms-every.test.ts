// A canary pushed to every platform (docs/platforms.md, "What CI tests"): for each name in core's PLATFORMS, the
// real server process and the built CLI connect to that platform's loopback double (PLATFORM_FIXTURES) with a
// credential canary on stdin, push an environment holding a value canary, find the canary in what the double holds
// (decrypted where the platform encrypts on the client), pull it back into the vault where the platform returns
// values, and read the status. A platform without a fixture fails its test: that is how a new platform is known to
// be covered. Then no canary — value or credential — is in any file of the server's data directory (the SQLite
// database included), the server's output, any file of the machine's home or the project, or any CLI output; on
// PostgreSQL, in no row of any table either. On both databases, one server and one machine, connections in turn.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PLATFORMS, type PlatformName } from "@latchkey/core";
import { PLATFORM_FIXTURES, type StartedFixture } from "../packages/cli/test/support/platforms/fixtures.js";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import {
  latchkey,
  loginCli,
  newMachine,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { ok, projectDir, refused } from "./support/teams.js";

const ANN = { email: "platforms-every@example.com", password: "every platform's canary e2e password" };
/** The variable holding each platform's value canary; a name every platform accepts. */
const CANARY = "CANARY_VALUE";

/** Every file under `dir`, recursively. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** The canaries of one platform: distinct per platform and per run. */
function canariesOf(platform: PlatformName): { value: string; credential: string } {
  const tag = randomBytes(6).toString("hex");
  return { value: `lk-every-value-${platform}-${tag}`, credential: `lk-every-cred-${platform}-${tag}` };
}

/** One canary and what a failure calls it (never the canary itself: test output must not hold it). */
interface Canary {
  readonly label: string;
  readonly text: string;
}

/** The labels of the canaries `text` holds, as written or hex-encoded (a bytea column's text form). */
function leaks(text: string, canaries: readonly Canary[]): string[] {
  const lower = text.toLowerCase();
  return canaries
    .filter((c) => text.includes(c.text) || lower.includes(Buffer.from(c.text).toString("hex")))
    .map((c) => c.label);
}

describeEachDatabase("a canary pushed to every platform", (target) => {
  let root: string;
  let dataDir: string;
  let databaseUrl: string | undefined;
  let server: LatchkeyServer;
  let m: Machine;
  let dir: string;
  const canaries = new Map(PLATFORMS.map((p) => [p, canariesOf(p)]));
  const allCanaries: Canary[] = [...canaries].flatMap(([platform, c]) => [
    { label: `${platform}'s value canary`, text: c.value },
    { label: `${platform}'s credential canary`, text: c.credential },
  ]);
  const started: StartedFixture[] = [];
  const outputs: ProcessResult[] = [];

  const run = async (args: string[], input?: string): Promise<ProcessResult> => {
    const result = await latchkey(m, args, { cwd: dir, ...(input === undefined ? {} : { input }) });
    outputs.push(result);
    return result;
  };

  beforeAll(async () => {
    const config = await target.fresh();
    dataDir = config.dataDir;
    databaseUrl = config.databaseUrl;
    root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-every-"));
    server = await startServerWithUser(config, ANN);
    m = await newMachine(root, "ann");
    ok(await loginCli(m, server, ANN));
    dir = await projectDir(root, "every", "every");
    for (const platform of PLATFORMS) {
      ok(await run(["env", "set", "-e", `every-${platform}`, CANARY], canaries.get(platform)!.value));
      ok(await run(["env", "set", "-e", `every-${platform}`, "REGION"], "every-region"));
    }
    ok(await run(["env", "push"]));
  }, 240_000);
  afterAll(async () => {
    for (const fixture of started) await fixture.double.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  for (const platform of PLATFORMS) {
    it(`${platform}: connect, push, the double holds the canary, pull where it can, status`, async () => {
      const fixture = PLATFORM_FIXTURES[platform];
      expect(
        fixture,
        `${platform} has no entry in PLATFORM_FIXTURES (packages/cli/test/support/platforms/fixtures.ts)`,
      ).toBeDefined();
      const { value, credential } = canaries.get(platform)!;
      const environment = `every-${platform}`;
      const name = `every-${platform}`;
      const double = await fixture!.start(credential);
      started.push(double);
      expect(double.credentialInput.includes(credential), "credentialInput carries the credential").toBe(
        true,
      );

      const connected = ok(
        await run(
          [
            "env",
            "platforms",
            "connect",
            platform,
            "--env",
            environment,
            "--name",
            name,
            ...double.connectFlags,
            "--credential-stdin",
          ],
          double.credentialInput,
        ),
      );
      expect(connected.stderr).toContain(`Connected ${name}`);

      const pushed = ok(await run(["env", "platforms", "push", name]));
      expect(pushed.stderr).toContain(`+ ${CANARY}`);
      const held = await double.held();
      // Compared as a boolean: a failure must not print the canary.
      expect(held.get(CANARY) === value, `${platform} holds the value canary`).toBe(true);
      expect(held.get("REGION")).toBe("every-region");

      if (fixture!.pull) {
        // Gone from the server's version and the local vault, so only the platform can bring it back.
        ok(await run(["env", "unset", "-e", environment, CANARY]));
        ok(await run(["env", "push"]));
        const pulled = ok(await run(["env", "platforms", "pull", name]));
        expect(`${pulled.stdout}${pulled.stderr}`).toContain(CANARY);
        // Read straight from the pipe and kept out of `outputs`: this is the one output that must hold it.
        const got = await latchkey(m, ["env", "get", "-e", environment, CANARY], { cwd: dir });
        expect(got.code, got.stderr).toBe(0);
        expect(got.stdout === value, `${platform}'s pull brought the value canary back`).toBe(true);
      } else {
        refused(await run(["env", "platforms", "pull", name]), "LK_PLATFORM_PULL_UNSUPPORTED");
      }

      const status = JSON.parse(ok(await run(["env", "platforms", "status", "--json"])).stdout) as {
        connections: { name: string; lastPush: Record<string, unknown> | null }[];
      };
      expect(status.connections.find((c) => c.name === name)?.lastPush).toMatchObject({
        // The version is the copy's newest when the push ran: a pull's round trip before it pushed another.
        version: expect.any(Number),
        added: 2,
        changed: 0,
        removed: 0,
        outcome: "ok",
        pushedBy: ANN.email,
      });
      expect(double.double.refusals).toEqual([]);
    }, 120_000);
  }

  it("no canary is in the server's files, output or tables, the machine's or project's files, or CLI output", async () => {
    let rows: { table: string; text: string }[] = [];
    if (databaseUrl !== undefined) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const tables = await client.query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        );
        expect(tables.rows.map((t) => t.name)).toContain("platform_connections");
        for (const { name } of tables.rows) {
          const result = await client.query<{ row: string }>(
            `SELECT t::text AS row FROM ${client.escapeIdentifier(name)} t`,
          );
          rows = rows.concat(result.rows.map((r) => ({ table: name, text: r.row })));
        }
      } finally {
        await client.end();
      }
    }
    await server.stop();

    const paths = [...(await files(dataDir)), ...(await files(root))];
    const found: string[] = [];
    let bytes = 0;
    let seesConnections = false;
    for (const path of paths) {
      const text = (await readFile(path)).toString("latin1");
      bytes += text.length;
      if (text.includes("every-vercel")) seesConnections = true;
      for (const leak of leaks(text, allCanaries)) found.push(`${leak} in ${path}`);
    }
    const logs: [string, string][] = [
      ["server stdout", server.stdout()],
      ["server stderr", server.stderr()],
      ["PostgreSQL log", target.cluster()?.log() ?? ""],
      ...outputs.flatMap((o, i): [string, string][] => [
        [`CLI run ${i} stdout`, o.stdout],
        [`CLI run ${i} stderr`, o.stderr],
      ]),
    ];
    for (const [where, text] of logs)
      for (const leak of leaks(text, allCanaries)) found.push(`${leak} in ${where}`);
    for (const row of rows) {
      for (const leak of leaks(row.text, allCanaries)) found.push(`${leak} in a row of ${row.table}`);
    }
    expect(found).toEqual([]);

    // The scans read something, and would have seen what is there: the connections' names are in the database
    // (SQLite: the data directory's file; PostgreSQL: platform_connections' rows), and the server logged requests.
    expect(paths.length).toBeGreaterThan(3);
    expect(bytes).toBeGreaterThan(0);
    expect(outputs.length).toBeGreaterThan(PLATFORMS.length * 3);
    expect(server.stdout().length).toBeGreaterThan(0);
    if (databaseUrl === undefined) {
      expect(seesConnections, "the SQLite database names the connections").toBe(true);
    } else {
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.some((r) => r.table === "platform_connections" && r.text.includes("every-vercel"))).toBe(
        true,
      );
    }
  }, 120_000);
});
