// `latchkey env platforms` with the real server process, the built CLI and the loopback Fly.io double
// (docs/platforms.md, "Connections" and "Commands"): connect → push → status → a changed secret's push shows its
// plan → --prune → pull refused (Fly keeps values write-only) → disconnect. The vault's canary value reaches the
// platform, and neither it nor the platform token appears in any file of the server's data directory (the SQLite
// database included), the server's log, any file of the machine's home or project, or the CLI's output.
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFlyDouble, type FlyDouble } from "../packages/cli/test/support/platforms/fly-double.js";
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

const ANN = { email: "platforms-ann@example.com", password: "platforms ann password for the e2e suite" };
const VALUE_CANARY = "lk-e2e-platform-value-canary-51c0d3";
const TOKEN_CANARY = "fly-token-canary-9e27b4a1";
const APP = "acme-web";

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

describe("env platforms with the server and a Fly.io double", () => {
  let root: string;
  let server: LatchkeyServer;
  let m: Machine;
  let dir: string;
  let fly: FlyDouble;
  const outputs: ProcessResult[] = [];

  const run = async (args: string[], input?: string): Promise<ProcessResult> => {
    const result = await latchkey(m, args, { cwd: dir, ...(input === undefined ? {} : { input }) });
    outputs.push(result);
    return result;
  };
  const status = async () =>
    (
      JSON.parse(ok(await run(["env", "platforms", "status", "--json"])).stdout) as {
        connections: { name: string; lastPush: Record<string, unknown> | null }[];
      }
    ).connections;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
    m = await newMachine(root, "ann");
    ok(await loginCli(m, server, ANN));
    dir = await projectDir(root, "web", "web");
    ok(await run(["env", "set", "API_KEY"], VALUE_CANARY));
    ok(await run(["env", "set", "DB_URL"], "postgres://db.internal/app"));
    ok(await run(["env", "push"]));
    fly = await startFlyDouble({ token: TOKEN_CANARY, app: APP });
  }, 180_000);
  afterAll(async () => {
    await fly?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("refuses a credential file others can read, and a terminal-less connect without a credential source", async () => {
    const file = join(root, "fly-token");
    await writeFile(file, TOKEN_CANARY);
    await chmod(file, 0o644);
    const connect = [
      "env",
      "platforms",
      "connect",
      "fly",
      "--env",
      "default",
      "--app",
      APP,
      "--base-url",
      fly.url,
    ];
    const open = refused(await run([...connect, "--credential-file", file]), "LK_USAGE");
    expect(open.stderr).toContain("only you can read");
    refused(await run(connect), "LK_NOT_INTERACTIVE");
    const listed = JSON.parse(ok(await run(["env", "platforms", "list", "--json"])).stdout) as {
      connections: unknown[];
    };
    expect(listed.connections).toEqual([]);
    expect(fly.requests).toEqual([]);
  }, 120_000);

  it("connect → push → status → a change's plan → --prune → pull refused → disconnect", async () => {
    const connected = ok(
      await run(
        [
          "env",
          "platforms",
          "connect",
          "fly",
          "--env",
          "default",
          "--app",
          APP,
          "--base-url",
          fly.url,
          "--credential-stdin",
        ],
        `${TOKEN_CANARY}\n`,
      ),
    );
    expect(connected.stderr).toContain("Connected fly-default");
    const listed = JSON.parse(ok(await run(["env", "platforms", "list", "--json"])).stdout) as {
      connections: { name: string; platform: string; environment: string; config: unknown }[];
    };
    expect(listed.connections).toEqual([
      expect.objectContaining({
        name: "fly-default",
        platform: "fly",
        environment: "default",
        config: { platform: "fly", app: APP, baseUrl: fly.url },
      }),
    ]);

    const first = ok(await run(["env", "platforms", "push", "fly-default"]));
    expect(first.stderr).toContain("+ API_KEY");
    expect(first.stderr).toContain("+ DB_URL");
    expect(Object.fromEntries(fly.secrets)).toEqual({
      API_KEY: VALUE_CANARY,
      DB_URL: "postgres://db.internal/app",
    });
    expect((await status())[0]?.lastPush).toMatchObject({
      version: 1,
      added: 2,
      changed: 0,
      removed: 0,
      outcome: "ok",
      pushedBy: ANN.email,
    });

    ok(await run(["env", "set", "API_KEY"], `${VALUE_CANARY}-2`));
    ok(await run(["env", "unset", "DB_URL"]));
    ok(await run(["env", "push"]));
    const plan = ok(await run(["env", "platforms", "push", "fly-default", "--dry-run"]));
    expect(plan.stderr).toContain("~ API_KEY");
    expect(plan.stderr).not.toContain("- DB_URL");
    expect(plan.stderr).toContain("Dry run: nothing was sent");
    const prunePlan = ok(await run(["env", "platforms", "push", "fly-default", "--dry-run", "--prune"]));
    expect(prunePlan.stderr).toContain("- DB_URL");
    // A dry run writes nothing, and records nothing.
    expect(fly.secrets.get("API_KEY")).toBe(VALUE_CANARY);
    expect((await status())[0]?.lastPush).toMatchObject({ version: 1 });

    ok(await run(["env", "platforms", "push", "fly-default", "--prune"]));
    expect(Object.fromEntries(fly.secrets)).toEqual({ API_KEY: `${VALUE_CANARY}-2` });
    expect((await status())[0]?.lastPush).toMatchObject({
      version: 2,
      added: 0,
      changed: 1,
      removed: 1,
      outcome: "ok",
    });

    const pull = refused(
      await run(["env", "platforms", "pull", "fly-default"]),
      "LK_PLATFORM_PULL_UNSUPPORTED",
    );
    expect(pull.stderr).toContain("write-only");

    ok(await run(["env", "platforms", "disconnect", "fly-default"]));
    refused(await run(["env", "platforms", "push", "fly-default"]), "LK_PLATFORM_NOT_CONNECTED");
    expect(await status()).toEqual([]);
    expect(fly.refusals).toEqual([]);
    // Every request to the platform carried the token as Fly documents it, and nothing else did.
    expect(fly.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN_CANARY}`)).toBe(true);
  }, 240_000);

  it("the canaries are in no server file or log, no file of the machine or project, and no CLI output", async () => {
    await server.stop();
    const places = [...(await files(server.dataDir)), ...(await files(m.home)), ...(await files(dir))].filter(
      (path) => !path.endsWith("fly-token"),
    );
    expect(places.length).toBeGreaterThan(3);
    for (const path of places) {
      const text = (await readFile(path)).toString("latin1");
      for (const canary of [VALUE_CANARY, TOKEN_CANARY])
        expect(text.includes(canary), `${canary.slice(0, 12)}… in ${path}`).toBe(false);
    }
    for (const text of [server.stdout(), server.stderr(), ...outputs.flatMap((o) => [o.stdout, o.stderr])]) {
      for (const canary of [VALUE_CANARY, TOKEN_CANARY]) expect(text.includes(canary)).toBe(false);
    }
  }, 60_000);
});
