// `latchkey env push / pull / log` against the real server process, with CLI processes as machines (own HOME and
// LATCHKEY_HOME each): set → push → delete the local vault → pull restores it; two checkouts of one project racing
// (one wins, the other is told to pull, pull + push then succeeds); a three-way merge between two copies of one
// machine's home; one vault id spelled in upper and lower case by two such copies; another machine of the same
// user is told it is not paired; --output is a 0600 dotenv file.
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
import { copyOfMachine } from "./support/machines.js";
import { approveVaultOnTerminal, snapshot } from "./support/project.js";

describeEachDatabase("sync flows", (target) => {
  const USER = { email: "sync-flows@example.com", password: "correct horse battery staple 1" };
  let root: string;
  let server: LatchkeyServer;
  let a: Machine;

  function ok(result: ProcessResult): ProcessResult {
    expect(result.code, `exit ${result.code}: ${result.stderr}`).toBe(0);
    return result;
  }
  function failed(result: ProcessResult, code: string): void {
    expect(result.stderr, result.stderr).toContain(`error ${code}`);
    expect(result.code).not.toBe(0);
  }

  /** A project directory (package.json marks the root) under the test root. */
  async function project(name: string, latchkeyJson?: string): Promise<string> {
    const dir = join(root, "projects", name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "package.json"), JSON.stringify({ name: `@acme/${name}`, private: true }));
    if (latchkeyJson !== undefined) await writeFile(join(dir, "latchkey.json"), latchkeyJson);
    return dir;
  }
  const exportJson = async (m: Machine, cwd: string, env = "default") =>
    JSON.parse(
      ok(await latchkey(m, ["env", "export", "--format", "json", "--env", env], { cwd })).stdout,
    ) as Record<string, string>;
  const vaultIdOf = async (dir: string) =>
    (JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as { vault: string }).vault;

  async function loggedIn(name: string): Promise<Machine> {
    const m = await newMachine(root, name);
    ok(await loginCli(m, server, USER));
    return m;
  }

  beforeAll(async () => {
    const config = await target.fresh();
    root = await mkdtemp(join(tmpdir(), "lk-e2e-sync-"));
    server = await startServerWithUser(config, USER);
    a = await loggedIn("a");
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  describe(`env push / pull with the real server on ${target.kind}`, () => {
    it("push with nothing changed since the last push or pull sends nothing and says so; --force, a new secret or a new envSchema pushes", async () => {
      const dir = await project("unchanged");
      ok(await latchkey(a, ["env", "set", "KEEP=unchanged-canary"], { cwd: dir }));
      expect(ok(await latchkey(a, ["env", "push"], { cwd: dir })).stderr).toContain("as version 1");
      const versions = async () =>
        (
          JSON.parse(ok(await latchkey(a, ["env", "log", "--json"], { cwd: dir })).stdout) as {
            entries: { action: string; version: number | null }[];
          }
        ).entries
          .filter((e) => e.action === "vault.push")
          .map((e) => e.version);

      const again = ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      expect(again.stderr).toContain("Nothing to push: @acme/unchanged is as it was at version 1");
      const json = JSON.parse(ok(await latchkey(a, ["env", "push", "--json"], { cwd: dir })).stdout) as {
        pushed: boolean;
        version: number;
      };
      expect(json).toMatchObject({ pushed: false, version: 1 });
      expect(await versions()).toEqual([1]);

      expect(ok(await latchkey(a, ["env", "push", "--force"], { cwd: dir })).stderr).toContain(
        "as version 2",
      );
      ok(await latchkey(a, ["env", "set", "ADDED=second"], { cwd: dir }));
      expect(ok(await latchkey(a, ["env", "push"], { cwd: dir })).stderr).toContain("as version 3");
      // The schema travels with a push too: changing only latchkey.json's envSchema is a change.
      const file = join(dir, "latchkey.json");
      const config = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...config, envSchema: { KEEP: { required: true } } }, null, 2));
      expect(ok(await latchkey(a, ["env", "push"], { cwd: dir })).stderr).toContain("as version 4");
      expect(ok(await latchkey(a, ["env", "push"], { cwd: dir })).stderr).toContain("Nothing to push");
      // A pull of what is already here leaves nothing to push either.
      ok(await latchkey(a, ["env", "pull"], { cwd: dir }));
      expect(ok(await latchkey(a, ["env", "push"], { cwd: dir })).stderr).toContain("Nothing to push");
      expect(await versions()).toEqual([4, 3, 2, 1]);
    });

    it("set → push → delete the local vault file → pull gives back every environment; --output is 0600", async () => {
      const dir = await project("restore");
      ok(await latchkey(a, ["env", "set", "API_KEY=first-canary", "DB_URL=postgres://x"], { cwd: dir }));
      ok(await latchkey(a, ["env", "set", "--env", "staging", "STAGE=s1"], { cwd: dir }));
      const pushed = ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      expect(pushed.stderr).toContain("as version 1");
      expect(pushed.stderr).toContain("@acme/restore");
      const id = await vaultIdOf(dir);
      expect(JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8"))).toEqual({
        vault: id,
        vaultSync: { personalVersion: 1 },
      });
      const before = { default: await exportJson(a, dir), staging: await exportJson(a, dir, "staging") };

      await unlink(join(a.latchkeyHome, "vaults", `${id}.enc`));
      const out = join(dir, "pulled.env");
      const pulled = ok(await latchkey(a, ["env", "pull", "--output", out, "--json"], { cwd: dir }));
      expect(JSON.parse(pulled.stdout)).toMatchObject({
        vaultId: id,
        version: 1,
        restored: true,
        conflicts: [],
      });
      expect({ default: await exportJson(a, dir), staging: await exportJson(a, dir, "staging") }).toEqual(
        before,
      );
      expect((await stat(out)).mode & 0o777).toBe(0o600);
      expect(await readFile(out, "utf8")).toContain("API_KEY=first-canary");
      // Values never reach the status output.
      expect(pulled.stderr).not.toContain("first-canary");

      const stagingOut = join(dir, "staging.env");
      ok(await latchkey(a, ["env", "pull", "--env", "staging", "-o", stagingOut], { cwd: dir }));
      expect(await readFile(stagingOut, "utf8")).toBe("STAGE=s1\n");
      expect((await stat(stagingOut)).mode & 0o777).toBe(0o600);

      const log = JSON.parse(ok(await latchkey(a, ["env", "log", "--json"], { cwd: dir })).stdout) as {
        entries: { action: string; version: number | null; actor: { email: string } }[];
      };
      expect(log.entries[0]).toMatchObject({
        action: "vault.push",
        version: 1,
        actor: { email: USER.email },
      });
      expect(JSON.stringify(log)).not.toContain("first-canary");
      const text = ok(await latchkey(a, ["env", "log"], { cwd: dir })).stdout;
      expect(text).toContain("vault.push");
    }, 60_000);

    it("two checkouts of one project racing: one push wins, the other is told to pull; pull + push then succeeds", async () => {
      const first = await project("race-1");
      ok(await latchkey(a, ["env", "set", "SHARED=one"], { cwd: first }));
      const second = await project("race-2", await readFile(join(first, "latchkey.json"), "utf8"));
      // A second checkout of a vault this machine has uses it once approved there (project/approvals.ts).
      await approveVaultOnTerminal(a.env, second);
      const results = await Promise.all([
        latchkey(a, ["env", "push"], { cwd: first }),
        latchkey(a, ["env", "push"], { cwd: second }),
      ]);
      const winners = results.filter((r) => r.code === 0);
      const losers = results.filter((r) => r.code !== 0);
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      failed(losers[0]!, "LK_VAULT_CONFLICT");
      expect(losers[0]!.stderr).toContain("The server has version 1");
      expect(losers[0]!.stderr).toContain("latchkey env pull");
      const loserDir = results[0].code === 0 ? second : first;
      ok(await latchkey(a, ["env", "set", "AFTER=race"], { cwd: loserDir }));
      ok(await latchkey(a, ["env", "pull"], { cwd: loserDir }));
      const again = ok(await latchkey(a, ["env", "push"], { cwd: loserDir }));
      expect(again.stderr).toContain("as version 2");
      expect(JSON.parse(await readFile(join(loserDir, "latchkey.json"), "utf8")).vaultSync).toEqual({
        personalVersion: 2,
      });
    }, 60_000);

    it("pull merges three ways: local-only changes stay, server-only changes arrive, both-sides keys keep the local value and are named", async () => {
      const dir = await project("merge");
      ok(await latchkey(a, ["env", "set", "A=base-a", "B=base-b", "C=base-c", "D=base-d"], { cwd: dir }));
      ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      // A copy of this machine's home (same wrapping key) with its own checkout and its own login.
      const twin = await copyOfMachine(root, "a-twin", a);
      ok(await loginCli(twin, server, USER));
      const twinDir = await project("merge-twin", await readFile(join(dir, "latchkey.json"), "utf8"));
      // The copied home binds the vault to the original checkout: the twin's checkout asks once.
      await approveVaultOnTerminal(twin.env, twinDir);
      ok(await latchkey(twin, ["env", "set", "B=twin-b", "C=twin-c", "TWIN_NEW=t"], { cwd: twinDir }));
      ok(await latchkey(twin, ["env", "push"], { cwd: twinDir }));

      ok(await latchkey(a, ["env", "set", "A=local-a", "C=local-c", "LOCAL_NEW=l"], { cwd: dir }));
      failed(await latchkey(a, ["env", "push"], { cwd: dir }), "LK_VAULT_CONFLICT");
      const pulled = ok(await latchkey(a, ["env", "pull", "--json"], { cwd: dir }));
      expect(JSON.parse(pulled.stdout)).toMatchObject({
        version: 2,
        restored: false,
        conflicts: ["default/C"],
        fromServer: ["default/B", "default/TWIN_NEW"],
        keptLocal: ["default/A", "default/LOCAL_NEW"],
      });
      expect(pulled.stderr).toContain("default/C");
      expect(pulled.stderr).not.toContain("local-c");
      expect(pulled.stderr).not.toContain("twin-c");
      expect(await exportJson(a, dir)).toEqual({
        A: "local-a",
        B: "twin-b",
        C: "local-c",
        D: "base-d",
        LOCAL_NEW: "l",
        TWIN_NEW: "t",
      });
      ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      ok(await latchkey(twin, ["env", "pull"], { cwd: twinDir }));
      expect(await exportJson(twin, twinDir)).toEqual(await exportJson(a, dir));
    }, 90_000);

    it("one vault however its id is spelled: upper case in latchkey.json on one machine, lower case on its twin", async () => {
      const id = randomUUID();
      const upper = id.toUpperCase();
      // A machine with a wrapping key, and its twin: a copy of its home (the same wrapping key), its own login.
      const m = await loggedIn("spelling");
      ok(await latchkey(m, ["env", "set", "WARM=1"], { cwd: await project("spelling-warm") }));
      const twin = await copyOfMachine(root, "spelling-twin", m);
      ok(await loginCli(twin, server, USER));
      const upperDir = await project("spelling-upper", JSON.stringify({ vault: upper }));
      const lowerDir = await project("spelling-lower", JSON.stringify({ vault: id }));

      // The push is recorded (the server's lower-case answer is this vault's), the file keeps its spelling.
      ok(await latchkey(m, ["env", "set", "FROM_UPPER=u"], { cwd: upperDir }));
      expect(ok(await latchkey(m, ["env", "push"], { cwd: upperDir })).stderr).toContain("as version 1");
      expect(JSON.parse(await readFile(join(upperDir, "latchkey.json"), "utf8"))).toEqual({
        vault: upper,
        vaultSync: { personalVersion: 1 },
      });
      // The twin's spelling opens the same wrapped key and blob.
      const pulled = ok(await latchkey(twin, ["env", "pull", "--json"], { cwd: lowerDir }));
      expect(JSON.parse(pulled.stdout)).toMatchObject({ vaultId: id, version: 1, restored: true });
      expect(await exportJson(twin, lowerDir)).toEqual({ FROM_UPPER: "u" });
      ok(await latchkey(twin, ["env", "set", "FROM_LOWER=l"], { cwd: lowerDir }));
      expect(ok(await latchkey(twin, ["env", "push"], { cwd: lowerDir })).stderr).toContain("as version 2");

      const back = ok(await latchkey(m, ["env", "pull", "--json"], { cwd: upperDir }));
      expect(JSON.parse(back.stdout)).toMatchObject({ vaultId: id, version: 2, conflicts: [] });
      expect(await exportJson(m, upperDir)).toEqual({ FROM_UPPER: "u", FROM_LOWER: "l" });
      ok(await latchkey(m, ["env", "set", "AGAIN=a"], { cwd: upperDir }));
      expect(ok(await latchkey(m, ["env", "push"], { cwd: upperDir })).stderr).toContain("as version 3");
      // LATCHKEY_VAULT_ID in upper case names the same local vault, which has one file, in lower case.
      const elsewhere = await project("spelling-env");
      const viaEnv = await latchkey(m, ["env", "export", "--format", "json"], {
        cwd: elsewhere,
        env: { LATCHKEY_VAULT_ID: upper },
      });
      expect(JSON.parse(ok(viaEnv).stdout)).toEqual({ FROM_UPPER: "u", FROM_LOWER: "l", AGAIN: "a" });
      const files = (await readdir(join(m.latchkeyHome, "vaults"))).filter((f) =>
        f.toLowerCase().startsWith(id),
      );
      expect(files).toEqual([`${id}.enc`]);
    }, 90_000);

    it("another machine of the same user is told it is not paired, and nothing is written there", async () => {
      const dir = await project("paired");
      ok(await latchkey(a, ["env", "set", "ONLY_ON_A=a"], { cwd: dir }));
      ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      const b = await loggedIn("b");
      const bDir = await project("paired-b", await readFile(join(dir, "latchkey.json"), "utf8"));
      const before = { home: await snapshot(b.latchkeyHome), project: await snapshot(bDir) };
      const result = await latchkey(b, ["env", "pull", "--output", join(bDir, ".env")], { cwd: bDir });
      failed(result, "LK_VAULT_NOT_PAIRED");
      expect(result.stderr).not.toContain("DECRYPT");
      expect({ home: await snapshot(b.latchkeyHome), project: await snapshot(bDir) }).toEqual(before);

      // A vault this account never pushed: not synced.
      const fresh = await project("never-pushed");
      ok(await latchkey(a, ["env", "set", "X=1"], { cwd: fresh }));
      failed(await latchkey(a, ["env", "pull"], { cwd: fresh }), "LK_VAULT_NOT_SYNCED");
    }, 60_000);

    it("push sends envSchema as schema, warns and goes on without a malformed one", async () => {
      const dir = await project("schema");
      ok(await latchkey(a, ["env", "set", "PORT=8080"], { cwd: dir }));
      const id = await vaultIdOf(dir);
      const schema = { PORT: { required: true, format: "port" }, HOST: { default: "localhost" } };
      await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: id, envSchema: schema }, null, 2));
      const valid = ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      expect(valid.stderr).not.toContain("Warning");
      await writeFile(
        join(dir, "latchkey.json"),
        JSON.stringify({
          vault: id,
          envSchema: { PORT: { required: "yes please" } },
          vaultSync: { personalVersion: 1 },
        }),
      );
      // Without a valid schema nothing else changed: --force makes the version whose audit row is checked below.
      const pushed = ok(await latchkey(a, ["env", "push", "--force"], { cwd: dir }));
      expect(pushed.stderr).toContain("Warning: envSchema");
      expect(pushed.stderr).toContain("as version 2");
      // The server's audit row counts the schema's keys (never values): 2 for the valid push, none for the other.
      const log = JSON.parse(ok(await latchkey(a, ["env", "log", "--json"], { cwd: dir })).stdout) as {
        entries: { version: number; metadata: { schemaKeys: number | null } }[];
      };
      expect(log.entries.map((e) => [e.version, e.metadata.schemaKeys])).toEqual([
        [2, null],
        [1, 2],
      ]);
    }, 60_000);
  });
});
