// Profiles and service environments, from `$LATCHKEY_HOME/config.toml`:
//
//   [profiles.work]
//   server = "https://latchkey.example.com"
//   default_environment = "staging"
//   sso_issuer = "https://login.example.com"
//   sso_client_id = "latchkey-cli"
//
//   [profiles.work.environments.staging]        # only for profile "work"
//   issuer = "https://login.example.com"        # OIDC discovery; or token_endpoint = "https://…/token"
//   client_id = "svc-deployer"
//   client_secret_env = "DEPLOYER_SECRET"       # read from $DEPLOYER_SECRET or from .env.staging in the project
//   grant = "client_credentials"                # | authorization_code | device_code | password
//   scopes = ["api:read"]
//   audience = "https://api.example.com"        # and/or resource = "https://api.example.com/" (RFC 8707)
//
//   [environments.staging]                      # for every profile that declares no staging of its own
//
// Environments nest under their profile because a profile is an account: two accounts usually reach the same
// environment name with different clients. The global table stays for the one-account case. Secrets never appear
// in this file: only the names of the variables that carry them. What each table may hold, and the message for
// each mistake, is core's schema of it (schemas/config-toml.ts); this module finds the tables and names the key.
import { join } from "node:path";
import {
  CONFIG_NAME,
  LatchkeyError,
  checkSchema,
  environmentSchema,
  insecureEndpoint,
  isTable,
  parseDotenv,
  profileSchema,
  projectProfileSchema,
  type Checked,
  type Environment,
  type Profile,
} from "@latchkey/core";
import { readConfigToml } from "../config-file.js";
import type { Context } from "../context.js";
import { readFileSafe } from "../fs/safe-file.js";
import { findProject, projectRootFor } from "../project/project.js";

/** One `[profiles.NAME]` table (core's profileSchema). */
export type ProfileConfig = Profile;

/** Where the selected profile's name came from. */
export type ProfileSource = "flag" | "env" | "project" | "default";

/** The profile a command runs under. */
export interface SelectedProfile {
  name: string;
  source: ProfileSource;
  profile: ProfileConfig;
}

/** One service environment (core's environmentSchema) and where it was declared. Names secret variables, never secrets. */
export type EnvironmentConfig = Readonly<Environment> & {
  /** The environment's name. */
  readonly name: string;
  /** The profile it was loaded for (its token cache is per profile even when the table is global). */
  readonly profile: string;
  /** The config file and TOML key that declared it, for messages. */
  readonly file: string;
  readonly key: string;
};

function configError(file: string, key: string | null, why: string, hint?: string): LatchkeyError {
  return new LatchkeyError("LK_CONFIG_INVALID", {
    message: `Invalid configuration in ${file}${key === null ? "" : ` at ${key}`}: ${why}.`,
    hint:
      hint ??
      "Profiles are [profiles.NAME] tables (server, default_environment, sso_issuer, sso_client_id); environments are " +
        "[environments.NAME] or [profiles.NAME.environments.ENV] tables (issuer or token_endpoint, client_id, client_secret_env, grant, scopes, audience, resource).",
    details: { path: file, ...(key === null ? {} : { key }) },
  });
}

function tomlKey(...parts: readonly (string | number)[]): string {
  return parts.map((p) => (/^[A-Za-z0-9_-]+$/.test(String(p)) ? p : JSON.stringify(p))).join(".");
}

/** The checked value, or LK_CONFIG_INVALID naming `file` and the TOML key of the problem under `key`. */
function checked<T>(result: Checked<T>, file: string, key: readonly string[]): T {
  if (result.ok) return result.value;
  throw configError(file, tomlKey(...key, ...result.path), result.message);
}

/**
 * Throws LK_CONFIG_INVALID unless `url` is https, or http on a loopback host (127.0.0.1, ::1, localhost): tokens and
 * client secrets must not cross a network in clear text. `where` names the setting in the message.
 */
export function assertSecureEndpoint(url: string, where = "the endpoint"): URL {
  const problem = insecureEndpoint(url, where);
  if (problem === undefined) return new URL(url);
  if (!URL.canParse(url)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `${problem}.`,
      hint: "Give an absolute https:// URL.",
    });
  }
  throw new LatchkeyError("LK_CONFIG_INVALID", {
    message: `${problem}.`,
    hint: "Use the provider's https:// URL.",
    details: { url: new URL(url).origin },
  });
}

async function projectProfile(ctx: Context): Promise<string | undefined> {
  const project = await findProject(ctx.cwd);
  if (project === null) return undefined;
  const value = project.config.profile;
  if (value === undefined) return undefined;
  return checked(checkSchema(projectProfileSchema, value), project.file, ["profile"]);
}

/**
 * The profile this command runs under: `--profile`, else LATCHKEY_PROFILE, else `profile` in the nearest
 * latchkey.json, else `default`. A profile named explicitly must be declared in config.toml (a typo must not
 * silently run under another account); `default` may be undeclared, and is then empty.
 */
