/**
 * CI pulls through OIDC (docs/ci.md): a vault row's CI policy, the escrow of its vault key for the server, the
 * exchange of a CI platform's OIDC ID token for a short CI access token, and the pull of one environment with it.
 * The bodies follow sync-api.ts's rules: strict objects, messages that name the field and its rule and never quote
 * a value sent.
 */
import * as z from "zod/mini";
import { isUuid } from "../uuid.js";
import { CONFIG_NAME } from "./rules.js";
import { orgSlugSchema } from "./org-api.js";
import { sharingKeyFingerprintSchema, sharingPublicKeySchema } from "./sharing-key-api.js";
import { body, ciEscrowSchema, nested, text } from "./sync-api.js";

export { ciEscrowSchema, type CiEscrow } from "./sync-api.js";

/** Where the CI routes that belong to no vault live, under the API prefix. */
export const CI_PATH = "/api/v1/ci";

/** The CI platforms whose OIDC ID tokens the server can verify. */
export const CI_PROVIDERS = ["github", "gitlab"] as const;
/** One of {@link CI_PROVIDERS}. */
export type CiProvider = (typeof CI_PROVIDERS)[number];

/** Longest life of a CI access token, in seconds: it is meant for one job's pull, not for a job's whole run. */
export const CI_ACCESS_TOKEN_TTL_SECONDS = 10 * 60;
/** Most branch globs, and most environments, one policy may name. */
export const MAX_CI_POLICY_ENTRIES = 20;
/** Longest OIDC ID token the exchange takes, in characters (checked before any parsing). */
export const MAX_CI_ID_TOKEN_LENGTH = 16 * 1024;

// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f]/;

const provider = z.enum(CI_PROVIDERS, `"provider" must be one of ${CI_PROVIDERS.join(", ")}.`);

/** A numeric id as the platforms give it (GitHub `repository_id`, GitLab `project_id`): decimal digits, as a string. */
const numericId = (name: string) =>
  z
    .string(`"${name}" must be a positive whole number written in decimal digits, as a string.`)
    .check(z.regex(/^[1-9][0-9]{0,19}$/));

/**
 * GitHub `OWNER/REPO`, or a GitLab project path `group/sub/project`: path segments of letters, digits, `.`, `_`
 * and `-`, compared case-sensitively with the token's claim.
 */
const repository = z
  .string(`"repository" must be OWNER/REPO (GitLab: the project's full path), at most 255 characters.`)
  .check(z.maxLength(255), z.regex(/^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+$/));

/**
 * A branch glob, matched against the token's `ref` with `refs/heads/` taken off: `*` matches within one path
 * segment, `**` across segments, everything else literally and case-sensitively (`main`, `release/*`).
 */
const branchGlob = z
  .string(`Each of "branches" must be 1 to 255 characters without spaces or control characters.`)
  .check(
    z.minLength(1),
    z.maxLength(255),
    z.refine((glob) => !CONTROL_OR_SPACE.test(glob)),
  );

const environmentName = z
  .string(`Each of "environments" must be an environment name (letters, digits, ".", "_", "-").`)
  .check(z.regex(CONFIG_NAME));

const distinct = <T>(name: string) =>
  z.refine<T[]>((items) => new Set(items).size === items.length, `"${name}" must not repeat an entry.`);

const audience = z
  .string(`"audience" must be 1 to 255 characters without spaces or control characters.`)
  .check(
    z.minLength(1),
    z.maxLength(255),
    z.refine((value) => !CONTROL_OR_SPACE.test(value)),
  );

/**
 * What a policy allows, as the CLI sends it and the server answers it. Every claim is compared exactly (case
 * included); `sub` is never parsed.
 */
