/**
 * Platform pushes (docs/platforms.md): the non-secret configuration of a connection to each platform a vault can
 * be pushed to, and the members of each platform's answers that the CLI's adapters read. The platform credential
 * is never part of a configuration: it travels sealed, and reaches an adapter separately.
 */
import * as z from "zod/mini";

/** The platforms a vault can be pushed to, as `latchkey env platforms connect PLATFORM` names them. */
export const PLATFORMS = [
  "vercel",
  "fly",
  "railway",
  "coolify",
  "github-actions",
  "aws-ssm",
  "aws-sm",
  "generic",
] as const;
/** One platform's name. */
export type PlatformName = (typeof PLATFORMS)[number];

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * True for an https URL, or an http URL on a loopback host (a local double, or a self-hosted platform behind a
 * local proxy). The credential rides on every request, so plain http to anywhere else is refused.
 */
export function isPlatformUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.username !== "" || url.password !== "" || url.hash !== "") return false;
  return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname));
}

const platformUrl = z.string().check(
  z.refine(isPlatformUrl, {
    error: "expected an https URL (http only on a loopback host), without credentials or fragment",
  }),
);

const name = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .check(
      z.minLength(1, { error: `expected ${what}` }),
      z.maxLength(200, { error: `${what} is too long` }),
      z.regex(/^[A-Za-z0-9._-]+$/, { error: `${what} may hold only letters, digits, ".", "_" and "-"` }),
    );

/** Vercel's deployment targets a variable applies to. */
export const VERCEL_TARGETS = ["production", "preview", "development"] as const;

/**
 * A Vercel project: `projectId` (id or name), the team it belongs to (absent for a personal account), the targets
 * each variable is written for, and `type`: `encrypted` values can be read back by `pull`, `sensitive` ones never.
 */
export const vercelConfigSchema = z.strictObject({
  platform: z.literal("vercel"),
  projectId: name("a project id or name"),
  teamId: z.optional(name("a team id")),
  target: z
    .array(z.enum(VERCEL_TARGETS, { error: `expected one of ${VERCEL_TARGETS.join(", ")}` }))
    .check(z.minLength(1, { error: "expected at least one target" })),
  type: z.enum(["encrypted", "sensitive"], { error: 'expected "encrypted" or "sensitive"' }),
  baseUrl: z.optional(platformUrl),
});
/** A Vercel connection's configuration. */
export type VercelConfig = z.infer<typeof vercelConfigSchema>;

/** A Fly.io app, written through the Machines API. */
export const flyConfigSchema = z.strictObject({
  platform: z.literal("fly"),
  app: name("an app name"),
  baseUrl: z.optional(platformUrl),
});
/** A Fly.io connection's configuration. */
export type FlyConfig = z.infer<typeof flyConfigSchema>;

/** How a Railway token is sent: account and team tokens as a bearer token, a project token in its own header. */
export const RAILWAY_TOKEN_TYPES = ["account", "team", "project"] as const;

/**
 * A Railway environment's variables, through the public GraphQL API: shared by the environment's services, or one
 * service's (`serviceId`).
 */
export const railwayConfigSchema = z.strictObject({
  platform: z.literal("railway"),
  projectId: name("a project id"),
  environmentId: name("an environment id"),
  serviceId: z.optional(name("a service id")),
  tokenType: z.enum(RAILWAY_TOKEN_TYPES, { error: `expected one of ${RAILWAY_TOKEN_TYPES.join(", ")}` }),
  baseUrl: z.optional(platformUrl),
});
/** A Railway connection's configuration. */
export type RailwayConfig = z.infer<typeof railwayConfigSchema>;

/** A Coolify application's environment variables; `baseUrl` is the instance (self-hosted, or Coolify Cloud). */
export const coolifyConfigSchema = z.strictObject({
  platform: z.literal("coolify"),
  applicationUuid: name("an application uuid"),
  baseUrl: z.optional(platformUrl),
});
/** A Coolify connection's configuration. */
export type CoolifyConfig = z.infer<typeof coolifyConfigSchema>;

const awsRegion = z
  .string({ error: "expected an AWS region" })
  .check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, { error: "expected an AWS region such as eu-west-1" }));
