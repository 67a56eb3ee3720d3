// A CI job's pull through OIDC with the real server process and the built CLI (docs/ci.md, "In the workflow"): a
// user enables CI for a vault on a real terminal (the step-up asks for the password); a simulated GitHub Actions
// job — the variables a runner sets, its ID token endpoint served on loopback by a double that insists on the
// documented request (GET, the request token as bearer, `audience` in the query) and hands out tokens of a loopback
// issuer the server trusts through CI_OIDC_ISSUERS — runs `latchkey run --oidc` and `env pull --oidc` with no
// keychain, no login and no Latchkey home. A job on another branch, in another environment or of a fork's event is
// refused with the rule it failed; a token is accepted once; the values appear nowhere on disk in the job's
// directories, nor in the server's output. On SQLite and PostgreSQL.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import { startCiIssuer, type CiIssuer } from "../packages/server/test/support/ci-issuer.js";
import { startCiRunner, type CiRunner } from "./support/ci-runner.js";
import {
  CLI_BIN,
  createUser,
  runProcess,
  latchkey,
  loginCli,
  newMachine,
  startLatchkeyServer,
  type LatchkeyServer,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import { latchkeyJsonOf, ok, onTerminal, projectDir, refused, type Member } from "./support/teams.js";

const ANN = { email: "oidc-ann@example.com", password: "oidc ann password for the e2e suite" };
// The loopback issuer's GitHub claims name octo-org/octo-repo, its ids 74 and 65, and a push to main.
const POLICY = [
  "--provider",
  "github",
  "--repo",
  "octo-org/octo-repo",
  "--repo-id",
  "74",
  "--owner-id",
  "65",
  "--branch",
  "main",
  "--environment",
  "production",
];
const NO_DBUS = "unix:path=/nonexistent/latchkey-test-no-bus";

/** Every file under `dir` whose bytes contain `text`. */
async function filesHolding(dir: string, text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(text)) found.push(path);
  }
  return found;
}

const TERMINAL = requirePart("the CI OIDC e2e suite", terminalCheck());

