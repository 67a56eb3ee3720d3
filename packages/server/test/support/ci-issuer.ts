// A CI platform's OIDC issuer on loopback, for the CI suites (docs/ci.md): node:http on 127.0.0.1 and a free port,
// serving the discovery document and the JSON Web Key Set as GitHub Actions and GitLab do, with one RS256 and one
// ES256 key made by jose. It mints tokens with GitHub's or GitLab's real claim set (their docs' names and formats:
// ids are decimal strings, GitHub's ref is `refs/heads/…`, GitLab's is the bare branch name), rotates its keys
// and counts the requests it gets. The server trusts it only through its configuration (CI_OIDC_ISSUERS or
// buildApp's ciIssuers) as `github=URL` or `gitlab=URL`, the way an operator adds a self-managed GitLab.
//
// The e2e suites import it from here too (they already import packages/server/test/databases.ts); the CLI's own
// tests may not (the CLI and the server never import each other, e2e/import-direction.test.ts).
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

/** The platforms whose token shapes the issuer mints. */
export type CiTokenShape = "github" | "gitlab";

/** The audience minted tokens carry unless the claims say otherwise. */
export const TEST_CI_AUDIENCE = "https://latchkey.example.com";

/** Where the key set is served (GitHub's path; GitLab serves /oauth/discovery/keys, which changes nothing here). */
export const TEST_JWKS_PATH = "/.well-known/jwks";

/** How the issuer starts. */
export interface CiIssuerOptions {
  /** A path under host:port the issuer lives at (a self-managed GitLab under a path); default none. */
  path?: string;
  /** The clock of minted tokens (iat, nbf, exp); default the system clock. Share it with the verifier's. */
  now?: () => Date;
  /** The audience of minted tokens; default {@link TEST_CI_AUDIENCE}. */
  audience?: string;
  /**
   * Rewrites the discovery document at each request, for a hostile or broken issuer (a foreign jwks_uri, another
   * issuer); return it unchanged to serve the honest one.
   */
  discovery?: (document: Record<string, unknown>) => Record<string, unknown>;
}

/** How one token is minted. */
export interface MintOptions {
  /** Whose claim set the defaults follow; default "github". */
  shape?: CiTokenShape;
  /** The signing algorithm, with the issuer's current key for it; default RS256 (what both platforms use). */
  alg?: "RS256" | "ES256";
  /** Another kid in the header than the signing key's (an unknown one, say). */
  kid?: string;
  /** More header parameters (jwk, jku, x5u, crit…), merged over alg, kid and typ. */
  header?: Record<string, unknown>;
  /** Signs with this private key instead of the issuer's (an attacker's key); `alg` must fit it. */
  signWith?: CryptoKey;
}

/** The requests the issuer has answered. */
export interface CiIssuerRequests {
  discovery: number;
  jwks: number;
  /** Every request path, in order. */
  paths: string[];
}