const awsKmsKey = z
  .string()
  .check(
    z.minLength(1, { error: "expected a KMS key id, alias or ARN" }),
    z.maxLength(2048, { error: "the KMS key is too long" }),
    z.regex(/^[A-Za-z0-9:/_-]+$/, { error: "expected a KMS key id, alias or ARN" }),
  );

/**
 * AWS Systems Manager Parameter Store: one `SecureString` parameter per variable, named `path` + the variable's
 * name. `path` starts and ends with "/" and has at least one level (e.g. `/acme/web/production/`): the connection
 * owns every parameter directly under it, and a prune deletes those the vault lacks, so `/` alone would own every
 * top-level parameter of the account and region. AWS refuses parameter names that begin with "aws" or "ssm" in any
 * case, and hierarchies deeper than fifteen levels (the path's levels and the variable's name).
 */
export const awsSsmConfigSchema = z.strictObject({
  platform: z.literal("aws-ssm"),
  region: awsRegion,
  path: z.string({ error: "expected a parameter path" }).check(
    z.maxLength(900, { error: "the parameter path is too long" }),
    z.regex(/^\/([A-Za-z0-9_.-]+\/)+$/, {
      error:
        'expected a parameter path of at least one level that starts and ends with "/", such as /acme/web/production/ ("/" alone would own every top-level parameter)',
    }),
    z.refine((path) => !/^\/(aws|ssm)/i.test(path), {
      error: 'a parameter path cannot begin with "aws" or "ssm" (in any case): AWS reserves those names',
    }),
    z.refine((path) => path.split("/").length - 2 <= 14, {
      error: "a parameter path has at most 14 levels: AWS allows 15 with the variable's name",
    }),
  ),
  kmsKeyId: z.optional(awsKmsKey),
  baseUrl: z.optional(platformUrl),
});
/** An AWS SSM connection's configuration. */
export type AwsSsmConfig = z.infer<typeof awsSsmConfigSchema>;

/** AWS Secrets Manager: the environment as one secret whose value is a JSON object of every variable. */
export const awsSmConfigSchema = z.strictObject({
  platform: z.literal("aws-sm"),
  region: awsRegion,
  secretId: z.string({ error: "expected a secret name" }).check(
    z.minLength(1, { error: "expected a secret name" }),
    z.maxLength(512, { error: "the secret name is too long" }),
    z.regex(/^[A-Za-z0-9/_+=.@-]+$/, {
      error: "a secret name may hold only letters, digits and /_+=.@-",
    }),
  ),
  kmsKeyId: z.optional(awsKmsKey),
  baseUrl: z.optional(platformUrl),
});
/** An AWS Secrets Manager connection's configuration. */
export type AwsSmConfig = z.infer<typeof awsSmConfigSchema>;

/** A GitHub repository's Actions secrets, or those of one of its deployment environments. */
export const githubActionsConfigSchema = z.strictObject({
  platform: z.literal("github-actions"),
  owner: name("a repository owner"),
  repo: name("a repository name"),
  environment: z.optional(name("an environment name")),
  baseUrl: z.optional(platformUrl),
});
/** A GitHub Actions connection's configuration. */
export type GithubActionsConfig = z.infer<typeof githubActionsConfigSchema>;

/** Any HTTPS receiver that verifies Latchkey's signature (docs/platforms.md, "The generic receiver"). */
export const genericConfigSchema = z.strictObject({
  platform: z.literal("generic"),
  url: platformUrl,
});
/** A generic receiver's configuration. */
export type GenericConfig = z.infer<typeof genericConfigSchema>;

/** A connection's configuration, whichever the platform. */
export const platformConfigSchema = z.discriminatedUnion("platform", [
  vercelConfigSchema,
  flyConfigSchema,
  railwayConfigSchema,
  coolifyConfigSchema,
  githubActionsConfigSchema,
  awsSsmConfigSchema,
  awsSmConfigSchema,
  genericConfigSchema,
]);
/** A connection's configuration. */
export type PlatformConfig = z.infer<typeof platformConfigSchema>;

// ---- what the platforms answer (only the members the adapters read) ----

