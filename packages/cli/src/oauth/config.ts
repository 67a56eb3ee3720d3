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
// in this file: only the names of the variables that carry them.
import { join } from "node:path";
import { LatchkeyError, parseDotenv } from "@latchkey/core";
import { readConfigToml } from "../config-file.js";
import type { Context } from "../context.js";
import { readFileSafe } from "../fs/safe-file.js";
import { findProject, projectRootFor } from "../project/project.js";

/** One `[profiles.NAME]` table. */
export interface ProfileConfig {
  server?: string;
  defaultEnvironment?: string;
  ssoIssuer?: string;
  ssoClientId?: string;
}

/** Where the selected profile's name came from. */
export type ProfileSource = "flag" | "env" | "project" | "default";

/** The profile a command runs under. */
export interface SelectedProfile {
  name: string;
  source: ProfileSource;
  profile: ProfileConfig;
}

/** OAuth grants an environment may use. */
export type EnvironmentGrant = "client_credentials" | "authorization_code" | "device_code" | "password";

/** One service environment, validated. Holds names of secret variables, never secrets. */
export interface EnvironmentConfig {
  /** The environment's name. */
  readonly name: string;
  /** The profile it was loaded for (its token cache is per profile even when the table is global). */
  readonly profile: string;
  /** The config file and TOML key that declared it, for messages. */
  readonly file: string;
  readonly key: string;
  /** OIDC discovery base; exactly one of issuer and tokenEndpoint is set. */
  readonly issuer?: string;
  readonly tokenEndpoint?: string;
  readonly clientId: string;
  /** The variable (or `.env.NAME` key) carrying the client secret; absent for public clients. */
  readonly clientSecretEnv?: string;
  readonly grant: EnvironmentGrant;
  readonly scopes: readonly string[];
  readonly audience?: string;
  readonly resource: readonly string[];
  /** password grant only: the resource owner's name, and the variable carrying the password. */
  readonly username?: string;
  readonly passwordEnv?: string;
}

const GRANTS: readonly EnvironmentGrant[] = [
  "client_credentials",
  "authorization_code",
  "device_code",
  "password",
];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PROFILE_FIELDS: Record<string, keyof ProfileConfig | null> = {
  server: "server",
  default_environment: "defaultEnvironment",
  sso_issuer: "ssoIssuer",
  sso_client_id: "ssoClientId",
  environments: null,
};
const ENVIRONMENT_FIELDS = [
  "issuer",
  "token_endpoint",
  "client_id",
  "client_secret_env",
  "grant",
  "scopes",
  "audience",
  "resource",
  "username",
  "password_env",
];
const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);

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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function tomlKey(...parts: string[]): string {
  return parts.map((p) => (/^[A-Za-z0-9_-]+$/.test(p) ? p : JSON.stringify(p))).join(".");
}

/**
 * Throws LK_CONFIG_INVALID unless `url` is https, or http on a loopback host (127.0.0.1, ::1, localhost): tokens and
 * client secrets must not cross a network in clear text. `where` names the setting in the message.
 */
export function assertSecureEndpoint(url: string, where = "the endpoint"): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `${where} is not a URL.`,
      hint: "Give an absolute https:// URL.",
    });
  }
  if (parsed.protocol === "https:") return parsed;
  if (parsed.protocol === "http:" && LOOPBACK.has(parsed.hostname)) return parsed;
  throw new LatchkeyError("LK_CONFIG_INVALID", {
    message: `${where} (${parsed.origin}) must use https: only loopback hosts (127.0.0.1, ::1, localhost) may use http.`,
    hint: "Use the provider's https:// URL.",
    details: { url: parsed.origin },
  });
}

function optionalString(
  table: Record<string, unknown>,
  field: string,
  file: string,
  key: string,
): string | undefined {
  const value = table[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "")
    throw configError(file, `${key}.${field}`, "expected a non-empty string");
  return value;
}

