// Where a registry's token comes from, first match wins:
//   input for this command > environment > credential provider > host CLI (gh/glab) > keystore.
// Every source is recorded with the reason it won or did not, for `whoami --explain`.
//
// Well-known variables go only to the hosts they belong to: NPM_TOKEN only to registry.npmjs.org,
// GH_TOKEN/GITHUB_TOKEN only to npm.pkg.github.com, GITLAB_TOKEN and CI_JOB_TOKEN only to gitlab.com, to GitLab
// hosts declared in the user's own config.toml, and to the CI server that set CI_SERVER_HOST. A project file,
// or a URL that merely looks like GitLab's API, cannot redirect them. A `tokenEnv` a project declares names which
// of the user's variables goes to a URL the project chose, so it is used only once the user has approved it
// (authorizeTokenEnv).
import { isLatchkeyError, type LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { readVariable, sameVariable } from "../env-names.js";
import { findRegistryConfig, readLoginRecords } from "./config.js";
import { hostCliCommand, hostCliToken, isTokenShaped } from "./host-cli.js";
import { nerfDart, nerfHost, nerfHostname, registryAccount, registryKind } from "./nerf-dart.js";
import type {
  NerfDart,
  ProviderAnswer,
  ProviderDeclaration,
  RegistryConfig,
  RegistryKind,
  SourceCheck,
  TokenResolution,
  TokenSource,
} from "./types.js";

/** The credential-provider client as sources.ts uses it (registry/provider-client.ts implements it). */
export interface ProviderTokenClient {
  token(decl: ProviderDeclaration, registryUri: string): Promise<ProviderAnswer | null>;
}

/** Options for one resolution. */
export interface ResolveTokenOptions {
  /** A token given to this command (stdin, a file, a prompt): it wins over every other source. */
  readonly input?: string;
  /**
   * Also consult the sources below the winner (not a credential provider, which may prompt or cost), so an
   * explanation can say that a stored token is shadowed. Without it, they are reported as not consulted.
   */
  readonly explain?: boolean;
  /** The provider client to use; default: one per context from registry/provider-client.ts. */
  readonly providers?: ProviderTokenClient;
}

const providerClients = new WeakMap<Context, Promise<ProviderTokenClient>>();

/** One provider client per context, so its in-memory cache serves every registry of a command. */
function defaultProviders(ctx: Context): Promise<ProviderTokenClient> {
  let client = providerClients.get(ctx);
  if (client === undefined) {
    client = import("./provider-client.js").then((m) => m.createProviderClient(ctx));
    providerClients.set(ctx, client);
  }
  return client;
}

interface EnvCandidate {
  readonly name: string;
  /** Why this variable may not go to this registry; undefined when it may. */
  readonly refused?: string;
  /** The registry's declaration when it names this variable (`tokenEnv`): a project's needs approval. */
  readonly declared?: RegistryConfig;
}

/**
 * Resolves when `config`'s tokenEnv may be used as its registry's token: always when the user declared it; when a
 * project did, once the user has approved that variable for that URL in that project (asking on a terminal).
 * Throws LK_TOKEN_ENV_NOT_APPROVED, naming the file and line, otherwise (project/approvals.ts).
 */
export async function authorizeTokenEnv(ctx: Context, config: RegistryConfig): Promise<void> {
  const name = config.tokenEnv;
  if (name === undefined || config.declaredIn !== "project") return;
  const { authorizeDeclaration, displayQuoted } = await import("../project/approvals.js");
  const url = displayQuoted(config.url);
  await authorizeDeclaration(ctx, {
    kind: "tokenEnv",
    file: config.file ?? "latchkey.json",
    line: config.tokenEnvLine ?? null,
    content: { registry: config.url, tokenEnv: name },
    code: "LK_TOKEN_ENV_NOT_APPROVED",
    subject: `the tokenEnv ${name} for ${url}`,
    prompt:
      `that the registry ${url} takes its token from your environment variable ${name}.\n` +
      `Its value would be sent to ${nerfHost(config.nerfDart)} (by \`latchkey whoami\`, and by npm, pnpm and yarn ` +
      "through `latchkey exec` or `latchkey setup ci npmrc`) and printed by `latchkey token`.",
    question: `Send ${name} to this registry for this project?`,
  });
}

/** The registry URL for a nerf dart: the configured URL, else https (a nerf dart keeps no scheme). */
function registryUrl(nerf: NerfDart, config: RegistryConfig | undefined): string {
  return config?.url ?? `https:${nerf}`;
}

/** Whether GitLab's variables may be sent to this registry. */
function gitlabTrust(
  ctx: Context,
  nerf: NerfDart,
  kind: RegistryKind,
  config: RegistryConfig | undefined,
): { trusted: boolean; ciServer: boolean; why: string } {
  const hostname = nerfHostname(nerf);
  const ciHost = ctx.env.CI_SERVER_HOST;
  const ciServer = ciHost !== undefined && ciHost !== "" && ciHost.toLowerCase() === hostname;
  if (kind !== "gitlab") return { trusted: false, ciServer, why: "not a GitLab registry" };
  if (hostname === "gitlab.com") return { trusted: true, ciServer, why: "gitlab.com" };
  if (config?.declaredIn === "user") return { trusted: true, ciServer, why: "declared in your config.toml" };
  if (ciServer) return { trusted: true, ciServer, why: "the CI server (CI_SERVER_HOST)" };
  return {
    trusted: false,
    ciServer,
    why: `${hostname} is not gitlab.com, a GitLab host declared in your config.toml, or CI_SERVER_HOST`,
  };
}

function envCandidates(
  ctx: Context,
  nerf: NerfDart,
  kind: RegistryKind,
  config: RegistryConfig | undefined,
): EnvCandidate[] {
  const hostname = nerfHostname(nerf);
  const os = ctx.platform.os;
  const out: EnvCandidate[] = [];
  if (config?.tokenEnv !== undefined) out.push({ name: config.tokenEnv, declared: config });
  const add = (name: string, refused?: string): void => {
    if (out.some((c) => sameVariable(c.name, name, os))) return;
    // A refused variable is only worth a line when it is set: it explains why a token was not used.
    if (refused !== undefined && !readVariable(ctx.env, name, os)) return;
    out.push(refused === undefined ? { name } : { name, refused });
  };
  add("NPM_TOKEN", hostname === "registry.npmjs.org" ? undefined : "only sent to registry.npmjs.org");
  // gh reads GH_TOKEN before GITHUB_TOKEN; the same order here means both tools use the same token.
  const github = hostname === "npm.pkg.github.com" ? undefined : "only sent to npm.pkg.github.com";
  add("GH_TOKEN", github);
  add("GITHUB_TOKEN", github);
  const gitlab = gitlabTrust(ctx, nerf, kind, config);
  add("GITLAB_TOKEN", gitlab.trusted ? undefined : `only sent to GitLab hosts you trust (${gitlab.why})`);
  // A job token belongs to the instance that ran the job: on a CI server, nowhere else.
  const ciSet = ctx.env.CI_SERVER_HOST !== undefined && ctx.env.CI_SERVER_HOST !== "";
  const jobRefused = !gitlab.trusted
    ? `only sent to GitLab hosts you trust (${gitlab.why})`
    : ciSet && !gitlab.ciServer
      ? `only sent to the CI server that issued it (${ctx.env.CI_SERVER_HOST})`
      : undefined;
  add("CI_JOB_TOKEN", jobRefused);
  return out;
}

/** authorizeTokenEnv's refusal, or null when the variable may be used. */
async function tokenEnvRefusal(ctx: Context, config: RegistryConfig): Promise<LatchkeyError | null> {
  try {
    await authorizeTokenEnv(ctx, config);
    return null;
  } catch (error) {
    if (isLatchkeyError(error)) return error;
    throw error;
  }
}

/** A source check as a phrase: "env NPM_TOKEN", "gh auth token", "keystore registry://…/". */
export function describeCheck(check: Pick<SourceCheck, "source" | "name">): string {
  if (check.source === "input") return "the token given to this command";
  return check.source === "env" ? `env ${check.name}` : check.name;
}

/**
 * Resolves the token for a registry (a URL or a nerf dart) from its sources in precedence order. A missing token
 * is not an error: `token` is null and `checks` says why. Errors from the keystore propagate, and so does a
 * credential provider's error when no later source has a token either (except with `explain`).
 */
export async function resolveRegistryToken(
  ctx: Context,
  registryUrlOrNerf: string,
  options: ResolveTokenOptions = {},
): Promise<TokenResolution> {
  const nerf = nerfDart(registryUrlOrNerf);
  const config = await findRegistryConfig(ctx, nerf);
  const kind = config?.kind ?? registryKind(nerf);
  const checks: SourceCheck[] = [];
  let token: string | null = null;
  let source: TokenSource | null = null;
  let expiresAt: string | null = null;
  let winner: SourceCheck | null = null;
  let providerError: LatchkeyError | null = null;
  let tokenEnvError: LatchkeyError | null = null;

  const record = (check: Omit<SourceCheck, "won">, value: string | null): void => {
    if (value !== null && winner === null) {
      const won: SourceCheck = { ...check, won: true };
      checks.push(won);
      winner = won;
      token = value;
      source = check.source;
      return;
    }
    const reason =
      value !== null ? `${check.reason}; not used: ${describeCheck(winner!)} comes first` : check.reason;
    checks.push({ ...check, reason, won: false });
  };
  const skipped = (src: TokenSource, name: string): void => {
    checks.push({
      source: src,
      name,
      won: false,
      reason: `not consulted: ${describeCheck(winner!)} comes first`,
    });
  };
  const consult = (): boolean => winner === null || options.explain === true;

  // 1. Input for this command.
  if (options.input !== undefined)
    record({ source: "input", name: "command input", reason: "given to this command" }, options.input);

  // 2. Environment.
  for (const candidate of envCandidates(ctx, nerf, kind, config)) {
    if (!consult()) {
      skipped("env", candidate.name);
      continue;
    }
    const value = readVariable(ctx.env, candidate.name, ctx.platform.os);
    if (candidate.refused !== undefined) {
      checks.push({
        source: "env",
        name: candidate.name,
        won: false,
        reason: `set, but ${candidate.refused}`,
      });
    } else if (value === undefined) {
      record({ source: "env", name: candidate.name, reason: "not set" }, null);
    } else if (value === "") {
      record({ source: "env", name: candidate.name, reason: "set but empty" }, null);
    } else if (!isTokenShaped(value)) {
      record(
        {
          source: "env",
          name: candidate.name,
          reason: "set, but not a usable token (spaces or control characters)",
        },
        null,
      );
    } else {
      const refusal =
        candidate.declared === undefined ? null : await tokenEnvRefusal(ctx, candidate.declared);
      if (refusal === null) {
        record({ source: "env", name: candidate.name, reason: "set" }, value);
      } else {
        // Like an unapproved provider: the next sources may still hold a token; if none does, this error is the
        // one worth showing, since it says how to approve the variable.
        tokenEnvError = refusal;
        checks.push({
          source: "env",
          name: candidate.name,
          won: false,
          reason: `set, but not used (${refusal.code}): ${refusal.message}`,
        });
      }
    }
  }

  // 3. Credential provider.
  const provider = config?.provider;
  const providerName = provider === undefined ? "credential provider" : `provider ${provider.argv[0]}`;
  if (provider === undefined) {
    checks.push({ source: "provider", name: providerName, won: false, reason: "none configured" });
  } else if (winner !== null) {
    skipped("provider", providerName);
  } else {
    const client = options.providers ?? (await defaultProviders(ctx));
    let answer: ProviderAnswer | null = null;
    let reason: string;
    try {
      answer = await client.token(provider, registryUrl(nerf, config));
      reason =
        answer === null ? "the provider had no credential for this registry" : `declared in ${provider.file}`;
    } catch (error) {
      if (!isLatchkeyError(error)) throw error;
      // A broken or unapproved provider must not hide a token the next sources hold; if none does, its error is
      // the one worth showing (it says how to approve or fix the provider).
      providerError = error;
      reason = `failed (${error.code}): ${error.message}`;
    }
    if (answer !== null && !isTokenShaped(answer.token)) {
      reason = "the provider answered with something that is not a usable token";
      answer = null;
    }
    record({ source: "provider", name: providerName, reason }, answer?.token ?? null);
    if (answer !== null && source === "provider") expiresAt = answer.expiresAt;
  }

  // 4. Host CLI (gh, glab), read now and never stored. Unlike GITLAB_TOKEN, glab's token is bound to the host
  //    it is asked for, so any GitLab-shaped registry may ask for its own.
  const cli = hostCliCommand(nerf, kind);
  if (cli === null) {
    checks.push({
      source: "host-cli",
      name: "host CLI",
      won: false,
      reason: "no host CLI serves this registry",
    });
  } else if (!consult()) {
    skipped("host-cli", cli.name);
  } else {
    const answer = await hostCliToken(ctx, cli);
    record({ source: "host-cli", name: cli.name, reason: answer.reason }, answer.token);
  }

  // 5. Keystore.
  const account = registryAccount(nerf);
  const keystoreName = `keystore ${account}`;
  if (!consult()) {
    skipped("keystore", keystoreName);
  } else {
    const resolution = await ctx.keystore(account);
    const stored = await resolution.keystore.get(account);
    const where = resolution.backend === "keyring" ? "the OS keychain" : `the ${resolution.backend} store`;
    record(
      {
        source: "keystore",
        name: keystoreName,
        reason: stored === null ? `nothing stored in ${where}` : `stored in ${where}`,
      },
      stored,
    );
  }

  const refusal = tokenEnvError ?? providerError;
  if (token === null && refusal !== null && options.explain !== true) throw refusal;
  return { nerfDart: nerf, kind, token, source, expiresAt, checks };
}

/**
 * The URL to call for a registry named by its nerf dart: the configured one, else the one logged in to, else
 * https with the nerf dart's host and path.
 */
export async function registryUrlFor(ctx: Context, nerf: NerfDart): Promise<string> {
  const config = await findRegistryConfig(ctx, nerf);
  if (config !== undefined) return config.url;
  return (await readLoginRecords(ctx))[nerf]?.url ?? registryUrl(nerf, undefined);
}
