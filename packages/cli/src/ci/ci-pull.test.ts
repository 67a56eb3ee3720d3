// The CI job's pull in process (ci/oidc-token.ts, ci/ci-pull.ts): the ID token from each platform as it hands it
// out, the exchange and the pull against a fake of the runner and of the server's CI routes that checks what is sent
// (test/support/ci-job-server.ts), with a context that has no keystore and no session: touching either throws.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import {
  RUNNER_URL,
  SERVER,
  VAULT,
  fakeCiJob,
  fakeJwt,
  type FakeCiJob,
} from "../../test/support/ci-job-server.js";
import { pullWithOidc } from "./ci-pull.js";
import { ciIdToken } from "./oidc-token.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-ci-pull-"));
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

/** A GitHub Actions job's context: the runner's variables, the server's URL, no keystore, no home. */
function githubJob(job: FakeCiJob, cwd: string, env: Record<string, string> = {}) {
  const sleeps: number[] = [];
  const ctx = createTestContext({
    cwd,
    env: {
      LATCHKEY_HOME: join(root, "no-home"),
      GITHUB_ACTIONS: "true",
      ACTIONS_ID_TOKEN_REQUEST_URL: RUNNER_URL,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: job.requestToken,
      LATCHKEY_SERVER: SERVER,
      ...env,
    },
    fetch: job.fetch,
    clock: {
      now: () => Date.parse("2030-01-01T00:00:00Z"),
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  });
  return { ctx, sleeps };
}

const runnerCalls = (job: FakeCiJob) => job.seen.filter((r) => r.url.href.startsWith("https://runner."));
const serverCalls = (job: FakeCiJob) => job.seen.filter((r) => r.url.origin === SERVER);

describe("the job's ID token", () => {
  it("GitHub: GET of the runner's URL with the audience added to its query and the request token as bearer", async () => {
    const job = fakeCiJob();
    const { ctx } = githubJob(job, await project());
    const got = await ciIdToken(ctx, { audience: SERVER });
    expect(got).toEqual({ token: job.minted[0]!.token, source: "github" });
    const [call] = runnerCalls(job);
    expect(call!.method).toBe("GET");
    expect(call!.authorization).toBe(`Bearer ${job.requestToken}`);
    expect(call!.url.searchParams.get("api-version")).toBe("2.0");
    expect(call!.url.searchParams.get("audience")).toBe(SERVER);
  });

  it("GitHub: the audience is --audience, else LATCHKEY_OIDC_AUDIENCE, else the server's URL", async () => {
    const dir = await project();
    for (const [env, flag, expected] of [
      [{}, undefined, SERVER],
      [{ LATCHKEY_OIDC_AUDIENCE: "latchkey-ci" }, undefined, "latchkey-ci"],
      [
        { LATCHKEY_OIDC_AUDIENCE: "latchkey-ci" },
        "https://aud.example/x?y=1&z",
        "https://aud.example/x?y=1&z",
      ],
    ] as const) {
      const job = fakeCiJob();
      const { ctx } = githubJob(job, dir, env);
      await pullWithOidc(ctx, {
        environment: "production",
        ...(flag === undefined ? {} : { audience: flag }),
      });
      expect(job.minted.map((m) => m.audience)).toEqual([expected]);
    }
  });

  it("GitHub: a 5xx of the runner is tried again (3 attempts); a 403 is LK_CI_NO_ID_TOKEN naming the permission", async () => {
    const dir = await project();
    const flaky = fakeCiJob();
    flaky.runner = (attempt) => (attempt < 3 ? 503 : "token");
    const { ctx, sleeps } = githubJob(flaky, dir);
    await expect(ciIdToken(ctx, { audience: SERVER })).resolves.toMatchObject({ source: "github" });
    expect(runnerCalls(flaky)).toHaveLength(3);
    expect(sleeps).toEqual([1000, 2000]);

    const refused = fakeCiJob();
    refused.runner = () => 403;
    await expect(ciIdToken(githubJob(refused, dir).ctx, { audience: SERVER })).rejects.toMatchObject({
      code: "LK_CI_NO_ID_TOKEN",
      message: expect.stringContaining("answered 403"),
      hint: expect.stringContaining("permissions: id-token: write"),
    });
    expect(runnerCalls(refused)).toHaveLength(1);
  });

  it("GitLab: LATCHKEY_OIDC_TOKEN, or the variable --token-env names; the runner is never asked", async () => {
    const job = fakeCiJob();
    const dir = await project();
    const { ctx } = githubJob(job, dir, { LATCHKEY_OIDC_TOKEN: ` ${job.gitlabToken}\n`, GITLAB_CI: "true" });
    await expect(ciIdToken(ctx, { audience: SERVER })).resolves.toEqual({
      token: job.gitlabToken,
      source: { variable: "LATCHKEY_OIDC_TOKEN" },
    });
    const other = fakeJwt();
    await expect(
      ciIdToken(githubJob(job, dir, { MY_ID_TOKEN: other }).ctx, {
        audience: SERVER,
        tokenEnv: "MY_ID_TOKEN",
      }),
    ).resolves.toEqual({ token: other, source: { variable: "MY_ID_TOKEN" } });
    expect(runnerCalls(job)).toHaveLength(0);
  });

  it("none: LK_CI_NO_ID_TOKEN with the hint of the platform, and nothing reaches the server", async () => {
    const dir = await project();
    const bare = (env: Record<string, string>) =>
      createTestContext({
        cwd: dir,
        env: { LATCHKEY_HOME: join(root, "no-home"), LATCHKEY_SERVER: SERVER, ...env },
        fetch: () => Promise.reject(new Error("no request may be made")),
      });
    await expect(pullWithOidc(bare({ GITHUB_ACTIONS: "true" }), {})).rejects.toMatchObject({
      code: "LK_CI_NO_ID_TOKEN",
      message: expect.stringContaining("Nothing was sent"),
      hint: expect.stringContaining("`permissions: id-token: write`"),
    });
    await expect(pullWithOidc(bare({ GITLAB_CI: "true" }), {})).rejects.toMatchObject({
      code: "LK_CI_NO_ID_TOKEN",
      hint: expect.stringContaining(`id_tokens: { LATCHKEY_OIDC_TOKEN: { aud: ${SERVER} } }`),
    });
    await expect(pullWithOidc(bare({}), { tokenEnv: "JOB_TOKEN" })).rejects.toMatchObject({
      code: "LK_CI_NO_ID_TOKEN",
      message: expect.stringContaining("JOB_TOKEN is not set"),
      hint: expect.stringContaining("--token-env JOB_TOKEN"),
    });
    // Not a JWT: refused before it is sent, and without being quoted.
    const error = await pullWithOidc(bare({ LATCHKEY_OIDC_TOKEN: "not-a-jwt-secretish" }), {}).catch(
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({ code: "LK_CI_NO_ID_TOKEN" });
    expect(JSON.stringify(error)).not.toContain("not-a-jwt-secretish");
    // No server either: LK_USAGE naming LATCHKEY_SERVER.
    await expect(
      pullWithOidc(createTestContext({ cwd: dir, env: { LATCHKEY_OIDC_TOKEN: fakeJwt() } }), {}),
    ).rejects.toMatchObject({ code: "LK_USAGE", message: expect.stringContaining("LATCHKEY_SERVER") });
  });
});

describe("the exchange and the pull", () => {
  it("exchanges, then pulls the environment with the access token; the vault from latchkey.json, the org too", async () => {
    const job = fakeCiJob();
    const { ctx } = githubJob(job, await project({ vault: VAULT, org: "acme" }));
    const pull = await pullWithOidc(ctx, { environment: "production" });
    expect(pull).toMatchObject({
      server: SERVER,
      vaultId: VAULT,
      org: "acme",
      environment: "production",
      version: 7,
      values: { API_KEY: "sk-ci-value-1", DB_URL: "postgres://ci:pw@db/app" },
      name: "oidc:github:acme/web:refs/heads/main",
    });
    const [exchange, get] = serverCalls(job);
    expect(exchange!.authorization).toBeNull();
    expect(JSON.parse(exchange!.body)).toEqual({ vaultId: VAULT, org: "acme", token: job.minted[0]!.token });
    expect(get!.authorization).toBe(`Bearer ${job.accessTokens[0]}`);
    expect(`${get!.url.pathname}${get!.url.search}`).toBe(
      `/api/v1/vaults/${VAULT}/ci-pull?env=production&org=acme`,
    );
  });

  it("without --env: the one environment the token is bound to; none or several is LK_USAGE before any pull", async () => {
    const dir = await project();
    const bound = fakeCiJob();
    bound.exchange = { ...bound.exchange, environments: ["staging"] };
    expect((await pullWithOidc(githubJob(bound, dir).ctx, {})).environment).toBe("staging");

    for (const environments of [[], ["staging", "production"]]) {
      const job = fakeCiJob();
      job.exchange = { ...job.exchange, environments };
      await expect(pullWithOidc(githubJob(job, dir).ctx, {})).rejects.toMatchObject({
        code: "LK_USAGE",
        message: expect.stringContaining("--env"),
      });
      expect(serverCalls(job).map((r) => r.url.pathname)).toEqual(["/api/v1/ci/oidc"]);
    }
  });

  it("an answer to the pull not signed with the access token is refused unread", async () => {
    const job = fakeCiJob();
    job.forgePullSignature = true;
    await expect(
      pullWithOidc(githubJob(job, await project()).ctx, { environment: "production" }),
    ).rejects.toMatchObject({
      code: "LK_SIGNATURE_INVALID",
    });
  });

  it("the server's refusals keep its words (printable, quoted) and get this command's hints", async () => {
    const dir = await project();
    const denied = fakeCiJob();
    denied.exchange = {
      status: 403,
      code: "LK_CI_POLICY_DENIED",
      message: "branch: ref refs/heads/dev matches none of main\u001b[2J\u202e",
    };
    const error = await pullWithOidc(githubJob(denied, dir).ctx, { environment: "production" }).catch(
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({
      code: "LK_CI_POLICY_DENIED",
      message: `The CI policy of vault ${VAULT} does not admit this job. The server says: "branch: ref refs/heads/dev matches none of main [2J"`,
      hint: expect.stringContaining("latchkey env ci show"),
    });

    const notEnabled = fakeCiJob();
    notEnabled.exchange = { status: 404, code: "LK_CI_NOT_ENABLED", message: "no" };
    await expect(pullWithOidc(githubJob(notEnabled, dir).ctx, { environment: "x" })).rejects.toMatchObject({
      code: "LK_CI_NOT_ENABLED",
      message: expect.stringContaining(`CI pulls are not enabled for vault ${VAULT} on ${SERVER}`),
    });

    const invalid = fakeCiJob();
    invalid.exchange = {
      status: 401,
      code: "LK_CI_TOKEN_INVALID",
      message: "aud: the token's audience is x",
    };
    await expect(pullWithOidc(githubJob(invalid, dir).ctx, { environment: "x" })).rejects.toMatchObject({
      code: "LK_CI_TOKEN_INVALID",
      message: expect.stringContaining(`The server says: "aud: the token's audience is x"`),
    });

    const missing = fakeCiJob();
    missing.pull = () => ({ status: 404, code: "LK_ENV_NOT_FOUND", message: "no" });
    await expect(pullWithOidc(githubJob(missing, dir).ctx, { environment: "qa" })).rejects.toMatchObject({
      code: "LK_ENV_NOT_FOUND",
      message: expect.stringContaining("no environment named qa"),
    });
  });
});
