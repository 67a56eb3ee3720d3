// The CI job's side of CI pulls (docs/ci.md, "In the workflow"): `env pull --oidc` and `run --oidc` exchange the
// job's OIDC ID token (oidc-token.ts) for a CI access token, then pull one environment with it. A CI runner has no
// keychain and nobody signed in: nothing here reads the keystore, a session or config.toml, and nothing is written
// under the Latchkey home. The server comes from --server or LATCHKEY_SERVER, the vault from latchkey.json or
// LATCHKEY_VAULT_ID. Both answers are signed like every /api/v1 answer (the exchange's keyed by the ID token, the
// pull's by the CI access token) and checked before they are read; neither token is ever printed.
import {
  API_PREFIX,
  CI_PATH,
  LatchkeyError,
  checkSchema,
  ciExchangeResponseSchema,
  ciPolicySchema,
  ciPullResponseSchema,
  isLatchkeyError,
  type CiExchangeRequest,
  type ErrorCode,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { findProject, type Project } from "../project/project.js";
import { callApiWith } from "../server/api.js";
import { canonicalServerUrl } from "../server/session.js";
import { chosenOrg, orgFlag, syncVaultId, type CopyChoice } from "../sync/project.js";
import { validateEnvName } from "../vault/names.js";
import { copyName } from "./escrow.js";
import { ciIdToken } from "./oidc-token.js";

/** What `env pull --oidc` and `run --oidc` were given. */
export interface OidcPullOptions extends CopyChoice {
  /** --server; else LATCHKEY_SERVER. */
  server?: string;
  /** --env; else the one environment the job's token is bound to. */
  environment?: string;
  /** --audience: what to ask GitHub's runner for; else LATCHKEY_OIDC_AUDIENCE, else the server's URL. */
  audience?: string;
  /** --token-env: the variable holding the job's token (GitLab's `id_tokens:` name). */
  tokenEnv?: string;
  verbose?: number;
}

/** One environment released to this job. */
export interface OidcPull {
  server: string;
  vaultId: string;
  org: string | null;
  environment: string;
  version: number;
  values: Record<string, string>;
  /** Names whose value is the envSchema's default. */
  defaulted: string[];
  /** What the audit log calls this job: `oidc:{provider}:{repository}:{ref}`. */
  name: string;
  /** The project found (for its envSchema); not part of any output. */
  project: Project | null;
}

/** `CI_PATH` as the API client takes paths: under the API prefix. */
const CI_API_PATH = CI_PATH.slice(API_PREFIX.length);

const usage = (message: string, hint: string): LatchkeyError =>
  new LatchkeyError("LK_USAGE", { message, hint });

/** The server of a CI pull: --server, else LATCHKEY_SERVER; a profile's is not looked at (a runner has none). */
function ciServer(ctx: Context, flag: string | undefined): string {
  const named = flag ?? ctx.env.LATCHKEY_SERVER;
  if (named === undefined || named === "") {
    throw usage(
      "--oidc needs the Latchkey server's URL: pass --server URL or set LATCHKEY_SERVER.",
      "Set LATCHKEY_SERVER in the workflow's `env:` (the URL is not a secret). `latchkey setup ci --oidc` prints the workflow.",
    );
  }
  return canonicalServerUrl(named);
}

/** The audience the job's token is asked for: --audience, else LATCHKEY_OIDC_AUDIENCE, else the server's URL. */
function ciAudience(ctx: Context, flag: string | undefined, server: string): string {
  const fromEnv = ctx.env.LATCHKEY_OIDC_AUDIENCE;
  const audience = flag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : server);
  const checked = checkSchema(ciPolicySchema.shape.audience, audience);
  if (!checked.ok) {
    throw usage(
      `The audience is not valid (${flag === undefined ? "LATCHKEY_OIDC_AUDIENCE" : "--audience"}): ${checked.message}`,
      "Give the audience the vault's CI policy names (`latchkey env ci show`); by default it is the server's URL.",
    );
  }
  return checked.value;
}

/**
 * Exchanges the job's ID token for a CI access token (`POST /api/v1/ci/oidc`), then pulls one environment with it
 * (`GET /api/v1/vaults/:id/ci-pull?env=E[&org=S]`). The environment is `options.environment`, else the one the
 * token is bound to (a policy that names environments binds it to the job's), else LK_USAGE. The server's refusals
 * keep its words (which rule of the policy, which check of the token) and get this command's hints.
 */
