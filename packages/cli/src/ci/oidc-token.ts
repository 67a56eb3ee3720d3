// The CI job's OIDC ID token, which `env pull --oidc` and `run --oidc` exchange at the server (docs/ci.md, "In the
// workflow"). GitHub Actions hands one out on request to a job with `permissions: id-token: write`, for the
// audience the request names, as @actions/core's getIDToken asks for it; GitLab CI puts one in each variable the
// job's `id_tokens:` block names, its audience fixed there. The token is a credential: it goes into the exchange's
// body and nowhere else — never argv, a trace (bodies shown by length only, Authorization redacted) or a message.
import {
  LatchkeyError,
  MAX_CI_ID_TOKEN_LENGTH,
  checkSchema,
  ciExchangeRequestSchema,
  githubIdTokenAnswerSchema,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { REQUEST_TIMEOUT_MS, request } from "../http/client.js";
import { assertSecureEndpoint } from "../oauth/config.js";

/** The variable the CLI reads a GitLab job's token from unless --token-env names another. */
export const OIDC_TOKEN_VARIABLE = "LATCHKEY_OIDC_TOKEN";

/** Where a token came from, for messages: never the token. */
export type IdTokenSource = "github" | { variable: string };

/** A CI job's OIDC ID token. */
export interface CiIdToken {
  readonly token: string;
  readonly source: IdTokenSource;
}

/** What {@link ciIdToken} needs. */
export interface IdTokenOptions {
  /** The audience to ask GitHub's runner for (GitLab's is fixed by the job's `id_tokens:` block). */
  readonly audience: string;
  /** The variable holding the token (`--token-env`): only that one is read. */
  readonly tokenEnv?: string;
  readonly verbose?: number;
}

/** Attempts at the runner's endpoint: it fails now and then, and @actions/core retries it too. */
const GITHUB_ATTEMPTS = 3;
const RETRIED_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

const GITHUB_HINT =
  "Add `permissions: id-token: write` to the job (with `contents: read`: a job that names one permission loses the others it does not name). `latchkey setup ci --oidc --provider github` prints the workflow.";

const gitlabHint = (variable: string, audience: string): string =>
  `Add to the job: \`id_tokens: { ${variable}: { aud: ${audience} } }\`${variable === OIDC_TOKEN_VARIABLE ? "" : ` (and pass --token-env ${variable})`}. \`latchkey setup ci --oidc --provider gitlab\` prints the job.`;

const set = (value: string | undefined): value is string => value !== undefined && value !== "";

function noIdToken(message: string, hint: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError("LK_CI_NO_ID_TOKEN", {
    message: `${message} Nothing was sent to the Latchkey server.`,
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The job's ID token: from the variable --token-env names, else from LATCHKEY_OIDC_TOKEN, else from GitHub Actions'
 * runner (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN) for `audience`. None of them:
 * LK_CI_NO_ID_TOKEN, with the hint of the platform the job runs on (GITHUB_ACTIONS, GITLAB_CI).
 */
export async function ciIdToken(ctx: Context, options: IdTokenOptions): Promise<CiIdToken> {
  if (options.tokenEnv !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.tokenEnv)) {
      throw new LatchkeyError("LK_USAGE", {
        message: `--token-env takes the name of an environment variable (letters, digits and _), not ${JSON.stringify(options.tokenEnv.slice(0, 40))}.`,
        hint: "Name the variable of the job's `id_tokens:` block, e.g. --token-env LATCHKEY_OIDC_TOKEN.",
      });
    }
    return fromVariable(ctx, options.tokenEnv, options.audience);
  }
  if (set(ctx.env.LATCHKEY_OIDC_TOKEN)) return fromVariable(ctx, OIDC_TOKEN_VARIABLE, options.audience);
  const url = ctx.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = ctx.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (set(url) && set(requestToken))
    return { token: await fromGithub(ctx, url, requestToken, options), source: "github" };
  if (ctx.env.GITHUB_ACTIONS === "true") {
    throw noIdToken(
      "This GitHub Actions job may not request an OIDC ID token: the runner sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN only for a job with `permissions: id-token: write`.",
      GITHUB_HINT,
    );
  }
  if (ctx.env.GITLAB_CI === "true") {
    throw noIdToken(
      `This GitLab CI job has no OIDC ID token in ${OIDC_TOKEN_VARIABLE}: GitLab sets one only for a variable the job's \`id_tokens:\` block names.`,
      gitlabHint(OIDC_TOKEN_VARIABLE, options.audience),
    );
  }
  throw noIdToken(
    `No OIDC ID token: ${OIDC_TOKEN_VARIABLE} is not set, and this is not a GitHub Actions job that may request one (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set). --oidc is for CI jobs.`,
    `GitHub Actions: ${GITHUB_HINT} GitLab CI: ${gitlabHint(OIDC_TOKEN_VARIABLE, options.audience)}`,
  );
}

/** The token in `variable`, once it has a JWT's shape (the exchange's own rule). */
function fromVariable(ctx: Context, variable: string, audience: string): CiIdToken {
  const value = ctx.env[variable];
  if (!set(value)) {
    throw noIdToken(
      `${variable} is not set: GitLab sets it only when the job's \`id_tokens:\` block names it.`,
      gitlabHint(variable, audience),
    );
  }
  const token = value.trim();
  if (!checkSchema(ciExchangeRequestSchema.shape.token, token).ok) {
    throw noIdToken(
      `${variable} does not hold an OIDC ID token (a JWT: three base64url parts joined by dots, at most ${MAX_CI_ID_TOKEN_LENGTH} characters).`,
      gitlabHint(variable, audience),
    );
  }
  return { token, source: { variable } };
}

/**
 * GET ACTIONS_ID_TOKEN_REQUEST_URL with `audience` set in its query (which already holds `api-version`) and the
 * request token as bearer; the answer is `{"value": TOKEN}`. 5xx answers and failures to connect are tried again,
 * up to {@link GITHUB_ATTEMPTS} times.
 */
async function fromGithub(
  ctx: Context,
  requestUrl: string,
  requestToken: string,
  options: IdTokenOptions,
): Promise<string> {
  const url = assertSecureEndpoint(requestUrl, "ACTIONS_ID_TOKEN_REQUEST_URL");
  url.searchParams.set("audience", options.audience);
  const where = `GitHub Actions' ID token endpoint (${url.origin})`;
  let response: Response | undefined;
  let failure: LatchkeyError | undefined;
  for (let attempt = 1; attempt <= GITHUB_ATTEMPTS; attempt++) {
    if (attempt > 1) await ctx.clock.sleep(1000 * 2 ** (attempt - 2));
    failure = undefined;
    try {
      response = await request(ctx, {
        url,
        headers: { accept: "application/json; api-version=2.0" },
        bearer: { token: requestToken },
        verbose: options.verbose ?? 0,
        timeoutMs: REQUEST_TIMEOUT_MS,
        secretBodies: true,
        unreachable: (cause) => noIdToken(`${where} could not be reached.`, GITHUB_HINT, cause),
      });
    } catch (error) {
      if (!(error instanceof LatchkeyError)) throw error;
      failure = error;
      continue;
    }
    if (!RETRIED_STATUSES.has(response.status)) break;
    await response.arrayBuffer().catch(() => undefined);
  }
  if (failure !== undefined) throw failure;
  const answered = response!;
  if (answered.status !== 200) {
    await answered.arrayBuffer().catch(() => undefined);
    throw noIdToken(
      `${where} answered ${answered.status} to the request for the job's ID token.`,
      answered.status === 401 || answered.status === 403
        ? `The job's permission to request an ID token was refused. ${GITHUB_HINT}`
        : "Re-run the job; if it fails again, see https://www.githubstatus.com.",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await answered.text());
  } catch (error) {
    throw noIdToken(`${where} answered with something that is not JSON.`, "Re-run the job.", error);
  }
  const checked = checkSchema(githubIdTokenAnswerSchema, json);
  const token = checked.ok ? checked.value.value : "";
  if (!checkSchema(ciExchangeRequestSchema.shape.token, token).ok) {
    throw noIdToken(`${where} answered without an ID token (a JWT in "value").`, "Re-run the job.");
  }
  return token;
}
