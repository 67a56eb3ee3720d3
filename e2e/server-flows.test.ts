// Issue 6 point 10: the whole system as users run it. The real `latchkey-server` process (SQLite, then
// PostgreSQL), an account made with its admin command, and the built CLI as separate processes on separate
// machines (one HOME and LATCHKEY_HOME each, the encrypted-file keystore): log in through the browser flow
// (the scripted browser signs in on the server's login page over HTTP) and the device flow, set → push → delete
// the local vault file → pull → identical values, and two checkouts of one project racing to push: exactly one
// wins, the other is told to pull, and pull + push then succeeds with both changes kept.
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import {
  assertBuilt,
  collect,
  latchkey,
  loginCli,
  loginCliDevice,
  newMachine,
  startLatchkey,
  startServerWithUser,
  storedSession,
  tempDir,
  type Credentials,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { approveVaultOnTerminal } from "./support/project.js";

assertBuilt();

/** Fails with the process's output, which says why far better than an exit code. */
function expectOk(result: ProcessResult, what: string): void {
  expect(result.code, `${what} failed:\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
}

describeEachDatabase("server flows (real server process, CLI machines)", (target) => {
  let server: LatchkeyServer;
  let root: { path: string; cleanup: () => Promise<void> };
  let machines = 0;
  // Random per run: a password in a test file is still a password in a log if something leaks it.
  const alice: Credentials = {
    email: "alice@example.com",
    password: `pw-${randomBytes(12).toString("base64url")}`,
  };
  /** Every secret value the tests store: none may ever reach the server's logs. */
  const secretValues: string[] = [];

  beforeAll(async () => {
    const config = await target.fresh();
    root = await tempDir("lk-server-flows-");
    server = await startServerWithUser(config, alice);
  });

  afterAll(async () => {
    const exit = await server?.stop();
    await root?.cleanup();
    if (exit !== undefined) expect(exit).toEqual({ code: 0, signal: null });
  });

  async function machine(): Promise<Machine> {
    return newMachine(root.path, String(++machines));
  }

  /** A machine signed in to the server as alice with the browser flow. */
  async function signedIn(): Promise<Machine> {
    const m = await machine();
    expectOk(await loginCli(m, server, alice), "latchkey login --server");
    return m;
  }

  /** A project checkout on `m`: a directory with a package.json (the project root marker), no latchkey.json yet. */
  async function checkout(m: Machine, name: string): Promise<string> {
    const dir = join(m.home, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "package.json"), `${JSON.stringify({ name: "flows-app", private: true })}\n`);
    return dir;
  }

  /** A secret value unique to this run, remembered for the log check. */
  function secret(label: string): string {
    const value = `${label}-${randomBytes(9).toString("hex")}`;
    secretValues.push(value);
    return value;
  }

  async function exportJson(m: Machine, cwd: string, env = "default"): Promise<Record<string, string>> {
    const result = await latchkey(m, ["env", "export", "--format", "json", "--env", env], { cwd });
    expectOk(result, `env export --env ${env}`);
    return JSON.parse(result.stdout) as Record<string, string>;
  }

  async function vaultId(dir: string): Promise<string> {
    return (JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as { vault: string }).vault;
  }

  it("logs in with the browser flow driven over HTTP; whoami asks the server who the session is", async () => {
    const m = await machine();
    const login = await loginCli(m, server, alice);
    expectOk(login, "latchkey login --server");
    // The scripted browser really went through the server's pages and ended on the CLI's loopback listener.
    const visits = (await readFile(login.browserLog, "utf8")).trim().split("\n");
    expect(visits).toHaveLength(1);
    const visit = JSON.parse(visits[0] ?? "{}") as { visited: string[]; status: number; finalUrl: string };
    // It started at the server's authorization endpoint and posted the login form to the server itself.
    expect(visit.visited[0]).toBe(`GET ${server.url}/oidc/auth`);
    expect(
      visit.visited.filter((v) => v.startsWith(`POST ${server.url}/`)),
      visit.visited.join("\n"),
    ).not.toEqual([]);
    expect(visit.finalUrl).toMatch(/^http:\/\/(127\.0\.0\.1|\[::1\]):\d+\/callback$/);
    expect(visit.status).toBe(200);

    const whoami = await latchkey(m, ["whoami", "--json"]);
    expectOk(whoami, "latchkey whoami --json");
    expect(JSON.parse(whoami.stdout)).toMatchObject({ server: server.url, email: alice.email });
    const session = await storedSession(m, server);
    expect(typeof session?.access_token).toBe("string");
    // Neither the password nor the token ever reaches the CLI's output.
    for (const text of [login.stdout, login.stderr, whoami.stdout, whoami.stderr]) {
      expect(text).not.toContain(alice.password);
      expect(text).not.toContain(String(session?.access_token));
    }
  });

  it("logs in with the device flow: the code is entered on another device's browser", async () => {
    const m = await machine();
    const login = await loginCliDevice(m, server, alice);
    expectOk(login, "latchkey login --server --device");
    expect(login.prompt.verificationUri.startsWith(`${server.url}/oidc/`)).toBe(true);
    expect(login.page.status).toBe(200);
    const whoami = await latchkey(m, ["whoami", "--json"]);
    expectOk(whoami, "latchkey whoami --json");
    expect(JSON.parse(whoami.stdout)).toMatchObject({ server: server.url, email: alice.email });
  });

  it("set → push → delete the local vault file → pull → the same values in every environment", async () => {
    const m = await signedIn();
    const dir = await checkout(m, "app");
    const dotenv = `DATABASE_URL=${secret("postgres://app:pw@db/app")}\nAPI_KEY=${secret("sk")}\n`;
    expectOk(await latchkey(m, ["env", "import", "-"], { cwd: dir, input: dotenv }), "env import");
    // A value with spaces, quotes and non-ASCII, from stdin as users are told to pass secrets.
    const odd = `${secret("odd")} "quoted" 'single' = ü ✓`;
    expectOk(await latchkey(m, ["env", "set", "ODD"], { cwd: dir, input: odd }), "env set ODD");
    expectOk(
      await latchkey(m, ["env", "set", "--env", "staging", "STRIPE_KEY"], { cwd: dir, input: secret("rk") }),
      "env set --env staging",
    );
    const before = { default: await exportJson(m, dir), staging: await exportJson(m, dir, "staging") };
    expect(Object.keys(before.default).sort()).toEqual(["API_KEY", "DATABASE_URL", "ODD"]);

    expectOk(await latchkey(m, ["env", "push"], { cwd: dir }), "env push");
    const id = await vaultId(dir);
    const vaultFile = join(m.latchkeyHome, "vaults", `${id}.enc`);
    await rm(vaultFile);
    expect((await latchkey(m, ["env", "get", "API_KEY"], { cwd: dir })).code).not.toBe(0);

    expectOk(await latchkey(m, ["env", "pull"], { cwd: dir }), "env pull");
    expect(await exportJson(m, dir)).toEqual(before.default);
    expect(await exportJson(m, dir, "staging")).toEqual(before.staging);
    expect((await latchkey(m, ["env", "get", "ODD"], { cwd: dir })).stdout).toBe(odd);
  });

  /** One checkout of the project: the machine it is on and its directory. */
  interface Checkout {
    readonly m: Machine;
    readonly dir: string;
  }

  /**
   * Both checkouts (at the same synced version) change a key of their own and push at the same moment: exactly
   * one push wins, the other is refused with the conflict and told to pull; after its pull and push, and a pull
   * by the winner, both hold every key, and the audit log has the versions 1, 2, 3 with nothing overwritten.
   */
  /**
   * `sharedVault`: both checkouts are on one machine and so share one local vault: the winner's push already
   * carried both changes, and the loser, once it has pulled, has nothing left to push.
   */
  async function race(one: Checkout, two: Checkout, sharedVault = false): Promise<void> {
    expectOk(
      await latchkey(one.m, ["env", "set", "FROM_ONE"], { cwd: one.dir, input: secret("one") }),
      "set 1",
    );
    expectOk(
      await latchkey(two.m, ["env", "set", "FROM_TWO"], { cwd: two.dir, input: secret("two") }),
      "set 2",
    );
    const results = await Promise.all(
      [one, two].map(async (c) => ({
        ...c,
        result: await collect(startLatchkey(c.m, ["env", "push"], { cwd: c.dir })),
      })),
    );
    const winners = results.filter((r) => r.result.code === 0);
    const losers = results.filter((r) => r.result.code !== 0);
    expect(winners, JSON.stringify(results.map((r) => r.result))).toHaveLength(1);
    expect(losers).toHaveLength(1);
    const winner = winners[0]!;
    const loser = losers[0]!;
    expect(loser.result.stderr).toContain("LK_VAULT_CONFLICT");
    expect(loser.result.stderr).toContain("latchkey env pull");

    expectOk(await latchkey(loser.m, ["env", "pull"], { cwd: loser.dir }), "pull after the conflict");
    const again = await latchkey(loser.m, ["env", "push"], { cwd: loser.dir });
    expectOk(again, "push after the pull");
    expect(again.stderr).toContain(sharedVault ? "Nothing to push" : "as version 3");
    expectOk(await latchkey(winner.m, ["env", "pull"], { cwd: winner.dir }), "pull in the winning checkout");
    const inWinner = await exportJson(winner.m, winner.dir);
    expect(Object.keys(inWinner).sort()).toEqual(["FROM_ONE", "FROM_TWO", "SHARED"]);
    expect(await exportJson(loser.m, loser.dir)).toEqual(inWinner);
    // Version 1 (the first push), 2 (the winner), 3 (the loser after its pull, when it had a change of its own):
    // nothing was overwritten.
    const log = await latchkey(one.m, ["env", "log", "--json"], { cwd: one.dir });
    expectOk(log, "env log --json");
    const entries = (JSON.parse(log.stdout) as { entries: { action: string; version: number | null }[] })
      .entries;
    expect(entries.filter((e) => e.action === "vault.push").map((e) => e.version)).toEqual(
      sharedVault ? [2, 1] : [3, 2, 1],
    );
  }

  /** A first checkout with one secret pushed as version 1, and a clone of the project (latchkey.json as committed). */
  async function pushedProject(m: Machine, cloneOn: Machine): Promise<[Checkout, Checkout]> {
    const first = await checkout(m, "checkout-1");
    expectOk(await latchkey(m, ["env", "set", "SHARED"], { cwd: first, input: secret("shared") }), "set");
    expectOk(await latchkey(m, ["env", "push"], { cwd: first }), "first push");
    const second = await checkout(cloneOn, "checkout-2");
    await copyFile(join(first, "latchkey.json"), join(second, "latchkey.json"));
    // A second checkout on the machine that has the vault uses it once approved there (project/approvals.ts).
    if (cloneOn === m) await approveVaultOnTerminal(m.env, second);
    return [
      { m, dir: first },
      { m: cloneOn, dir: second },
    ];
  }

  it("two checkouts on one machine racing: one push wins, the other gets the conflict; pull + push then succeeds", async () => {
    const m = await signedIn();
    const [one, two] = await pushedProject(m, m);
    expectOk(await latchkey(m, ["env", "pull"], { cwd: two.dir }), "pull in the second checkout");
    await race(one, two, true);
  });

  it("two machines of one user racing: the loser's pull merges both changes, its push then succeeds", async () => {
    const a = await signedIn();
    const b = await signedIn();
    const [one, two] = await pushedProject(a, b);
    // Pairing is a later issue: the wrapping key is carried to machine B by hand, on stdin, never in argv.
    const key = await latchkey(a, ["keystore", "get", "wrapping-key"]);
    expectOk(key, "keystore get wrapping-key");
    expectOk(await latchkey(b, ["keystore", "set", "wrapping-key"], { input: key.stdout }), "keystore set");
    expectOk(await latchkey(b, ["env", "pull"], { cwd: two.dir }), "first pull on machine B");
    await race(one, two);
  });

  it("the server's logs carry no password, token or secret value", async () => {
    const m = await signedIn();
    const token = String((await storedSession(m, server))?.access_token);
    const logs = server.stdout() + server.stderr();
    expect(secretValues.length).toBeGreaterThan(0);
    for (const value of [alice.password, token, ...secretValues]) expect(logs).not.toContain(value);
  });
});