export async function pullWithOidc(ctx: Context, options: OidcPullOptions): Promise<OidcPull> {
  const server = ciServer(ctx, options.server);
  const project = await findProject(ctx.cwd);
  const vaultId = syncVaultId(ctx, project);
  const org = chosenOrg(project, options);
  const requested = options.environment === undefined ? undefined : validateEnvName(options.environment);
  const audience = ciAudience(ctx, options.audience, server);
  const verbose = options.verbose ?? 0;
  const what = copyName(vaultId, org);

  const idToken = await ciIdToken(ctx, {
    audience,
    verbose,
    ...(options.tokenEnv === undefined ? {} : { tokenEnv: options.tokenEnv }),
  });
  const body: CiExchangeRequest = {
    vaultId,
    token: idToken.token,
    ...(org === undefined ? {} : { org }),
  };
  let exchanged;
  try {
    exchanged = await callApiWith(
      ctx,
      {
        method: "POST",
        path: `${CI_API_PATH}/oidc`,
        body,
        answer: ciExchangeResponseSchema,
        secretBodies: true,
      },
      { server, signedWith: idToken.token },
      { verbose },
    );
  } catch (error) {
    throw refused(error, what, org, server);
  }
  const { accessToken, environments, name } = exchanged.data;

  const environment = requested ?? (environments.length === 1 ? environments[0]! : undefined);
  if (environment === undefined) {
    throw usage(
      environments.length === 0
        ? `Name the environment to pull with --env: the CI policy of ${what} lets this job pull any of the vault's environments.`
        : `Name the environment to pull with --env: this job may pull ${environments.join(", ")}.`,
      "e.g. `latchkey run --oidc --env production -- npm test`.",
    );
  }
  const query = `env=${encodeURIComponent(environment)}${org === undefined ? "" : `&org=${encodeURIComponent(org)}`}`;
  let pulled;
  try {
    pulled = await callApiWith(
      ctx,
      {
        method: "GET",
        path: `/vaults/${encodeURIComponent(vaultId)}/ci-pull?${query}`,
        answer: ciPullResponseSchema,
        secretBodies: true,
      },
      { server, bearer: accessToken, signedWith: accessToken },
      { verbose },
    );
  } catch (error) {
    throw refused(error, what, org, server, environment);
  }
  const data = pulled.data;
  if (
    data.vaultId.toLowerCase() !== vaultId.toLowerCase() ||
    data.org !== (org ?? null) ||
    data.environment !== environment
  ) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `${server} answered the CI pull of ${environment} of ${what} with another copy or environment; nothing was used.`,
      details: { server },
    });
  }
  return {
    server,
    vaultId,
    org: org ?? null,
    environment,
    version: data.version,
    values: data.values,
    defaulted: data.defaulted,
    name,
    project,
  };
}

/** The refusals of the exchange and the pull, in this command's words; the server's own words stay in them. */
function refused(
  error: unknown,
  what: string,
  org: string | undefined,
  server: string,
  environment?: string,
): unknown {
  if (!isLatchkeyError(error)) return error;
  const again = (code: ErrorCode, message: string, hint: string) =>
    new LatchkeyError(code, {
      message,
      hint,
      cause: error,
      details: { server, ...(error.details ?? {}) },
    });
  switch (error.code) {
    case "LK_CI_NOT_ENABLED":
      return again(
        "LK_CI_NOT_ENABLED",
        `CI pulls are not enabled for ${what} on ${server}: no CI job can pull it.`,
        `On a machine that holds the vault, run \`latchkey env ci enable${orgFlag(org)} --provider github|gitlab --repo …\` (docs/ci.md).`,
      );
    case "LK_CI_POLICY_DENIED":
      return again(
        "LK_CI_POLICY_DENIED",
        `The CI policy of ${what} does not admit this job.${wordsOf(error)}`,
        `Compare the job (repository, branch, environment, event) with the policy: \`latchkey env ci show${orgFlag(org)}\`. A maintainer changes it with \`latchkey env ci enable\`.`,
      );
    case "LK_CI_TOKEN_INVALID":
      return again(
        "LK_CI_TOKEN_INVALID",
        `The server refused this job's OIDC ID token.${wordsOf(error)}`,
        "The token's audience must be the one the policy names (`latchkey env ci show`; --audience or LATCHKEY_OIDC_AUDIENCE on GitHub, `aud:` of the `id_tokens:` block on GitLab), and its issuer one the server trusts (CI_OIDC_ISSUERS).",
      );
    case "LK_VAULT_NOT_SYNCED":
      return again(
        "LK_VAULT_NOT_SYNCED",
        `${server} holds no copy of ${what}.`,
        `Push it from a machine that holds it: \`latchkey env push${orgFlag(org)}\`.`,
      );
    case "LK_ENV_NOT_FOUND":
      return again(
        "LK_ENV_NOT_FOUND",
        `${what} has no environment named ${environment ?? "(none)"} on ${server}.`,
        "Environment names are case-sensitive; `latchkey env envs` on a machine that holds the vault lists them.",
      );
    case "LK_CI_ESCROW_STALE":
      return again(
        "LK_CI_ESCROW_STALE",
        `The server's escrowed key of ${what} does not open its current version, so it cannot release it.`,
        `A maintainer runs \`latchkey env ci enable${orgFlag(org)}\` again (after \`latchkey env pull${orgFlag(org)}\`).`,
      );
    default:
      return error;
  }
}

/** The server's words of a refusal (api.ts keeps them for the codes whose reason only the server knows). */
function wordsOf(error: LatchkeyError): string {
  const words = error.details?.serverMessage;
  return typeof words === "string" ? ` The server says: "${words}"` : "";
}
