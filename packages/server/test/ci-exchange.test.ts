// The CI exchange and the CI pull (docs/ci.md "Exchange" and "The CI pull"), on both databases, with loopback
// issuers that mint GitHub's and GitLab's real claim sets: a job's OIDC token for a copy's policy becomes a CI
// access token, and that token releases one environment's values (envSchema defaults filled in) in a signed answer;
// every refusal has its code, releases nothing and leaves no vault.ci.pull row; a disable or a replace revokes
// issued tokens; a CI token is taken by the CI pull only and the CI pull takes nothing else; audit rows carry the
// job (repository, ref, run id, event, jti); the server's log lines hold no value and no token.
import { randomBytes, randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import {
  CI_ACCESS_TOKEN_TTL_SECONDS,
  CI_PATH,
  checkSchema,
  ciExchangeResponseSchema,
  ciPullResponseSchema,
  ORGS_PATH,
  sealEnvelope,
  STEP_UP_HEADER,
  syncBlobContext,
  toBase64,
  utf8Encode,
  wrapKeyForRecipient,
  type CiPolicy,
  type WireSchema,
} from "@latchkey/core";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loggerOptions } from "../src/logging.js";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import { startCiIssuer, TEST_CI_AUDIENCE, type CiIssuer, type MintOptions } from "./support/ci-issuer.js";
import { TEST_ESCROW_KEY } from "./support/identity.js";
import { stepUpProofFor } from "./support/step-up.js";
import {
  injectedSignature,
  newRequestId,
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const CANARY = `lk-ci-canary-${randomBytes(16).toString("hex")}`;
const STAGING_CANARY = `lk-ci-staging-${randomBytes(16).toString("hex")}`;
const DOCUMENT = JSON.stringify({
  production: { API_KEY: CANARY, EMPTY: "" },
  staging: { API_KEY: STAGING_CANARY },
});
/** The envSchema pushed with the copy: LOG_LEVEL is absent from the vault, EMPTY empty; both have defaults. */
const SCHEMA = {
  API_KEY: { required: true, secret: true },
  LOG_LEVEL: { default: "info" },
  EMPTY: { default: "filled" },
};

/** A fresh client address, so the suite's refused exchanges do not add up against one address's limit. */
const freshAddress = (): string => `10.${randomBytes(3).join(".")}`;

describeEachDatabase("CI exchange and pull", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let github: CiIssuer;
  let gitlab: CiIssuer;
  let alice: Caller;
  const logLines: string[] = [];
  /** Every OIDC token and CI access token the suite used: none may appear in a log line. */
  const secrets: string[] = [];

  beforeAll(async () => {
    github = await startCiIssuer();
    gitlab = await startCiIssuer();
    database = await openMigrated(await target.fresh());
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    server = await startSyncServer(database, {
      ciIssuers: [
        { provider: "github", url: github.url },
        { provider: "gitlab", url: gitlab.url },
      ],
      logger: loggerOptions({ level: "trace", stream }),
    });
    alice = await server.caller();
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
    await github?.close();
    await gitlab?.close();
  });

  const db = () => database.db;

  /** The loopback issuers' default claim sets: GitHub octo-org/octo-repo (74, 65), GitLab acme/app (20, 72). */
  const githubPolicy = (overrides: Partial<CiPolicy> = {}): CiPolicy => ({
    provider: "github",
    issuer: github.url,
    repository: "octo-org/octo-repo",
    repositoryId: "74",
    ownerId: "65",
    branches: ["main", "release/*"],
    environments: ["production"],
    allowForks: false,
    protectedRefsOnly: false,
    audience: TEST_CI_AUDIENCE,
    ...overrides,
  });
  const gitlabPolicy = (overrides: Partial<CiPolicy> = {}): CiPolicy =>
    githubPolicy({
      provider: "gitlab",
      issuer: gitlab.url,
      repository: "acme/app",
      repositoryId: "20",
      ownerId: "72",
      environments: [],
      ...overrides,
    });

  async function mint(
    issuer: CiIssuer,
    claims: Record<string, unknown> = {},
    options: MintOptions = {},
  ): Promise<string> {
    const token = await issuer.mint(claims, options);
    secrets.push(token);
    return token;
  }
  const githubToken = (claims: Record<string, unknown> = {}) =>
    mint(github, { environment: "production", ...claims });

  /** A personal copy of `owner` at version 1 (DOCUMENT and SCHEMA), with CI enabled under `policy`. */
  async function enabledCopy(
    policy: CiPolicy = githubPolicy(),
    owner: Caller = alice,
  ): Promise<{ vaultId: string; vaultKey: Uint8Array }> {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    const pushed = await call(
      server.app,
      owner.token,
      "PUT",
      `/api/v1/vaults/${vaultId}`,
      pushBody(await sealBlob(vaultKey, vaultId, 1, DOCUMENT), 0, { schema: SCHEMA }),
    );
    expect(pushed.statusCode, pushed.body).toBe(200);
    await enable(owner, `/api/v1/vaults/${vaultId}/ci`, policy, vaultKey);
    return { vaultId, vaultKey };
  }

  async function enable(owner: Caller, path: string, policy: CiPolicy, vaultKey: Uint8Array): Promise<void> {
    const escrow = {
      escrowedKey: await wrapKeyForRecipient(vaultKey, TEST_ESCROW_KEY.publicKey),
      escrowKeyFingerprint: TEST_ESCROW_KEY.fingerprint,
    };
    const proof = await stepUpProofFor(server.identity, owner.token, "vault:ci:enable");
    const res = await call(
      server.app,
      owner.token,
      "PUT",
      path,
      { policy, escrow },
      { [STEP_UP_HEADER]: proof },
    );
    expect(res.statusCode, res.body).toBe(200);
  }

  /** POST /api/v1/ci/oidc, as a job sends it: no bearer token, from `address`. */
  function exchange(
    body: Record<string, unknown>,
    address = freshAddress(),
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    return server.app.inject({
      method: "POST",
      url: `${CI_PATH}/oidc`,
      remoteAddress: address,
      headers: { "x-latchkey-request-id": newRequestId(), ...headers },
      payload: body,
    });
  }

  /** GET …/ci-pull with `bearer`. */
  function ciPull(
    bearer: string | undefined,
    vaultId: string,
    query: string,
  ): Promise<LightMyRequestResponse> {
    return server.app.inject({
      method: "GET",
      url: `/api/v1/vaults/${vaultId}/ci-pull?${query}`,
      remoteAddress: freshAddress(),
      headers: {
        "x-latchkey-request-id": newRequestId(),
        ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      },
    });
  }

  /** A 200 signed keyed by `credential`, of `schema`'s shape. */
  function signedAnswer<T>(res: LightMyRequestResponse, credential: string, schema: WireSchema<T>): T {
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(credential, res));
    const checked = checkSchema(schema, res.json());
    if (!checked.ok) throw new Error(checked.message);
    return checked.value;
  }

  /** A refusal with `status` and `code`: unsigned, and releasing no value. */
  function refused(res: LightMyRequestResponse, status: number, code: string): string {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers["x-latchkey-signature"]).toBeUndefined();
    expect(res.body).not.toContain(CANARY);
    expect(res.body).not.toContain(STAGING_CANARY);
    const body = res.json<{ code: string; message: string }>();
    expect(body.code).toBe(code);
    return body.message;
  }

  async function accessToken(vaultId: string, token: string, org?: string): Promise<string> {
    const res = await exchange({ vaultId, token, ...(org === undefined ? {} : { org }) });
    const answer = signedAnswer(res, token, ciExchangeResponseSchema);
    secrets.push(answer.accessToken);
    return answer.accessToken;
  }

  const audit = async (vaultId: string, action: string) =>
    (
      await db()
        .selectFrom("audit_events")
        .select(["user_id", "org_id", "version", "metadata"])
        .where("vault_id", "=", vaultId)
        .where("action", "=", action)
        .execute()
    ).map((row) => ({ ...row, metadata: JSON.parse(row.metadata) as Record<string, unknown> }));

  it("a GitHub job on main for production gets a CI token, then production's values with the envSchema's defaults, audited", async () => {
    const { vaultId } = await enabledCopy();
    const token = await githubToken({ run_id: "4242", run_attempt: "2" });
    const res = await exchange({ vaultId, token });
    const exchanged = signedAnswer(res, token, ciExchangeResponseSchema);
    secrets.push(exchanged.accessToken);
    expect(exchanged).toMatchObject({
      tokenType: "Bearer",
      name: "oidc:github:octo-org/octo-repo:refs/heads/main",
      environments: ["production"],
    });
    // At most ten minutes, and never past the job's own token (5 minutes from the issuer).
    const ttl = Date.parse(exchanged.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300_000);
    expect(ttl).toBeLessThanOrEqual(CI_ACCESS_TOKEN_TTL_SECONDS * 1000);

    const pulled = await ciPull(exchanged.accessToken, vaultId, "env=production");
    const answer = signedAnswer(pulled, exchanged.accessToken, ciPullResponseSchema);
    expect(answer).toEqual({
      vaultId,
      org: null,
      version: 1,
      environment: "production",
      values: { API_KEY: CANARY, EMPTY: "filled", LOG_LEVEL: "info" },
      defaulted: ["LOG_LEVEL", "EMPTY"],
    });

    const [exchangeRow, ...moreExchanges] = await audit(vaultId, "vault.ci.exchange");
    expect(moreExchanges).toEqual([]);
    const job = {
      provider: "github",
      repository: "octo-org/octo-repo",
      ref: "refs/heads/main",
      runId: "4242/2",
      event: "push",
      jti: JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).jti as string,
    };
    expect(exchangeRow).toMatchObject({
      user_id: null,
      org_id: null,
      metadata: { ...job, environment: "production" },
    });
    const [pullRow, ...morePulls] = await audit(vaultId, "vault.ci.pull");
    expect(morePulls).toEqual([]);
    expect(pullRow).toMatchObject({
      user_id: null,
      org_id: null,
      metadata: { ...job, environment: "production", keys: 3, defaulted: 2 },
    });
    expect(Number(pullRow!.version)).toBe(1);
    const rows = JSON.stringify(await db().selectFrom("audit_events").selectAll().execute());
    expect(rows).not.toContain(CANARY);
    expect(rows).not.toContain(exchanged.accessToken);
    expect(rows).not.toContain(token);
    // The owner's log shows both.
    const log = await call(server.app, alice.token, "GET", `/api/v1/vaults/${vaultId}/log`);
    expect(log.statusCode, log.body).toBe(200);
    expect(log.body).toContain("vault.ci.pull");

    // The token is bound to production: staging is refused, and nothing more is released.
    refused(await ciPull(exchanged.accessToken, vaultId, "env=staging"), 403, "LK_CI_POLICY_DENIED");
    expect(await audit(vaultId, "vault.ci.pull")).toHaveLength(1);
  });

  it("refuses each job the policy does not admit, naming the rule, with no token, no release and no pull row", async () => {
    const { vaultId } = await enabledCopy();
    const other = await enabledCopy(githubPolicy({ repository: "octo-org/other", repositoryId: "75" }));
    const now = Math.floor(Date.now() / 1000);
    const cases: [
      name: string,
      vaultId: string,
      token: string,
      status: number,
      code: string,
      says: RegExp,
    ][] = [
      [
        "renamed or re-created repository (another repository_id)",
        vaultId,
        await githubToken({ repository_id: "99" }),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "repository-id" failed on claim repository_id \("99"\)/,
      ],
      [
        "another branch",
        vaultId,
        await githubToken({ ref: "refs/heads/main-evil" }),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "branch" failed on claim ref \("refs\/heads\/main-evil"\)/,
      ],
      [
        "a tag named like the branch",
        vaultId,
        await githubToken({ ref: "refs/tags/main", ref_type: "tag" }),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "ref" failed on claim ref \("refs\/tags\/main"\)/,
      ],
      [
        "a fork's pull_request_target",
        vaultId,
        await githubToken({ event_name: "pull_request_target" }),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "fork" failed on claim event_name \("pull_request_target"\)/,
      ],
      [
        "an environment the policy does not list",
        vaultId,
        await githubToken({ environment: "staging" }),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "environment" failed on claim environment \("staging"\)/,
      ],
      [
        "a token of another repository, for this vault",
        other.vaultId,
        await githubToken(),
        403,
        "LK_CI_POLICY_DENIED",
        /rule "repository" failed on claim repository \("octo-org\/octo-repo"\)/,
      ],
      [
        "an expired token",
        vaultId,
        await githubToken({ iat: now - 600, nbf: now - 600, exp: now - 120 }),
        401,
        "LK_CI_TOKEN_INVALID",
        /expired/,
      ],
      [
        "a token for another audience",
        vaultId,
        await githubToken({ aud: "https://other.example.com" }),
        401,
        "LK_CI_TOKEN_INVALID",
        /audience/,
      ],
      [
        "a token of an issuer the policy does not name",
        vaultId,
        await mint(gitlab, {}, { shape: "github" }),
        401,
        "LK_CI_TOKEN_INVALID",
        /issuer is not/,
      ],
      ["a vault without CI", randomUUID(), await githubToken(), 404, "LK_CI_NOT_ENABLED", /not enabled/],
    ];
    for (const [name, target, token, status, code, says] of cases) {
      const message = refused(await exchange({ vaultId: target, token }), status, code);
      expect(message, name).toMatch(says);
      expect(message, name).not.toContain(token);
    }
    for (const id of [vaultId, other.vaultId]) {
      expect(await audit(id, "vault.ci.exchange")).toEqual([]);
      expect(await audit(id, "vault.ci.pull")).toEqual([]);
    }
    // A refused token was not spent: the policy's own job still exchanges (a fresh one, as every job has).
    await accessToken(vaultId, await githubToken());
  });

  it("answers a caller without a valid token alike whether or not the copy has CI, so it cannot probe for it", async () => {
    const { vaultId } = await enabledCopy();
    const attacker = await startCiIssuer();
    try {
      const now = Math.floor(Date.now() / 1000);
      const [header, payload, signature] = (await githubToken()).split(".");
      const flipped = `${signature!.slice(0, -2)}${signature!.endsWith("AA") ? "BB" : "AA"}`;
      const probes: [string, string][] = [
        ["three parts, no JWT", "not.a.jwt"],
        ["a flipped signature", `${header!}.${payload!}.${flipped}`],
        ["an untrusted issuer's token naming itself", await mint(attacker, { environment: "production" })],
        [
          "an untrusted issuer's token naming GitHub's issuer",
          await mint(attacker, { environment: "production", iss: github.url }),
        ],
        ["an expired token", await githubToken({ iat: now - 600, nbf: now - 600, exp: now - 120 })],
      ];
      for (const [name, token] of probes) {
        const withCi = refused(await exchange({ vaultId, token }), 401, "LK_CI_TOKEN_INVALID");
        const withoutCi = refused(
          await exchange({ vaultId: randomUUID(), token }),
          401,
          "LK_CI_TOKEN_INVALID",
        );
        expect(withoutCi, name).toBe(withCi);
      }
    } finally {
      await attacker.close();
    }
    // A valid token of a trusted issuer still hears that the copy has no policy: the job's own debugging story.
    refused(await exchange({ vaultId: randomUUID(), token: await githubToken() }), 404, "LK_CI_NOT_ENABLED");
  });

  it("takes each OIDC token once: a replay is LK_CI_TOKEN_REPLAYED and gets no CI token", async () => {
    const { vaultId } = await enabledCopy();
    const token = await githubToken();
    await accessToken(vaultId, token);
    refused(await exchange({ vaultId, token }), 401, "LK_CI_TOKEN_REPLAYED");
    expect(await audit(vaultId, "vault.ci.exchange")).toHaveLength(1);
  });

  it("revokes issued CI tokens when the policy is disabled or replaced", async () => {
    const { vaultId, vaultKey } = await enabledCopy();
    const beforeReplace = await accessToken(vaultId, await githubToken());
    signedAnswer(await ciPull(beforeReplace, vaultId, "env=production"), beforeReplace, ciPullResponseSchema);
    await enable(alice, `/api/v1/vaults/${vaultId}/ci`, githubPolicy(), vaultKey);
    expect(
      refused(await ciPull(beforeReplace, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID"),
    ).toMatch(/revoked/);

    const beforeDisable = await accessToken(vaultId, await githubToken());
    signedAnswer(await ciPull(beforeDisable, vaultId, "env=production"), beforeDisable, ciPullResponseSchema);
    const disabled = await call(server.app, alice.token, "DELETE", `/api/v1/vaults/${vaultId}/ci`);
    expect(disabled.statusCode, disabled.body).toBe(200);
    refused(await ciPull(beforeDisable, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID");
    // Enabled again: a new policy, which the old token is not for either.
    await enable(alice, `/api/v1/vaults/${vaultId}/ci`, githubPolicy(), vaultKey);
    refused(await ciPull(beforeDisable, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID");
    expect(await audit(vaultId, "vault.ci.pull")).toHaveLength(2);
  });

  it("a CI token is taken by the CI pull of its own copy only, and the CI pull takes no other bearer", async () => {
    const { vaultId } = await enabledCopy();
    const other = await enabledCopy();
    const ciToken = await accessToken(vaultId, await githubToken());
    // The normal pull, the copy's policy, the log, the account: every other route refuses it as a bearer.
    for (const path of [
      `/api/v1/vaults/${vaultId}`,
      `/api/v1/vaults/${vaultId}/ci`,
      `/api/v1/vaults/${vaultId}/log`,
      `/api/v1/me`,
      `${CI_PATH}/config`,
    ]) {
      const res = await call(server.app, ciToken, "GET", path);
      expect(res.statusCode, path).toBe(401);
      expect(res.body).not.toContain(CANARY);
    }
    // Another copy's pull.
    refused(await ciPull(ciToken, other.vaultId, "env=production"), 403, "LK_CI_POLICY_DENIED");
    refused(await ciPull(ciToken, vaultId, "env=production&org=acme"), 403, "LK_CI_POLICY_DENIED");
    // A session's token of the copy's owner, none at all, or garbage.
    refused(await ciPull(alice.token, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID");
    refused(await ciPull(undefined, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID");
    refused(await ciPull(`${ciToken}x`, vaultId, "env=production"), 401, "LK_CI_ACCESS_TOKEN_INVALID");
    expect(await audit(vaultId, "vault.ci.pull")).toEqual([]);
    expect(await audit(other.vaultId, "vault.ci.pull")).toEqual([]);
    // A malformed query is a 400 before anything is looked at.
    for (const query of [
      "",
      "env=a%20b",
      "env=production&env=staging",
      "env=production&extra=1",
      "env=production&org=A",
    ]) {
      refused(await ciPull(ciToken, vaultId, query), 400, "LK_SERVER_ERROR");
    }
    // The token still works where it belongs.
    signedAnswer(await ciPull(ciToken, vaultId, "env=production"), ciToken, ciPullResponseSchema);
  });

  it("a policy without environments lets the token pull any environment; one the vault lacks is LK_ENV_NOT_FOUND", async () => {
    const { vaultId } = await enabledCopy(githubPolicy({ environments: [] }));
    const token = await accessToken(vaultId, await mint(github));
    const staging = signedAnswer(await ciPull(token, vaultId, "env=staging"), token, ciPullResponseSchema);
    expect(staging.values).toEqual({ API_KEY: STAGING_CANARY, LOG_LEVEL: "info", EMPTY: "filled" });
    refused(await ciPull(token, vaultId, "env=qa"), 404, "LK_ENV_NOT_FOUND");
    expect(await audit(vaultId, "vault.ci.pull")).toHaveLength(1);
  });

  it("a GitLab job pulls; a fork's merge request pipeline (project_id ≠ job_project_id) is refused", async () => {
    const { vaultId } = await enabledCopy(gitlabPolicy());
    const token = await mint(gitlab, {}, { shape: "gitlab" });
    const exchanged = signedAnswer(await exchange({ vaultId, token }), token, ciExchangeResponseSchema);
    secrets.push(exchanged.accessToken);
    expect(exchanged).toMatchObject({ name: "oidc:gitlab:acme/app:main", environments: [] });
    signedAnswer(
      await ciPull(exchanged.accessToken, vaultId, "env=production"),
      exchanged.accessToken,
      ciPullResponseSchema,
    );
    const fork = await mint(
      gitlab,
      {
        project_id: "99",
        project_path: "mallory/app",
        namespace_id: "98",
        pipeline_source: "merge_request_event",
      },
      { shape: "gitlab" },
    );
    expect(refused(await exchange({ vaultId, token: fork }), 403, "LK_CI_POLICY_DENIED")).toMatch(
      /rule "fork"/,
    );
    const [row] = await audit(vaultId, "vault.ci.pull");
    expect(row?.metadata).toMatchObject({
      provider: "gitlab",
      repository: "acme/app",
      ref: "main",
      runId: "1001/5001",
    });
  });

  describe("an organisation's copy", () => {
    let owner: Member;

    beforeAll(async () => {
      owner = await newMember(server, db());
    });

    it("is exchanged for with its slug and pulled with ?org=, its rows in the organisation's log", async () => {
      const slug = `ci-${randomUUID().slice(0, 8)}`;
      await makeOrg(server, owner, slug);
      const vaultId = randomUUID();
      const vaultKey = newVaultKey();
      const body = {
        ...(await shareBody(owner, slug, vaultId, 0, vaultKey, [owner])),
        encryptedBlob: toBase64(
          await sealEnvelope(vaultKey, utf8Encode(DOCUMENT), syncBlobContext(vaultId, 1, slug)),
        ),
      };
      const shared = await call(server.app, owner.token, "PUT", `/${slug}/vaults/${vaultId}/share`, body);
      expect(shared.statusCode, shared.body).toBe(200);
      await enable(owner, `${ORGS_PATH}/${slug}/vaults/${vaultId}/ci`, githubPolicy(), vaultKey);

      // Without the slug the exchange looks for a personal copy, which has no policy.
      refused(await exchange({ vaultId, token: await githubToken() }), 404, "LK_CI_NOT_ENABLED");
      const token = await accessToken(vaultId, await githubToken(), slug);
      const answer = signedAnswer(
        await ciPull(token, vaultId, `env=production&org=${slug}`),
        token,
        ciPullResponseSchema,
      );
      expect(answer).toMatchObject({ vaultId, org: slug, version: 1, values: { API_KEY: CANARY } });
      refused(await ciPull(token, vaultId, "env=production"), 403, "LK_CI_POLICY_DENIED");
      const [row] = await audit(vaultId, "vault.ci.pull");
      expect(row?.org_id).toEqual(expect.any(String));
    });
  });

  it("limits refused exchanges per client address: past the free ones, 429 with Retry-After, and others still pass", async () => {
    const { vaultId } = await enabledCopy();
    const address = freshAddress();
    let limited: LightMyRequestResponse | undefined;
    for (let i = 0; i < 40 && limited === undefined; i += 1) {
      const res = await exchange({ vaultId: randomUUID(), token: await githubToken() }, address);
      if (res.statusCode === 429) limited = res;
      else refused(res, 404, "LK_CI_NOT_ENABLED");
    }
    expect(limited, "no 429 after 40 refused exchanges").toBeDefined();
    refused(limited!, 429, "LK_RATE_LIMITED");
    expect(Number(limited!.headers["retry-after"])).toBeGreaterThan(0);
    // Even a good token waits at that address; from another one it passes.
    refused(await exchange({ vaultId, token: await githubToken() }, address), 429, "LK_RATE_LIMITED");
    await accessToken(vaultId, await githubToken());
  });

  it("needs a request id, and answers a malformed body with 400 before any token is looked at", async () => {
    const { vaultId } = await enabledCopy();
    const token = await githubToken();
    const noId = await server.app.inject({
      method: "POST",
      url: `${CI_PATH}/oidc`,
      payload: { vaultId, token },
    });
    expect(noId.statusCode).toBe(400);
    refused(await exchange({ vaultId, token, extra: 1 }), 400, "LK_SERVER_ERROR");
    refused(await exchange({ vaultId: "not-a-uuid", token }), 400, "LK_SERVER_ERROR");
    // The token was never spent.
    await accessToken(vaultId, token);
  });

  it("writes no value and no token to the server's log lines", () => {
    expect(logLines.some((line) => line.includes('"event":"ci.exchange"'))).toBe(true);
    expect(logLines.some((line) => line.includes('"event":"ci.pull"'))).toBe(true);
    expect(secrets.length).toBeGreaterThan(20);
    const log = logLines.join("\n");
    expect(log).not.toContain(CANARY);
    expect(log).not.toContain(STAGING_CANARY);
    for (const secret of secrets) {
      // The signature part is where a token's secrecy lies; no part of a token is a log line's business.
      expect(log).not.toContain(secret.split(".")[2]!);
    }
  });
});
