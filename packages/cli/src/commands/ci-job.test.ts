// `env pull --oidc` and `run --oidc` through the command line, in a CI job's context: no keystore, no session and
// no Latchkey home (touching the keystore throws; the home is never created), the runner and the server faked by
// test/support/ci-job-server.ts. The program `run` starts is caught at execve (the context's replaceProcess).
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { RUNNER_URL, SERVER, VAULT, fakeCiJob, type FakeCiJob } from "../../test/support/ci-job-server.js";
import { parseFastPath } from "../fast-path.js";
import { runCli } from "../cli.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-ci-job-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function project(config: Record<string, unknown> = { vault: VAULT }): Promise<string> {
  const dir = join(root, `p${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "latchkey.json"), JSON.stringify(config));
  return dir;
}

/** What `run` handed to execve. */
interface Started {
  file: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  /** stdout as it was when the program started. */
  stdoutBefore: string;
}

class ProgramStarted extends Error {}

/** A GitHub Actions job (or, with `github: false`, a job elsewhere) whose program start is recorded. */
function job(fake: FakeCiJob, cwd: string, env: Record<string, string> = {}, github = true) {
  const home = join(root, `home-${n}`);
  const started: Started[] = [];
  const base = createTestContext({
    cwd,
    env: {
      LATCHKEY_HOME: home,
      LATCHKEY_SERVER: SERVER,
      ...(github
        ? {
            GITHUB_ACTIONS: "true",
            ACTIONS_ID_TOKEN_REQUEST_URL: RUNNER_URL,
            ACTIONS_ID_TOKEN_REQUEST_TOKEN: fake.requestToken,
          }
        : {}),
      ...env,
    },
    fetch: fake.fetch,
  });
  const ctx = {
    ...base,
    replaceProcess: (file: string, argv: readonly string[], childEnv: Readonly<Record<string, string>>) => {
      started.push({ file, argv, env: childEnv, stdoutBefore: base.stdout.text() });
      return Promise.reject(new ProgramStarted());
    },
  };
  return { ctx, started, home };
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

describe("env pull --oidc", () => {
  it("prints the environment as dotenv on stdout; no keystore, no session, nothing under the Latchkey home", async () => {
    const fake = fakeCiJob();
    const { ctx, home } = job(fake, await project());
    expect(await runCli(["env", "pull", "--oidc", "--env", "production"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe("API_KEY=sk-ci-value-1\nDB_URL=postgres://ci:pw@db/app\n");
    expect(ctx.stderr.text()).toContain(
      `Pulled production of vault ${VAULT} (version 7, 2 keys) for oidc:github:acme/web:refs/heads/main.`,
    );
    expect(await exists(home)).toBe(false);
  });

  it("--output: written 0600 in the format asked, never through a symbolic link; the values masked under GitHub Actions", async () => {
    const fake = fakeCiJob();
    const dir = await project();
    const { ctx } = job(fake, dir);
    expect(await runCli(["env", "pull", "--oidc", "-e", "production", "--output", "ci.env"], ctx)).toBe(0);
    const file = join(dir, "ci.env");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, "utf8")).toBe("API_KEY=sk-ci-value-1\nDB_URL=postgres://ci:pw@db/app\n");
    expect(ctx.stdout.text()).toBe("::add-mask::sk-ci-value-1\n::add-mask::postgres://ci:pw@db/app\n");
    expect(ctx.stderr.text()).toContain(`to ${file}.`);

    const asJson = job(fakeCiJob(), dir);
    expect(
      await runCli(
        ["env", "pull", "--oidc", "-e", "production", "--format", "json", "--output", "ci.json", "--json"],
        asJson.ctx,
      ),
    ).toBe(0);
    expect(JSON.parse(await readFile(join(dir, "ci.json"), "utf8"))).toEqual({
      API_KEY: "sk-ci-value-1",
      DB_URL: "postgres://ci:pw@db/app",
    });
    // The summary names the keys, never a value.
    const summary = asJson.ctx.stdout
      .text()
      .split("\n")
      .filter((l) => !l.startsWith("::add-mask::"))
      .join("\n");
    expect(JSON.parse(summary)).toMatchObject({ environment: "production", keys: ["API_KEY", "DB_URL"] });
    expect(summary).not.toContain("sk-ci-value-1");

    // A symbolic link where the file goes: refused, its target untouched.
    const target = join(dir, "elsewhere");
    await writeFile(target, "keep");
    await symlink(target, join(dir, "linked.env"));
    const linked = job(fakeCiJob(), dir);
    expect(
      await runCli(["env", "pull", "--oidc", "-e", "production", "-o", "linked.env"], linked.ctx),
    ).not.toBe(0);
    expect(linked.ctx.stderr.text()).toContain("LK_FILE_SYMLINK");
    expect(await readFile(target, "utf8")).toBe("keep");
  });

  it("an answer not signed with the CI access token: refused, nothing printed or written", async () => {
    const fake = fakeCiJob();
    fake.forgePullSignature = true;
    const dir = await project();
    const { ctx } = job(fake, dir);
    expect(await runCli(["env", "pull", "--oidc", "-e", "production", "-o", "ci.env"], ctx)).not.toBe(0);
    expect(ctx.stderr.text()).toContain("LK_SIGNATURE_INVALID");
    expect(ctx.stdout.text()).toBe("");
    expect(await exists(join(dir, "ci.env"))).toBe(false);
  });

  it("-v -v traces the requests without the ID token, the runner's request token, the access token or a value", async () => {
    const fake = fakeCiJob();
    const { ctx } = job(fake, await project());
    expect(await runCli(["-v", "-v", "env", "pull", "--oidc", "-e", "production", "-o", "ci.env"], ctx)).toBe(
      0,
    );
    const trace = ctx.stderr.text();
    // The runner's URL is the value of a variable named like a token, so the trace's second net hides it too.
    expect(trace).toContain(`&audience=${encodeURIComponent(SERVER)}`);
    expect(trace).toContain(`> POST ${SERVER}/api/v1/ci/oidc`);
    expect(trace).toContain(`> GET ${SERVER}/api/v1/vaults/${VAULT}/ci-pull?env=production`);
    expect(trace).toContain("authorization: Bearer [REDACTED]");
    expect(trace).toContain("characters, not shown)");
    for (const secret of [
      fake.minted[0]!.token,
      fake.requestToken,
      fake.accessTokens[0]!,
      "sk-ci-value-1",
      "postgres://ci:pw@db/app",
    ]) {
      expect(trace).not.toContain(secret);
    }
  });

  it("--format shell refuses a reserved name unless --allow-override; options without --oidc are refused", async () => {
    const fake = fakeCiJob();
    fake.pull = (_environment, org) => ({
      vaultId: VAULT,
      org,
      version: 1,
      values: { NODE_OPTIONS: "--require ./evil.js" },
      defaulted: [],
    });
    const dir = await project();
    const shell = job(fake, dir);
    expect(
      await runCli(["env", "pull", "--oidc", "-e", "production", "--format", "shell"], shell.ctx),
    ).not.toBe(0);
    expect(shell.ctx.stderr.text()).toContain("LK_ENV_KEY_RESERVED");
    expect(shell.ctx.stderr.text()).toContain("latchkey env pull --oidc --format shell");
    expect(shell.ctx.stdout.text()).toBe("");
    const allowed = job(fake, dir);
    expect(
      await runCli(
        ["env", "pull", "--oidc", "-e", "p", "--format", "shell", "--allow-override"],
        allowed.ctx,
      ),
    ).toBe(0);
    expect(allowed.ctx.stdout.text()).toContain("export NODE_OPTIONS=");

    const plain = job(fake, dir);
    expect(await runCli(["env", "pull", "--format", "json"], plain.ctx)).toBe(2);
    expect(plain.ctx.stderr.text()).toContain("are for --oidc");
    expect(fake.seen.filter((r) => r.url.origin === SERVER)).toHaveLength(4);
  });
});

describe("run --oidc", () => {
  it("starts the program with the pulled values; under GitHub Actions each value line masked first", async () => {
    const fake = fakeCiJob();
    fake.pull = (_environment, org) => ({
      vaultId: VAULT,
      org,
      version: 3,
      values: { TLS_KEY: "-----BEGIN-----\nAbC%0A\n\n-----END-----\n", PORT: "3000", API_KEY: "sk-1" },
      defaulted: ["PORT"],
    });
    const { ctx, started } = job(fake, await project());
    // The stand-in for execve throws once it has recorded the start; the CLI reports that as its own failure.
    await runCli(["run", "--oidc", "--env", "production", "--", process.execPath, "-e", "1"], ctx);
    expect(started).toHaveLength(1);
    const [program] = started;
    expect(program!.argv).toEqual([process.execPath, "-e", "1"]);
    expect(program!.env).toMatchObject({
      TLS_KEY: "-----BEGIN-----\nAbC%0A\n\n-----END-----\n",
      PORT: "3000",
      API_KEY: "sk-1",
    });
    // Every non-blank line of each value the vault holds, `%` escaped; not the envSchema's default.
    expect(program!.stdoutBefore).toBe(
      "::add-mask::-----BEGIN-----\n::add-mask::AbC%250A\n::add-mask::-----END-----\n::add-mask::sk-1\n",
    );
    // Neither token reaches the program.
    const handed = JSON.stringify(program);
    expect(handed).not.toContain(fake.minted[0]!.token);
    expect(handed).not.toContain(fake.accessTokens[0]!);
  });

  it("without GitHub Actions nothing is masked; GitLab's LATCHKEY_OIDC_TOKEN; the one environment bound", async () => {
    const fake = fakeCiJob();
    fake.exchange = { ...fake.exchange, environments: ["staging"] };
    const { ctx, started } = job(fake, await project(), { LATCHKEY_OIDC_TOKEN: fake.gitlabToken }, false);
    await runCli(["run", "--oidc", "--", process.execPath], ctx);
    expect(started[0]!.stdoutBefore).toBe("");
    expect(started[0]!.env.API_KEY).toBe("sk-ci-value-1");
    const get = fake.seen.find((r) => r.url.pathname.endsWith("/ci-pull"))!;
    expect(get.url.searchParams.get("env")).toBe("staging");
  });

  it("the run machinery's checks hold: a reserved name stops the program; --offline and --server alone are usage errors", async () => {
    const fake = fakeCiJob();
    fake.pull = (_environment, org) => ({
      vaultId: VAULT,
      org,
      version: 1,
      values: { LD_PRELOAD: "/tmp/evil.so" },
      defaulted: [],
    });
    const dir = await project();
    const reserved = job(fake, dir);
    expect(
      await runCli(["run", "--oidc", "-e", "production", "--", process.execPath], reserved.ctx),
    ).not.toBe(0);
    expect(reserved.ctx.stderr.text()).toContain("LK_ENV_KEY_RESERVED");
    expect(reserved.started).toHaveLength(0);

    const offline = job(fake, dir);
    expect(await runCli(["run", "--oidc", "--offline", "--", process.execPath], offline.ctx)).toBe(2);
    expect(offline.ctx.stderr.text()).toContain("--offline");
    const serverAlone = job(fake, dir);
    expect(await runCli(["run", "--server", SERVER, "--", process.execPath], serverAlone.ctx)).toBe(2);
    expect(serverAlone.ctx.stderr.text()).toContain("--server is for --oidc");
    // Only the first run reached the server.
    expect(fake.seen.filter((r) => r.url.pathname === "/api/v1/ci/oidc")).toHaveLength(1);
  });

  it("is never taken by the fast path, which has no network client", () => {
    for (const argv of [
      ["run", "--oidc", "--", "true"],
      ["run", "-e", "production", "--oidc", "true"],
      ["env", "run", "--oidc", "--", "true"],
    ]) {
      expect(parseFastPath(argv), argv.join(" ")).toBeNull();
    }
  });
});