export async function selectProfile(ctx: Context, flag?: string): Promise<SelectedProfile> {
  let name: string;
  let source: ProfileSource;
  let origin: string;
  const fromEnv = ctx.env.LATCHKEY_PROFILE;
  if (flag !== undefined) {
    [name, source, origin] = [flag, "flag", "--profile"];
  } else if (fromEnv !== undefined && fromEnv !== "") {
    [name, source, origin] = [fromEnv, "env", "LATCHKEY_PROFILE"];
  } else {
    const fromProject = await projectProfile(ctx);
    if (fromProject !== undefined) [name, source, origin] = [fromProject, "project", "latchkey.json"];
    else [name, source, origin] = ["default", "default", "the default"];
  }
  if (!CONFIG_NAME.test(name)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The profile name from ${origin} is not valid: use letters, digits, '.', '_' and '-'.`,
      details: { source },
    });
  }
  const { file, doc } = await readConfigToml(ctx);
  const profiles = doc.profiles;
  if (profiles !== undefined && !isTable(profiles))
    throw configError(file, "profiles", "expected a table of profiles");
  const raw = profiles?.[name];
  if (raw === undefined) {
    if (source === "default") return { name, source, profile: {} };
    throw configError(
      file,
      tomlKey("profiles", name),
      `profile ${JSON.stringify(name)} (from ${origin}) is not declared`,
      `Add a [profiles.${name}] table to ${file}, or choose another profile.`,
    );
  }
  return { name, source, profile: checked(checkSchema(profileSchema, raw), file, ["profiles", name]) };
}

function parseEnvironment(
  value: unknown,
  file: string,
  key: readonly string[],
  name: string,
  profile: string,
): EnvironmentConfig {
  const environment = checked(checkSchema(environmentSchema, value), file, key);
  return { name, profile, file, key: tomlKey(...key), ...environment };
}

/**
 * The environment `envName` for profile `profileName`: `[profiles.P.environments.E]` when declared, else the
 * global `[environments.E]`. Not declared anywhere → LK_OAUTH_ENV_NOT_FOUND; malformed → LK_CONFIG_INVALID
 * naming file and key.
 */
export async function loadEnvironment(
  ctx: Context,
  profileName: string,
  envName: string,
): Promise<EnvironmentConfig> {
  if (!CONFIG_NAME.test(envName)) {
    throw new LatchkeyError("LK_USAGE", {
      message: "An environment name uses letters, digits, '.', '_' and '-' (at most 64).",
    });
  }
  const { file, doc } = await readConfigToml(ctx);
  const profiles = isTable(doc.profiles) ? doc.profiles : {};
  const profile = profiles[profileName];
  const scoped = isTable(profile) ? profile.environments : undefined;
  if (scoped !== undefined && !isTable(scoped))
    throw configError(
      file,
      tomlKey("profiles", profileName, "environments"),
      "expected a table of environments",
    );
  if (scoped?.[envName] !== undefined)
    return parseEnvironment(
      scoped[envName],
      file,
      ["profiles", profileName, "environments", envName],
      envName,
      profileName,
    );
  const global = doc.environments;
  if (global !== undefined && !isTable(global))
    throw configError(file, "environments", "expected a table of environments");
  if (global?.[envName] !== undefined)
    return parseEnvironment(global[envName], file, ["environments", envName], envName, profileName);
  throw new LatchkeyError("LK_OAUTH_ENV_NOT_FOUND", {
    message: `No environment ${JSON.stringify(envName)} is declared for profile ${JSON.stringify(profileName)} in ${file}.`,
    hint: `Declare [profiles.${profileName}.environments.${envName}] or [environments.${envName}] with issuer, client_id and client_secret_env.`,
    details: { path: file, environment: envName, profile: profileName },
  });
}

/** The project root whose `.env.NAME` files may carry environment secrets. */
async function projectRoot(ctx: Context): Promise<string> {
  const project = await findProject(ctx.cwd);
  return project?.root ?? projectRootFor(ctx.cwd, ctx.env.HOME);
}

/**
 * Reads a secret named by `variable` for environment `env`: from the process environment, else from `.env.<env>`
 * in the project root (parsed with core's parseDotenv). Never prompted. Missing → LK_OAUTH_SECRET_MISSING naming
 * the variable and the file looked in.
 */
export async function readEnvironmentSecret(
  ctx: Context,
  env: EnvironmentConfig,
  variable: string,
  what: string,
): Promise<string> {
  const direct = ctx.env[variable];
  if (direct !== undefined && direct !== "") return direct;
  const file = join(await projectRoot(ctx), `.env.${env.name}`);
  const bytes = await readFileSafe(file);
  if (bytes !== null) {
    const text = Buffer.from(bytes).toString("utf8");
    for (const [key, value] of parseDotenv(text, file)) if (key === variable && value !== "") return value;
  }
  throw new LatchkeyError("LK_OAUTH_SECRET_MISSING", {
    message: `The ${what} for environment ${JSON.stringify(env.name)} is not set: ${variable} is neither in the environment nor in ${file}.`,
    hint: `Export ${variable} (e.g. from your CI's secret store), or put ${variable}=… in ${file} (keep it out of git).`,
    details: { environment: env.name, variable, path: file },
  });
}

/**
 * The names of the environments usable under `profileName` (its own and the global ones), sorted; for listings such
 * as `auth status`. Each is validated only when loaded.
 */
export async function listEnvironments(ctx: Context, profileName: string): Promise<string[]> {
  const { doc } = await readConfigToml(ctx);
  const profiles = isTable(doc.profiles) ? doc.profiles : {};
  const profile = profiles[profileName];
  const scoped = isTable(profile) && isTable(profile.environments) ? profile.environments : {};
  const global = isTable(doc.environments) ? doc.environments : {};
  return [...new Set([...Object.keys(scoped), ...Object.keys(global)])]
    .filter((n) => CONFIG_NAME.test(n))
    .sort();
}