function parseProfile(value: unknown, file: string, name: string): ProfileConfig {
  const key = tomlKey("profiles", name);
  if (!isPlainObject(value)) throw configError(file, key, "expected a table");
  const out: ProfileConfig = {};
  for (const [field, raw] of Object.entries(value)) {
    if (!(field in PROFILE_FIELDS))
      throw configError(
        file,
        `${key}.${field}`,
        `unknown field ${JSON.stringify(field)} (accepted: ${Object.keys(PROFILE_FIELDS).join(", ")})`,
      );
    const target = PROFILE_FIELDS[field];
    if (target === null || target === undefined) continue;
    if (typeof raw !== "string" || raw === "")
      throw configError(file, `${key}.${field}`, "expected a non-empty string");
    if (field === "server" || field === "sso_issuer") {
      try {
        assertSecureEndpoint(raw, field);
      } catch (err) {
        throw configError(file, `${key}.${field}`, (err as LatchkeyError).message.replace(/\.$/, ""));
      }
    }
    if (field === "default_environment" && !NAME.test(raw))
      throw configError(
        file,
        `${key}.${field}`,
        "expected an environment name (letters, digits, '.', '_', '-')",
      );
    out[target] = raw;
  }
  return out;
}

async function projectProfile(ctx: Context): Promise<string | undefined> {
  const project = await findProject(ctx.cwd);
  if (project === null) return undefined;
  const value = project.config.profile;
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !NAME.test(value))
    throw configError(project.file, "profile", "expected a profile name (letters, digits, '.', '_', '-')");
  return value;
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
  if (!NAME.test(name)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The profile name from ${origin} is not valid: use letters, digits, '.', '_' and '-'.`,
      details: { source },
    });
  }
  const { file, doc } = await readConfigToml(ctx);
  const profiles = doc.profiles;
  if (profiles !== undefined && !isPlainObject(profiles))
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
  return { name, source, profile: parseProfile(raw, file, name) };
}

function parseStringList(value: unknown, file: string, key: string, split: boolean): string[] {
  if (value === undefined) return [];
  if (typeof value === "string") return split ? value.split(/\s+/).filter(Boolean) : [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === "string" && v !== ""))
    return [...value];
  throw configError(
    file,
    key,
    split
      ? "expected an array of scope strings or one space-separated string"
      : "expected a string or an array of strings",
  );
}

function parseEnvironment(
  value: unknown,
  file: string,
  key: string,
  name: string,
  profile: string,
): EnvironmentConfig {
  if (!isPlainObject(value)) throw configError(file, key, "expected a table");
  for (const field of Object.keys(value)) {
    if (!ENVIRONMENT_FIELDS.includes(field))
      throw configError(
        file,
        `${key}.${field}`,
        `unknown field ${JSON.stringify(field)} (accepted: ${ENVIRONMENT_FIELDS.join(", ")})`,
      );
  }
  const issuer = optionalString(value, "issuer", file, key);
  const tokenEndpoint = optionalString(value, "token_endpoint", file, key);
  if ((issuer === undefined) === (tokenEndpoint === undefined))
    throw configError(file, key, "declare exactly one of issuer (OIDC discovery) and token_endpoint");
  for (const [field, url] of [
    ["issuer", issuer],
    ["token_endpoint", tokenEndpoint],
  ] as const) {
    if (url === undefined) continue;
    try {
      assertSecureEndpoint(url, field);
    } catch (err) {
      throw configError(file, `${key}.${field}`, (err as LatchkeyError).message.replace(/\.$/, ""));
    }
  }
  const clientId = optionalString(value, "client_id", file, key);
  if (clientId === undefined) throw configError(file, `${key}.client_id`, "client_id is required");
  const grantRaw = value.grant ?? "client_credentials";
  if (typeof grantRaw !== "string" || !GRANTS.includes(grantRaw as EnvironmentGrant))
    throw configError(file, `${key}.grant`, `expected one of ${GRANTS.join(", ")}`);
  const grant = grantRaw as EnvironmentGrant;
  const variable = (field: string): string | undefined => {
    const v = optionalString(value, field, file, key);
    if (v !== undefined && !ENV_VAR.test(v))
      throw configError(
        file,
        `${key}.${field}`,
        "expected an environment variable name such as SERVICE_CLIENT_SECRET",
      );
    return v;
  };
  const clientSecretEnv = variable("client_secret_env");
  const passwordEnv = variable("password_env");
  const username = optionalString(value, "username", file, key);
  if (grant === "client_credentials" && clientSecretEnv === undefined)
    throw configError(
      file,
      `${key}.client_secret_env`,
      "the client_credentials grant needs a client secret: name the variable that carries it",
    );
  if (grant === "password" && (passwordEnv === undefined || username === undefined))
    throw configError(
      file,
      `${key}.${passwordEnv === undefined ? "password_env" : "username"}`,
      "the password grant needs username and password_env (the variable carrying the password)",
    );
  if (grant !== "password" && (passwordEnv !== undefined || username !== undefined))
    throw configError(
      file,
      `${key}.${passwordEnv !== undefined ? "password_env" : "username"}`,
      "only the password grant takes a username and password",
    );
  const audience = optionalString(value, "audience", file, key);
  const resource = parseStringList(value.resource, file, `${key}.resource`, false);
  for (const r of resource) {
    let ok: boolean;
    try {
      ok = !new URL(r).hash;
    } catch {
      ok = false;
    }
    if (!ok)
      throw configError(
        file,
        `${key}.resource`,
        "each resource must be an absolute URI without a fragment (RFC 8707)",
      );
  }
  return {
    name,
    profile,
    file,
    key,
    ...(issuer !== undefined ? { issuer } : {}),
    ...(tokenEndpoint !== undefined ? { tokenEndpoint } : {}),
    clientId,
    ...(clientSecretEnv !== undefined ? { clientSecretEnv } : {}),
    grant,
    scopes: parseStringList(value.scopes, file, `${key}.scopes`, true),
    ...(audience !== undefined ? { audience } : {}),
    resource,
    ...(username !== undefined ? { username } : {}),
    ...(passwordEnv !== undefined ? { passwordEnv } : {}),
  };
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
  if (!NAME.test(envName)) {
    throw new LatchkeyError("LK_USAGE", {
      message: "An environment name uses letters, digits, '.', '_' and '-' (at most 64).",
    });
  }
  const { file, doc } = await readConfigToml(ctx);
  const profiles = isPlainObject(doc.profiles) ? doc.profiles : {};
  const profile = profiles[profileName];
  const scoped = isPlainObject(profile) ? profile.environments : undefined;
  if (scoped !== undefined && !isPlainObject(scoped))
    throw configError(
      file,
      tomlKey("profiles", profileName, "environments"),
      "expected a table of environments",
    );
  if (scoped?.[envName] !== undefined)
    return parseEnvironment(
      scoped[envName],
      file,
      tomlKey("profiles", profileName, "environments", envName),
      envName,
      profileName,
    );
  const global = doc.environments;
  if (global !== undefined && !isPlainObject(global))
    throw configError(file, "environments", "expected a table of environments");
  if (global?.[envName] !== undefined)
    return parseEnvironment(global[envName], file, tomlKey("environments", envName), envName, profileName);
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
  const profiles = isPlainObject(doc.profiles) ? doc.profiles : {};
  const profile = profiles[profileName];
  const scoped = isPlainObject(profile) && isPlainObject(profile.environments) ? profile.environments : {};
  const global = isPlainObject(doc.environments) ? doc.environments : {};
  return [...new Set([...Object.keys(scoped), ...Object.keys(global)])].filter((n) => NAME.test(n)).sort();
}