/** Vercel `GET /v10/projects/{idOrName}/env`: the project's variables, values encrypted or absent. */
export const vercelEnvListAnswerSchema = z.looseObject({
  envs: z.array(
    z.looseObject({
      id: z.string().check(z.minLength(1)),
      key: z.string().check(z.minLength(1)),
      type: z.string(),
      target: z.optional(z.union([z.array(z.string()), z.string()])),
    }),
  ),
});

/** Vercel `GET /v1/projects/{idOrName}/env/{id}`: one variable, decrypted when its type allows. */
export const vercelEnvAnswerSchema = z.looseObject({
  key: z.string().check(z.minLength(1)),
  type: z.string(),
  decrypted: z.optional(z.boolean()),
  value: z.optional(z.string()),
});

/** Vercel `POST /v10/projects/{idOrName}/env`: what was written, and each key that failed. */
export const vercelCreateAnswerSchema = z.looseObject({
  failed: z.optional(
    z.array(
      z.looseObject({
        error: z.looseObject({ key: z.optional(z.string()), code: z.optional(z.string()) }),
      }),
    ),
  ),
});

/** Fly Machines API `GET /v1/apps/{app}/secrets`: names and digests, never values. */
export const flySecretsAnswerSchema = z.looseObject({
  secrets: z.array(z.looseObject({ name: z.string().check(z.minLength(1)) })),
});

/** GitHub `GET …/actions/secrets/public-key`: the key each secret is sealed to, base64, and its id. */
export const githubPublicKeyAnswerSchema = z.looseObject({
  key_id: z.string().check(z.minLength(1)),
  key: z.string().check(z.minLength(1)),
});

/** GitHub `GET …/actions/secrets`: one page of secret names. */
export const githubSecretsAnswerSchema = z.looseObject({
  total_count: z.int().check(z.gte(0)),
  secrets: z.array(z.looseObject({ name: z.string().check(z.minLength(1)) })),
});

/**
 * Coolify `GET /api/v1/applications/{uuid}/envs`: every variable, production and preview. `value` is present only
 * for a token with the `read:sensitive` permission, and never for a variable marked "shown once".
 */
export const coolifyEnvListAnswerSchema = z.array(
  z.looseObject({
    uuid: z.string().check(z.minLength(1)),
    key: z.string().check(z.minLength(1)),
    is_preview: z.boolean(),
    is_shown_once: z.optional(z.nullable(z.boolean())),
    value: z.optional(z.nullable(z.string())),
  }),
);

/** Coolify `PATCH /api/v1/applications/{uuid}/envs/bulk` (201): the variables written. */
export const coolifyBulkAnswerSchema = z.array(z.looseObject({ key: z.string().check(z.minLength(1)) }));

/** A Coolify refusal: a `message`, and for a 422 the refused fields under `errors`. */
export const coolifyErrorAnswerSchema = z.looseObject({
  message: z.optional(z.string()),
  errors: z.optional(z.record(z.string(), z.unknown())),
});

/** A GraphQL answer's `errors`: Railway answers a refused operation HTTP 200 with these (auth failures too). */
const railwayErrors = z.optional(z.array(z.looseObject({ message: z.string() })));

/**
 * Railway GraphQL `variables(…)`: the variables as one JSON map name → value, or the errors that stopped it. A sealed
 * variable's value is null: Railway never returns it through the API (Railway's own CLI reads this map's values as
 * optional strings for that reason).
 */
export const railwayVariablesAnswerSchema = z.looseObject({
  data: z.optional(z.nullable(z.looseObject({ variables: z.record(z.string(), z.nullable(z.string())) }))),
  errors: railwayErrors,
});

/** Railway GraphQL `variableCollectionUpsert` / `variableDelete`: `true` under the mutation's name, or errors. */
export const railwayMutationAnswerSchema = z.looseObject({
  data: z.optional(z.nullable(z.record(z.string(), z.nullable(z.boolean())))),
  errors: railwayErrors,
});

/**
 * AWS Secrets Manager: the SecretString of a connection's secret, parsed — a JSON object of every variable's value,
 * each a string (as the console's key/value editor writes it).
 */
export const awsSmSecretValueSchema = z.record(z.string(), z.string());