describeEachDatabase("CI pulls through OIDC", (target) => {
  if (!TERMINAL) return;
  const canary = `sk-oidc-canary-${randomBytes(12).toString("hex")}`;
  let root: string;
  let issuer: CiIssuer;
  let runner: CiRunner;
  let server: LatchkeyServer;
  let latchkeyJson: string;
  let ann: Member;
  let annDir: string;
  let jobs = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-ci-oidc-"));
    issuer = await startCiIssuer();
    runner = await startCiRunner(issuer);
    const config = await target.fresh();
    server = await startLatchkeyServer({
      dataDir: config.dataDir,
      ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      env: { CI_OIDC_ISSUERS: `github=${issuer.url}` },
    });
    await createUser(server, ANN.email, ANN.password);
    const m = await newMachine(root, "ann");
    ok(await loginCli(m, server, ANN));
    ann = { ...ANN, m };
    const dir = await projectDir(root, "web", "web");
    annDir = dir;
    ok(
      await latchkey(m, ["env", "set", "-e", "production", `API_KEY=${canary}`, "REGION=eu-1"], { cwd: dir }),
    );
    ok(await latchkey(m, ["env", "set", "-e", "staging", "API_KEY=sk-staging"], { cwd: dir }));
    ok(await latchkey(m, ["env", "push"], { cwd: dir }));
    const enabled = await onTerminal(ann, ["env", "ci", "enable", ...POLICY], { cwd: dir });
    expect(enabled.code, enabled.output).toBe(0);
    latchkeyJson = await latchkeyJsonOf(dir);
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
    await runner?.close();
    await issuer?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh job: its checkout (latchkey.json), an empty HOME and TMPDIR; a GitHub runner's variables. */
  async function job(extra: Record<string, string | undefined> = {}) {
    const base = join(root, `job-${++jobs}`);
    const checkout = await projectDir(base, "checkout", "web", latchkeyJson);
    const home = join(base, "home");
    const tmp = join(base, "tmp");
    await mkdir(home, { recursive: true });
    await mkdir(tmp, { recursive: true });
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      LANG: "C.UTF-8",
      NO_COLOR: "1",
      HOME: home,
      TMPDIR: tmp,
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
      ...runner.jobEnv(),
      LATCHKEY_SERVER: server.url,
      ...extra,
    };
    const run = (args: readonly string[]): Promise<ProcessResult> =>
      runProcess(process.execPath, [CLI_BIN, ...args], { env, cwd: checkout });
    return { base, checkout, home, run };
  }

  it("run --oidc: the program sees the values, masked in the log first; nothing on disk or in the server's output", async () => {
    runner.claims = { environment: "production" };
    const { base, home, run } = await job();
    const before = runner.requests.length;
    const result = ok(
      await run([
        "run",
        "--oidc",
        "--",
        process.execPath,
        "-e",
        'process.stdout.write("seen:" + process.env.API_KEY)',
      ]),
    );
    const lines = result.stdout.split("\n");
    expect(lines.at(-1)).toBe(`seen:${canary}`);
    expect(lines.slice(0, -1).sort()).toEqual([`::add-mask::${canary}`, "::add-mask::eu-1"].sort());
    // The runner was asked as @actions/core asks it, for the server's URL as audience.
    expect(runner.requests.slice(before)).toEqual([
      { method: "GET", authorization: `Bearer ${runner.requestToken}`, audience: server.url },
    ]);
    // No Latchkey home was made (no keychain, file store or state), and the value was written nowhere.
    expect(await readdir(home)).not.toContain(".latchkey");
    expect(await filesHolding(base, canary)).toEqual([]);
    expect(server.stdout() + server.stderr()).not.toContain(canary);
    expect(result.stderr).not.toContain(canary);
  }, 120_000);

  it("env pull --oidc: stdout, or --output written 0600; each release in the vault's audit log", async () => {
    runner.claims = { environment: "production" };
    const { checkout, run } = await job();
    const printed = ok(await run(["env", "pull", "--oidc", "--format", "json"]));
    expect(JSON.parse(printed.stdout)).toEqual({ API_KEY: canary, REGION: "eu-1" });
    ok(await run(["env", "pull", "--oidc", "--env", "production", "--output", ".env"]));
    const file = join(checkout, ".env");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, "utf8")).toBe(`API_KEY=${canary}\nREGION=eu-1\n`);
    const log = JSON.parse(ok(await latchkey(ann.m, ["env", "log", "--json"], { cwd: annDir })).stdout) as {
      entries: { action: string }[];
    };
    const actions = log.entries.map((e) => e.action);
    expect(actions.filter((a) => a === "vault.ci.exchange").length).toBeGreaterThanOrEqual(2);
    expect(actions.filter((a) => a === "vault.ci.pull").length).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it("another branch, another environment, a fork's event: 403 naming the rule; nothing released", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { environment: "production", ref: "refs/heads/dev" },
        'rule "branch" failed on claim ref ("refs/heads/dev")',
      ],
      [{ environment: "staging" }, 'rule "environment" failed on claim environment ("staging")'],
      [
        { environment: "production", event_name: "pull_request_target" },
        'rule "fork" failed on claim event_name ("pull_request_target")',
      ],
    ];
    for (const [claims, named] of cases) {
      runner.claims = claims;
      const { run } = await job();
      const result = refused(
        await run(["run", "--oidc", "--", process.execPath, "-e", "1"]),
        "LK_CI_POLICY_DENIED",
      );
      expect(result.stderr).toContain("does not admit this job");
      expect(result.stderr).toContain(named);
      expect(result.stdout).toBe("");
    }
    // A job asking for an environment its token is not bound to gets nothing either.
    runner.claims = { environment: "production" };
    const { run } = await job();
    const other = refused(await run(["env", "pull", "--oidc", "--env", "staging"]), "LK_CI_POLICY_DENIED");
    expect(other.stdout).toBe("");
  }, 180_000);

  it("GitLab's way: the token in LATCHKEY_OIDC_TOKEN, accepted once; a GitHub job without the permission is told so", async () => {
    const token = await issuer.mint({ aud: server.url, environment: "production" });
    const { run } = await job({
      GITHUB_ACTIONS: undefined,
      ACTIONS_ID_TOKEN_REQUEST_URL: undefined,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined,
      LATCHKEY_OIDC_TOKEN: token,
    });
    expect(JSON.parse(ok(await run(["env", "pull", "--oidc", "--format", "json"])).stdout)).toMatchObject({
      API_KEY: canary,
    });
    const again = refused(await run(["env", "pull", "--oidc", "--format", "json"]), "LK_CI_TOKEN_REPLAYED");
    expect(again.stdout).toBe("");
    expect(again.stderr).not.toContain(token);

    const none = await job({
      ACTIONS_ID_TOKEN_REQUEST_URL: undefined,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined,
    });
    const missing = refused(
      await none.run(["run", "--oidc", "--", process.execPath, "-e", "1"]),
      "LK_CI_NO_ID_TOKEN",
    );
    expect(missing.stderr).toContain("permissions: id-token: write");
    expect(missing.stderr).toContain("Nothing was sent to the Latchkey server.");
  }, 120_000);
});