export const ciPolicySchema = nested('"policy"', {
  provider,
  /** The issuer the token's `iss` must equal exactly: one of the server's trusted issuers of that provider. */
  issuer: z.string(`"issuer" must be a URL.`).check(z.maxLength(2048)),
  /** GitHub `OWNER/REPO` (claim `repository`) or GitLab project path (claim `project_path`). */
  repository,
  /** GitHub `repository_id` or GitLab `project_id`, pinned when the policy is made. */
  repositoryId: numericId("repositoryId"),
  /** GitHub `repository_owner_id` or GitLab `namespace_id`, pinned likewise. */
  ownerId: numericId("ownerId"),
  /** Globs on the branch of `ref` (`refs/heads/NAME`); a tag or other ref never matches. At least one. */
  branches: z
    .array(branchGlob, `"branches" must be an array.`)
    .check(
      z.minLength(1, `"branches" must hold 1 to ${MAX_CI_POLICY_ENTRIES} globs.`),
      z.maxLength(MAX_CI_POLICY_ENTRIES, `"branches" must hold 1 to ${MAX_CI_POLICY_ENTRIES} globs.`),
      distinct("branches"),
    ),
  /**
   * The vault environments a job may pull. Empty: any of the vault's environments, and the token's `environment`
   * claim is not looked at. Otherwise the requested environment must be listed AND equal the token's
   * `environment` claim (a GitHub deployment environment, a GitLab job environment), so the platform's own
   * protection of that environment (reviewers, protected branches) guards the pull.
   */
  environments: z
    .array(environmentName, `"environments" must be an array.`)
    .check(
      z.maxLength(MAX_CI_POLICY_ENTRIES, `"environments" must hold at most ${MAX_CI_POLICY_ENTRIES} names.`),
      distinct("environments"),
    ),
  /**
   * False refuses tokens of runs a fork can trigger: GitHub events `pull_request`, `pull_request_target` and
   * `workflow_run`; on GitLab it requires `project_id` to equal `job_project_id` (docs/ci.md).
   */
  allowForks: z.boolean(`"allowForks" must be a boolean.`),
  /** True requires the token's `ref_protected` to be "true" (GitLab); refused for GitHub, which has no such claim. */
  protectedRefsOnly: z.boolean(`"protectedRefsOnly" must be a boolean.`),
  /** The audience the token's `aud` must contain exactly; by default the server's public URL. */
  audience,
});
/** A CI policy. */
export type CiPolicy = z.infer<typeof ciPolicySchema>;

/** 200 answer of `GET /api/v1/ci/config`: what `env ci enable` needs from the server. */
export const ciConfigResponseSchema = body({
  /** The server's X25519 escrow public key, to wrap a vault key for (standard base64 of 32 bytes). */
  escrowPublicKey: sharingPublicKeySchema("escrowPublicKey"),
  escrowKeyFingerprint: sharingKeyFingerprintSchema("escrowKeyFingerprint"),
  /** The issuers the server trusts, in its configured order. */
  issuers: z.array(
    nested('Each of "issuers"', { provider, issuer: text("issuer") }),
    `"issuers" must be an array.`,
  ),
  /** The audience a policy gets when the CLI names none: the server's public URL. */
  defaultAudience: audience,
});
/** The server's CI configuration. */
export type CiConfigResponse = z.infer<typeof ciConfigResponseSchema>;

/**
 * `PUT /api/v1/vaults/:vaultId/ci` (the caller's personal copy) or `PUT /api/v1/orgs/:slug/vaults/:vaultId/ci`
 * (maintainer and above), with a step-up proof for `vault:ci:enable`: makes or replaces the copy's policy and its
 * escrow. The server refuses an escrowed key that does not open the copy's current version (400
 * LK_CI_ESCROW_INVALID), so an escrow is never stale when it is made.
 */
export const ciEnableRequestSchema = body({
  policy: ciPolicySchema,
  escrow: ciEscrowSchema,
});
/** `PUT …/ci`. */
export type CiEnableRequest = z.infer<typeof ciEnableRequestSchema>;