/** A running issuer. */
export interface CiIssuer {
  /** The issuer URL: every token's `iss`, and what the server's configuration names. */
  readonly url: string;
  /**
   * A signed token: the shape's default claims (fresh jti, iat now, nbf a little before, exp 5 minutes after) with
   * `claims` over them; a claim set to undefined is left out.
   */
  mint(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /**
   * Makes new RS256 and ES256 keys (new kids) the ones tokens are signed with; the old ones stay published unless
   * `retire`. Returns the new kids.
   */
  rotateKey(options?: { retire?: boolean }): Promise<{ RS256: string; ES256: string }>;
  /** The current kid of an algorithm. */
  kid(alg?: "RS256" | "ES256"): string;
  readonly requests: CiIssuerRequests;
  close(): Promise<void>;
}

interface SigningKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(alg: "RS256" | "ES256"): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomBytes(16).toString("hex");
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** Starts an issuer on 127.0.0.1 and a free port. */
export async function startCiIssuer(options: CiIssuerOptions = {}): Promise<CiIssuer> {
  const now = options.now ?? (() => new Date());
  const path = options.path ?? "";
  let current = { RS256: await makeKey("RS256"), ES256: await makeKey("ES256") };
  let published: SigningKey[] = [current.RS256, current.ES256];
  const requests: CiIssuerRequests = { discovery: 0, jwks: 0, paths: [] };
  let url = "";

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const requestPath = (req.url ?? "").split("?", 1)[0] ?? "";
    requests.paths.push(requestPath);
    if (req.method === "GET" && requestPath === `${path}/.well-known/openid-configuration`) {
      requests.discovery += 1;
      const honest = discoveryDocument(url, `${url}${TEST_JWKS_PATH}`);
      answer(res, 200, options.discovery ? options.discovery(honest) : honest);
      return;
    }
    if (req.method === "GET" && requestPath === `${path}${TEST_JWKS_PATH}`) {
      requests.jwks += 1;
      answer(res, 200, { keys: published.map((key) => key.publicJwk) });
      return;
    }
    answer(res, 404, { message: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;

  return {
    url,
    requests,
    kid: (alg = "RS256") => current[alg].kid,
    async mint(claims = {}, mint = {}) {
      const alg = mint.alg ?? "RS256";
      const key = current[alg];
      const shape = mint.shape ?? "github";
      const iat = Math.floor(now().getTime() / 1000);
      const defaults =
        shape === "github"
          ? githubClaims(url, options.audience ?? TEST_CI_AUDIENCE, iat)
          : gitlabClaims(url, options.audience ?? TEST_CI_AUDIENCE, iat);
      const payload: Record<string, unknown> = { ...defaults, ...claims };
      for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
      const header = {
        alg,
        typ: "JWT",
        kid: mint.kid ?? key.kid,
        // GitHub's header also carries the certificate's thumbprint; nothing reads it.
        ...(shape === "github" ? { x5t: randomBytes(20).toString("base64url") } : {}),
        ...mint.header,
      };
      return new SignJWT(payload).setProtectedHeader(header).sign(mint.signWith ?? key.privateKey);
    },
    async rotateKey(rotate = {}) {
      const next = { RS256: await makeKey("RS256"), ES256: await makeKey("ES256") };
      published = rotate.retire ? [next.RS256, next.ES256] : [...published, next.RS256, next.ES256];
      current = next;
      return { RS256: next.RS256.kid, ES256: next.ES256.kid };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A discovery document as token.actions.githubusercontent.com serves it (fewer claims listed). */
function discoveryDocument(issuer: string, jwksUri: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: jwksUri,
    subject_types_supported: ["public", "pairwise"],
    response_types_supported: ["id_token"],
    claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_id"],
    id_token_signing_alg_values_supported: ["RS256"],
    scopes_supported: ["openid"],
  };
}

/**
 * GitHub Actions' claims for a push to main of octo-org/octo-repo (docs.github.com, "OpenID Connect reference"):
 * ids are decimal strings; no environment unless the job names one.
 */
export function githubClaims(issuer: string, audience: string, iat: number): Record<string, unknown> {
  const sha = randomBytes(20).toString("hex");
  return {
    jti: randomUUID(),
    sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
    aud: audience,
    ref: "refs/heads/main",
    sha,
    repository: "octo-org/octo-repo",
    repository_owner: "octo-org",
    repository_owner_id: "65",
    repository_id: "74",
    repository_visibility: "private",
    actor: "octocat",
    actor_id: "12",
    run_id: "1658821493",
    run_number: "10",
    run_attempt: "1",
    runner_environment: "github-hosted",
    workflow: "CI",
    workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    workflow_sha: sha,
    job_workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    job_workflow_sha: sha,
    head_ref: "",
    base_ref: "",
    event_name: "push",
    ref_type: "branch",
    ref_protected: "true",
    iss: issuer,
    nbf: iat - 5,
    exp: iat + 300,
    iat,
  };
}

/**
 * GitLab CI's ID token claims for a push to main of acme/app (docs.gitlab.com, "OpenID Connect (OIDC)
 * Authentication Using ID Tokens"): ids are decimal strings, `ref` is the bare branch name, and the job_project_*
 * claims name the project the job runs in (they differ from project_* in a fork's merge request pipeline).
 */
export function gitlabClaims(issuer: string, audience: string, iat: number): Record<string, unknown> {
  const sha = randomBytes(20).toString("hex");
  return {
    namespace_id: "72",
    namespace_path: "acme",
    project_id: "20",
    project_path: "acme/app",
    user_id: "1",
    user_login: "alice",
    user_email: "alice@example.com",
    user_access_level: "developer",
    pipeline_id: "1001",
    pipeline_source: "push",
    job_id: "5001",
    ref: "main",
    ref_type: "branch",
    ref_path: "refs/heads/main",
    ref_protected: "true",
    runner_id: 1,
    runner_environment: "gitlab-hosted",
    sha,
    project_visibility: "private",
    ci_config_ref_uri: "gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main",
    ci_config_sha: sha,
    job_project_id: "20",
    job_project_path: "acme/app",
    job_namespace_id: "72",
    job_namespace_path: "acme",
    jti: randomUUID(),
    iss: issuer,
    iat,
    nbf: iat - 5,
    exp: iat + 300,
    sub: "project_path:acme/app:ref_type:branch:ref:main",
    aud: audience,
  };
}
