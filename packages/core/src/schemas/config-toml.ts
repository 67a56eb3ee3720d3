/**
 * `$LATCHKEY_HOME/config.toml`, the user's own settings (docs/configuration.md). Each section is read when a
 * command needs it, so a mistake in one (an environment, say) never stops a command that uses another: the CLI
 * checks a section's entries with these schemas one at a time. {@link configTomlSchema} is the whole file.
 */
import * as z from "zod/mini";
import { isEnvVariableName } from "../dotenv.js";
import { nonEmptyString, table } from "./parse.js";
import { CONFIG_NAME, REGISTRY_KINDS, insecureEndpoint, isProviderArgv, isTable } from "./rules.js";

const VARIABLE_EXAMPLE = "expected an environment variable name such as EXAMPLE_NPM_TOKEN";

/** A registry's `tokenEnv`: the name of the variable that carries its token. */
export const tokenEnvSchema = z
  .string({ error: VARIABLE_EXAMPLE })
  .check(z.refine(isEnvVariableName, { error: VARIABLE_EXAMPLE }));

/** A registry's `provider`: the credential provider's argv, run without a shell. */
export const providerArgvSchema = z.custom<string[]>(isProviderArgv, {
  error:
    "expected a non-empty array of non-empty strings: the command and its arguments, run without a shell",
});

/** `[registries."URL"]` in config.toml: how Latchkey gets that registry's token. */
export const userRegistrySchema = table({
  tokenEnv: z.optional(tokenEnvSchema),
  provider: z.optional(providerArgvSchema),
  kind: z.optional(z.enum(REGISTRY_KINDS, { error: `expected one of ${REGISTRY_KINDS.join(", ")}` })),
});

/** One registry declaration of config.toml. */
export type UserRegistry = z.output<typeof userRegistrySchema>;

function endpoint(field: string) {
  return nonEmptyString().check(
    z.refine((url) => insecureEndpoint(url, field) === undefined, {
      error: (issue) => insecureEndpoint(String(issue.input), field),
    }),
  );
}

const NAME_RULE = "(letters, digits, '.', '_', '-')";

/** `[profiles.NAME]`: an account, its Latchkey server and its single sign-on. `environments` is read on its own. */
export const profileSchema = z.pipe(
  table({
    server: z.optional(endpoint("server")),
    default_environment: z.optional(
      nonEmptyString().check(z.regex(CONFIG_NAME, { error: `expected an environment name ${NAME_RULE}` })),
    ),
    sso_issuer: z.optional(endpoint("sso_issuer")),
    sso_client_id: z.optional(nonEmptyString()),
    environments: z.optional(z.unknown()),
  }),
  z.transform((p) => ({
    ...(p.server === undefined ? {} : { server: p.server }),
    ...(p.default_environment === undefined ? {} : { defaultEnvironment: p.default_environment }),
    ...(p.sso_issuer === undefined ? {} : { ssoIssuer: p.sso_issuer }),
    ...(p.sso_client_id === undefined ? {} : { ssoClientId: p.sso_client_id }),
  })),
);

/** A profile as the CLI uses it. */
export type Profile = z.output<typeof profileSchema>;

/** The OAuth grants a service environment may use; the first is the default. */
export const ENVIRONMENT_GRANTS = [
  "client_credentials",
  "authorization_code",
  "device_code",
  "password",
] as const;

/** One of {@link ENVIRONMENT_GRANTS}. */
export type EnvironmentGrant = (typeof ENVIRONMENT_GRANTS)[number];

function secretVariable() {
  return nonEmptyString().check(
    z.refine(isEnvVariableName, {
      error: "expected an environment variable name such as SERVICE_CLIENT_SECRET",
    }),
  );
}

/** One string, or a list of non-empty ones; a problem anywhere in it is the whole value's (`message`). */
function stringOrList(message: string) {
  return z.custom<string | string[]>(
    (value) =>
      typeof value === "string" ||
      (Array.isArray(value) && value.every((v) => typeof v === "string" && v !== "")),
    { error: message },
  );
}

function isResource(uri: string): boolean {
  try {
    return !new URL(uri).hash;
  } catch {
    return false;
  }
}

/**
 * `[environments.NAME]` or `[profiles.P.environments.NAME]`: an OAuth client of a service, by the names of the
 * variables that carry its secrets (never the secrets). Exactly one of issuer (OIDC discovery) and token_endpoint;
 * the client_credentials grant needs client_secret_env; only the password grant takes username and password_env.
 */