/** 200 answer of `GET …/ci` and `PUT …/ci`: the copy's policy. 404 LK_CI_NOT_ENABLED when it has none. */
export const ciPolicyResponseSchema = body({
  vaultId: z.string(`"vaultId" must be a UUID.`).check(z.refine(isUuid)),
  /** The organisation's slug for an organisation copy; null for a personal one. */
  org: z.nullable(orgSlugSchema),
  policy: ciPolicySchema,
  /** The version of the copy the escrow was last checked against (made, or re-escrowed by a push). */
  escrowVersion: z.int(`"escrowVersion" must be an integer.`).check(z.gte(1)),
  escrowKeyFingerprint: sharingKeyFingerprintSchema("escrowKeyFingerprint"),
  enabledAt: text("enabledAt"),
  /** Who made or last replaced the policy; null when the account no longer exists. */
  enabledBy: z.nullable(text("enabledBy")),
});
/** A copy's CI policy. */
export type CiPolicyResponse = z.infer<typeof ciPolicyResponseSchema>;

/** 200 answer of `DELETE …/ci`: the policy and the escrow are gone. */
export const ciDisableResponseSchema = body({
  disabled: z.literal(true, `"disabled" must be true.`),
});
/** `DELETE …/ci`. */
export type CiDisableResponse = z.infer<typeof ciDisableResponseSchema>;

/**
 * `POST /api/v1/ci/oidc`, unauthenticated (the token is the proof): exchanges a CI platform's OIDC ID token for a
 * CI access token bound to one copy's policy. The token's `jti` is spent: a second exchange with it is refused.
 */
export const ciExchangeRequestSchema = body({
  vaultId: z.string(`"vaultId" must be a UUID.`).check(z.refine(isUuid)),
  /** The organisation whose copy to pull; absent for a personal copy (the policy's owner is then found by vault). */
  org: z.optional(orgSlugSchema),
  token: z
    .string(`"token" must be a JWT of at most ${MAX_CI_ID_TOKEN_LENGTH} characters.`)
    .check(
      z.maxLength(MAX_CI_ID_TOKEN_LENGTH, { abort: true }),
      z.regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/),
    ),
});
/** `POST /api/v1/ci/oidc`. */
export type CiExchangeRequest = z.infer<typeof ciExchangeRequestSchema>;

/** 200 answer of `POST /api/v1/ci/oidc`. */
export const ciExchangeResponseSchema = body({
  /** A bearer token for `GET /api/v1/vaults/:vaultId/ci-pull` of this copy only. Secret. */
  accessToken: z.string(`"accessToken" must be a string.`).check(z.minLength(16), z.maxLength(4096)),
  tokenType: z.literal("Bearer", `"tokenType" must be "Bearer".`),
  expiresAt: text("expiresAt"),
  /** What the audit log calls it: `oidc:{provider}:{repository}:{ref}`. */
  name: text("name"),
  /** The environments it may pull; empty when the policy allows any of the vault's environments. */
  environments: z.array(environmentName, `"environments" must be an array.`),
});
/** A CI access token. */
export type CiExchangeResponse = z.infer<typeof ciExchangeResponseSchema>;

/**
 * 200 answer of `GET /api/v1/vaults/:vaultId/ci-pull?env=E` (CI access token; signed like every answer): one
 * environment's values in plaintext, the envSchema's defaults filled in for keys the vault does not hold.
 */
export const ciPullResponseSchema = body({
  vaultId: z.string(`"vaultId" must be a UUID.`).check(z.refine(isUuid)),
  org: z.nullable(orgSlugSchema),
  version: z.int(`"version" must be an integer.`).check(z.gte(1)),
  environment: environmentName,
  values: z.record(z.string(), z.string(), `"values" must be an object of strings.`),
  /** Names whose value is the envSchema's default (the vault holds none). */
  defaulted: z.array(z.string(), `"defaulted" must be an array.`),
});
/** One environment released to a CI job. */
export type CiPullResponse = z.infer<typeof ciPullResponseSchema>;
