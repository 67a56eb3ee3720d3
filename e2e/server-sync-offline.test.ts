// Offline use of a synced vault, with the built CLI and the real server: after a push, `run --offline` and
// `env get --offline` work with the server stopped; a copy whose last sync is older than --max-age is refused
// with LK_VAULT_STALE (the clock moved by the tests' own CLI build, test/support/crash-cli.ts, as no shipped
// entry can); `env status` shows both versions, the last sync and pairing, and answers locally when the server is
// gone.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCatalogue } from "@latchkey/core";
import { bundleCrashCli } from "../packages/cli/test/support/crash-cli-bundle.js";
import {
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import { projectDir } from "./support/teams.js";

const USER = { email: "offline@example.com", password: "offline password for e2e" };
const HOUR = 3_600_000;
/** Prints SECRET from the environment the program was given. */
const PRINT_SECRET = [process.execPath, "-e", "process.stdout.write(process.env.SECRET ?? '<unset>')"];

let root: string;
let server: LatchkeyServer;
let m: Machine;
/** The tests' own CLI build, whose clock LATCHKEY_TEST_CLOCK_OFFSET_MS moves. */
let testCli: string;
/** A project whose vault was pushed, and one whose vault never left this machine. */
let synced: string;
let local: string;
let pushedAt: { before: number; after: number };

const project = (name: string): Promise<string> => projectDir(root, name, name);

/** The CLI on machine m in `dir`, with its clock `ahead` ms in the future (the tests' build) when given. */
function cli(dir: string, args: string[], ahead?: number): Promise<ProcessResult> {
  return latchkey(
    m,
    args,
    ahead === undefined
      ? { cwd: dir }
      : { cwd: dir, cli: testCli, env: { LATCHKEY_TEST_CLOCK_OFFSET_MS: String(ahead) } },
  );
}

interface Status {
  vaults: {
    vaultId: string;
    local: { present: boolean; version: number | null; syncedAt: string | null; server: string | null };
    server: { state: string; server?: string | null; version?: number };
    paired: boolean | null;
  }[];
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-e2e-sync-offline-"));
  testCli = await bundleCrashCli(root);
  server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
  m = await signedInMachine(root, "m", server, USER);
  synced = await project("synced");
  local = await project("local");
  ok(await cli(synced, ["env", "set", "SECRET=synced-value"]));
  ok(await cli(local, ["env", "set", "SECRET=local-value"]));
  const before = Date.now();
  ok(await cli(synced, ["env", "push"]));
  pushedAt = { before, after: Date.now() };
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("offline use of a synced vault", () => {
  it("env status shows the local and server versions, the last sync time and that this machine is paired", async () => {
    const status = JSON.parse(ok(await cli(synced, ["env", "status", "--json"])).stdout) as Status;
    expect(status.vaults).toHaveLength(1);
    const [vault] = status.vaults;
    expect(vault).toMatchObject({
      local: { present: true, version: 1, server: server.url },
      server: { state: "synced", server: server.url, version: 1 },
      paired: true,
    });
    const syncedAt = Date.parse(vault!.local.syncedAt!);
    expect(syncedAt).toBeGreaterThanOrEqual(pushedAt.before - 1000);
    expect(syncedAt).toBeLessThanOrEqual(pushedAt.after + 1000);

    // The never-pushed vault: the server has no copy, nothing to pair with.
    const all = JSON.parse(ok(await cli(local, ["env", "status", "--all", "--json"])).stdout) as Status;
    expect(all.vaults).toHaveLength(2);
    expect(all.vaults.find((v) => v.vaultId !== vault!.vaultId)).toMatchObject({
      local: { present: true, version: null, syncedAt: null },
      server: { state: "not-synced" },
      paired: null,
    });
  });

  it("with the server stopped: run and env get --offline use the local copy; env status answers locally", async () => {
    await server.stop();
    const run = ok(await cli(synced, ["run", "--offline", "--", ...PRINT_SECRET]));
    expect(run.stdout).toBe("synced-value");
    expect(ok(await cli(synced, ["env", "get", "--offline", "SECRET"])).stdout).toBe("synced-value");

    const status = JSON.parse(ok(await cli(synced, ["env", "status", "--json"])).stdout) as Status;
    expect(status.vaults[0]).toMatchObject({
      local: { present: true, version: 1, server: server.url },
      server: { state: "unreachable", server: server.url },
      paired: null,
    });
    expect(status.vaults[0]!.local.syncedAt).not.toBeNull();
    const text = ok(await cli(synced, ["env", "status"])).stdout;
    expect(text).toContain("local:   version 1, last synced");
    expect(text).toContain(`server:  unreachable (${server.url})`);
  });

  it("refuses a copy last synced longer ago than --max-age (24h by default) with LK_VAULT_STALE", async () => {
    const dayAndHourLater = 25 * HOUR;
    for (const args of [
      ["run", "--offline", "--", ...PRINT_SECRET],
      ["env", "get", "--offline", "SECRET"],
      ["run", "--max-age", "12h", "--", ...PRINT_SECRET],
    ]) {
      const refused = await cli(synced, args, dayAndHourLater);
      expect(refused.code, `${args.join(" ")}: ${refused.stderr}`).toBe(
        errorCatalogue.LK_VAULT_STALE.exitCode,
      );
      expect(refused.stderr).toContain("error LK_VAULT_STALE");
      expect(refused.stderr).toMatch(
        /was last synced 25 hours ago \(.+\), longer than --max-age (24h|12h) allows/,
      );
      expect(refused.stderr).toContain("latchkey env pull");
      expect(refused.stdout).toBe("");
      expect(refused.stdout + refused.stderr).not.toContain("synced-value");
    }
    // A larger --max-age takes it; a vault that never left this machine has nothing to be stale against.
    const within = ok(
      await cli(synced, ["run", "--offline", "--max-age", "2d", "--", ...PRINT_SECRET], dayAndHourLater),
    );
    expect(within.stdout).toBe("synced-value");
    const purelyLocal = ok(await cli(local, ["run", "--offline", "--", ...PRINT_SECRET], 365 * 24 * HOUR));
    expect(purelyLocal.stdout).toBe("local-value");
    // The shipped CLI has no clock to move: the same variable changes nothing there.
    const shipped = await latchkey(m, ["run", "--offline", "--", ...PRINT_SECRET], {
      cwd: synced,
      env: { LATCHKEY_TEST_CLOCK_OFFSET_MS: String(dayAndHourLater) },
    });
    expect(ok(shipped).stdout).toBe("synced-value");
  });

  it("refuses a --max-age it cannot read, before reading the vault", async () => {
    const refused = await cli(synced, ["run", "--max-age", "1 day", "--", ...PRINT_SECRET]);
    expect(refused.code).toBe(errorCatalogue.LK_USAGE.exitCode);
    expect(refused.stderr).toContain("error LK_USAGE: --max-age takes a duration such as 30m, 24h or 7d");
  });
});
