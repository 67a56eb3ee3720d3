// The CI scenario of `npm run bench` (docs/ci.md): one CI job's pull through OIDC — `latchkey env pull --oidc`,
// which gets the job's ID token from the runner, exchanges it for a CI access token and pulls one environment —
// beside the vault owner's personal `latchkey env pull` of the same vault, in the same run. Whole processes timed
// like every other CLI scenario (lib/spawn.ts), the built CLI against the real `latchkey-server` process (SQLite,
// default settings) that trusts a loopback issuer (packages/server/test/support/ci-issuer.ts) through
// CI_OIDC_ISSUERS, as the e2e suite e2e/ci-oidc.test.ts runs it. The job's ID token comes from the loopback double of
// GitHub Actions' runner endpoint (e2e/support/ci-runner.ts), which mints a fresh token at each request: each token
// is accepted once, so every timed run is a real exchange and a real pull, each with its audit rows.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startCiRunner, type CiRunner } from "../e2e/support/ci-runner.ts";
import { startLatchkeyServer, type Machine } from "../e2e/support/latchkey-server.ts";
import { terminalCheck } from "../e2e/support/pty.ts";
import { startCiIssuer } from "../packages/server/test/support/ci-issuer.ts";
import type { ScenarioResult } from "./lib/report.ts";
import { runChecked } from "./lib/spawn.ts";
import { cliCommand, onTerminal, person, type TeamsBenchOptions } from "./teams.ts";

/** Secrets in the pulled environment (as in scenarios 4 and 12). */
const SECRETS = 20;
const ENVIRONMENT = "production";
const NO_DBUS = "unix:path=/nonexistent/latchkey-bench-no-bus";
// The loopback issuer's GitHub claims name octo-org/octo-repo, ids 74 and 65, a push to main.
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
  ENVIRONMENT,
];

/** What the CI scenario needs from the runner (the organisation scenarios' options, less their goals). */
export type CiBenchOptions = Pick<TeamsBenchOptions, "temp" | "progress" | "measure">;

/** Scenario `id`: `env pull --oidc` in a CI job vs the owner's personal `env pull`. */
export async function runCiBench(id: number, options: CiBenchOptions): Promise<ScenarioResult[]> {
  const title = "`env pull --oidc` in a CI job (exchange + CI pull) vs personal `env pull`";
  const terminal = terminalCheck();
  if (!terminal.ok) {
    // Enabling CI asks for the password at a step-up prompt, which needs a terminal.
    return [
      {
        id,
        title,
        status: "not-run",
        reason: terminal.reason ?? "no terminal",
        goals: [{ against: "personal `env pull`", goal: null }],
      },
    ];
  }

  await mkdir(options.temp, { recursive: true });
  options.progress(
    `${id}. starting latchkey-server (SQLite), a loopback OIDC issuer and a runner's token endpoint`,
  );
  const issuer = await startCiIssuer();
  const runner = await startCiRunner(issuer);
  runner.claims = { environment: ENVIRONMENT };
  // Closed whatever happens: their listeners would otherwise keep the bench's process alive after a failure.
  try {
    return await measureCiPull(id, title, options, issuer.url, runner);
  } finally {
    await runner.close();
    await issuer.close();
  }
}