export const environmentSchema = z.pipe(
  table({
    issuer: z.optional(endpoint("issuer")),
    token_endpoint: z.optional(endpoint("token_endpoint")),
    client_id: nonEmptyString("client_id is required"),
    client_secret_env: z.optional(secretVariable()),
    grant: z._default(
      z.enum(ENVIRONMENT_GRANTS, { error: `expected one of ${ENVIRONMENT_GRANTS.join(", ")}` }),
      "client_credentials",
    ),
    scopes: z.optional(stringOrList("expected an array of scope strings or one space-separated string")),
    audience: z.optional(nonEmptyString()),
    resource: z.optional(
      stringOrList("expected a string or an array of strings").check(
        z.refine((r) => (typeof r === "string" ? [r] : r).every(isResource), {
          error: "each resource must be an absolute URI without a fragment (RFC 8707)",
        }),
      ),
    ),
    username: z.optional(nonEmptyString()),
    password_env: z.optional(secretVariable()),
  }).check(
    z.superRefine((env, ctx) => {
      const fail = (message: string, path: string[] = []) =>
        ctx.issues.push({ code: "custom", message, path, input: env });
      if ((env.issuer === undefined) === (env.token_endpoint === undefined))
        fail("declare exactly one of issuer (OIDC discovery) and token_endpoint");
      else if (env.grant === "client_credentials" && env.client_secret_env === undefined)
        fail("the client_credentials grant needs a client secret: name the variable that carries it", [
          "client_secret_env",
        ]);
      else if (env.grant === "password" && (env.password_env === undefined || env.username === undefined))
        fail("the password grant needs username and password_env (the variable carrying the password)", [
          env.password_env === undefined ? "password_env" : "username",
        ]);
      else if (env.grant !== "password" && (env.password_env !== undefined || env.username !== undefined))
        fail("only the password grant takes a username and password", [
          env.password_env !== undefined ? "password_env" : "username",
        ]);
    }),
  ),
  z.transform((env) => ({
    ...(env.issuer === undefined ? {} : { issuer: env.issuer }),
    ...(env.token_endpoint === undefined ? {} : { tokenEndpoint: env.token_endpoint }),
    clientId: env.client_id,
    ...(env.client_secret_env === undefined ? {} : { clientSecretEnv: env.client_secret_env }),
    grant: env.grant,
    scopes:
      typeof env.scopes === "string" ? env.scopes.split(/\s+/).filter(Boolean) : [...(env.scopes ?? [])],
    ...(env.audience === undefined ? {} : { audience: env.audience }),
    resource: typeof env.resource === "string" ? [env.resource] : [...(env.resource ?? [])],
    ...(env.username === undefined ? {} : { username: env.username }),
    ...(env.password_env === undefined ? {} : { passwordEnv: env.password_env }),
  })),
);

/** A service environment as the CLI uses it (without where it was declared). */
export type Environment = z.output<typeof environmentSchema>;

/**
 * `[ci]`: what the user allows when `CI` is set. `allow_project_credentials = true` lets a project's credential
 * providers and tokenEnv declarations be used there without an approval. Other keys are left to later versions.
 */
export const ciSchema = z.pipe(
  z.custom<Record<string, unknown>>(isTable, { error: "expected a table" }),
  z.looseObject({
    allow_project_credentials: z.optional(z.boolean({ error: "expected true or false" })),
  }),
);

/** The `[ci]` section. */
export type CiSettings = z.output<typeof ciSchema>;

/** A table of entries keyed by URL or name; what a key must be is each section's business. */
function entries<T extends z.ZodMiniType>(entry: T, what: string) {
  return z.pipe(
    z.custom<Record<string, unknown>>(isTable, { error: `expected a table of ${what}` }),
    z.record(z.string(), entry),
  );
}

/**
 * The whole of config.toml, for tools that check it at once. Tables Latchkey does not know are left alone: the
 * file is the user's, and other versions of Latchkey may read more of it.
 */
export const configTomlSchema = z.looseObject({
  registries: z.optional(entries(userRegistrySchema, "registries")),
  profiles: z.optional(entries(profileSchema, "profiles")),
  environments: z.optional(entries(environmentSchema, "environments")),
  ci: z.optional(ciSchema),
});