async function measureCiPull(
  id: number,
  title: string,
  options: CiBenchOptions,
  issuerUrl: string,
  runner: CiRunner,
): Promise<ScenarioResult[]> {
  // As in bench/server.ts, LATCHKEY_BENCH_SERVER_NODE_OPTIONS reaches the server process alone.
  const serverNodeOptions = process.env.LATCHKEY_BENCH_SERVER_NODE_OPTIONS;
  const server = await startLatchkeyServer({
    dataDir: join(options.temp, "server-data"),
    keepLogs: false,
    env: {
      CI_OIDC_ISSUERS: `github=${issuerUrl}`,
      ...(serverNodeOptions ? { NODE_OPTIONS: serverNodeOptions } : {}),
    },
  });
  try {
    const owner = await person(server, options.temp, "ci-owner");
    const ownerDir = join(options.temp, "projects", "owner-app");
    await mkdir(ownerDir, { recursive: true });
    await writeFile(join(ownerDir, "package.json"), JSON.stringify({ name: "bench-app", private: true }));
    const secrets = Array.from({ length: SECRETS }, (_, i) => [`KEY_${i + 1}`, `value-${i + 1}`] as const);
    await runChecked(
      cliCommand("latchkey env import -", owner, ["env", "import", "-e", ENVIRONMENT, "-"], ownerDir),
      secrets.map(([k, v]) => `${k}=${v}\n`).join(""),
    );
    await runChecked(cliCommand("latchkey env push", owner, ["env", "push"], ownerDir));
    // Enabling CI escrows the vault key after a step-up: the password typed on a terminal.
    await onTerminal(owner, ["env", "ci", "enable", ...POLICY], ownerDir);

    // The job: a checkout with the project's latchkey.json (as from git), an empty HOME and no Latchkey home, no
    // keychain, the variables a GitHub runner sets for a job with `permissions: id-token: write`.
    const jobRoot = join(options.temp, "ci-job");
    const checkout = join(jobRoot, "checkout");
    const home = join(jobRoot, "home");
    const tmp = join(jobRoot, "tmp");
    await mkdir(checkout, { recursive: true });
    await mkdir(home, { recursive: true });
    await mkdir(tmp, { recursive: true });
    await writeFile(join(checkout, "package.json"), JSON.stringify({ name: "bench-app", private: true }));
    await writeFile(join(checkout, "latchkey.json"), await readFile(join(ownerDir, "latchkey.json"), "utf8"));
    const job: Machine = {
      name: "ci-job",
      home,
      latchkeyHome: join(home, ".latchkey"),
      env: {
        PATH: process.env.PATH,
        LANG: "C.UTF-8",
        NO_COLOR: "1",
        HOME: home,
        TMPDIR: tmp,
        DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
        LATCHKEY_SERVER: server.url,
        ...runner.jobEnv(),
      },
    };
    const ciPull = cliCommand(
      `latchkey env pull --oidc --env ${ENVIRONMENT}`,
      { m: job },
      ["env", "pull", "--oidc", "--env", ENVIRONMENT],
      checkout,
    );
    const personalPull = cliCommand("latchkey env pull", owner, ["env", "pull"], ownerDir);

    // Checked once before timing: the job gets the 20 secrets, the runner was asked once per pull.
    const asked = runner.requests.length;
    const checked = await runChecked(
      cliCommand(
        "latchkey env pull --oidc --format json",
        { m: job },
        ["env", "pull", "--oidc", "--env", ENVIRONMENT, "--format", "json"],
        checkout,
      ),
    );
    const pulled = JSON.parse(checked.stdout) as Record<string, unknown>;
    if (Object.keys(pulled).length !== SECRETS || secrets.some(([k, v]) => pulled[k] !== v)) {
      throw new Error("bench: the CI job's pull does not hold the vault's secrets");
    }
    if (runner.requests.length !== asked + 1) {
      throw new Error("bench: the CI job's pull did not ask the runner for its ID token once");
    }
    await runChecked(personalPull);

    const result = await options.measure(
      id,
      title,
      [
        {
          ...ciPull,
          detail: `GitHub Actions job: runner's ID token, exchange, CI pull; ${SECRETS} secrets`,
        },
        { ...personalPull, detail: "the vault owner's machine, same vault" },
      ],
      [
        {
          against: "personal `env pull`",
          indices: [1],
          goal: null,
          note: "CI pull: informational. The job's process asks the runner's endpoint (a loopback double minting an RS256 token per request) for its ID token, then makes two requests: the exchange (the server verifies the token against the issuer's cached keys, matches the policy, spends the jti and writes vault.ci.exchange in one transaction) and the CI pull (the server opens the escrowed key and the head, writes vault.ci.pull, answers the environment). The personal pull fetches the copy, opens it with the machine's key and merges it into the local vault.",
        },
      ],
      null,
    );
    return [result];
  } finally {
    const exit = await server.stop();
    if (exit.code !== 0)
      options.progress(`latchkey-server exited ${exit.code ?? exit.signal}: ${server.stderr()}`);
  }
}
