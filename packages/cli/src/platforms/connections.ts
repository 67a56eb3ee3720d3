// `env platforms connect|list|disconnect|status|push|pull` (docs/platforms.md, "Connections" and "Commands"): a
// vault copy's connections live on the server with the platform credential sealed by this machine with the copy's
// vault key, so the server never holds it open. Push and pull run here: the copy is pulled and decrypted locally,
// the credential unsealed, and the platform called through its adapter; the server only hears the counts.
import {
  LatchkeyError,
  PERSONAL_COPY_KEY_VERSION,
  PLATFORMS,
  PLATFORMS_SEGMENT,
  checkSchema,
  fromBase64,
  isLatchkeyError,
  platformConfigSchema,
  platformConnectRequestSchema,
  platformConnectionNameSchema,
  platformConnectionResponseSchema,
  platformCredentialContext,
  platformDisconnectResponseSchema,
  platformListResponseSchema,
  toBase64,
  utf8Decode,
  utf8Encode,
  uuidV4,
  type PlatformConfig,
  type PlatformConnectRequest,
  type PlatformConnection,
  type PlatformName,
  type PlatformOutcome,
  type PlatformStatusRequest,
} from "@latchkey/core";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { copyKey } from "../ci/policy.js";
import { copyName } from "../ci/escrow.js";
import { openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";
import { checkPrivate } from "../fs/safe-file.js";
import { readSecretInput, readUserFile } from "../input.js";
import { checkCurrentOrgKey, orgVaultPath } from "../org/copy.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { requireServerSession } from "../server/session.js";
import { pullVault, type PullOutcome } from "../sync/pull.js";
import { chosenOrg, copyTarget, openSyncProject, orgFlag, type CopyChoice } from "../sync/project.js";
import { vaultPath } from "../sync/push.js";
import { readSyncBase } from "../sync/state.js";
import { validateEnvName } from "../vault/names.js";
import { loadVaultKey, updateVault } from "../vault/vault-store.js";
import { applyPlanFor, planPush, reasonOf, type ApplyResult, type PushPlan } from "./adapter.js";
import { createPlatformAdapter } from "./registry.js";

/** Which copy, and which server: as for `env push` and `env pull`. */
export interface PlatformTargetOptions extends CopyChoice {
  profile?: string;
  server?: string;
  verbose?: number;
}

/** The target flags of `connect`, as given; which apply depends on the platform. */
export interface TargetFlags {
  project?: string;
  team?: string;
  target?: readonly string[];
  type?: string;
  app?: string;
  repo?: string;
  repoEnvironment?: string;
  railwayEnvironment?: string;
  service?: string;
  tokenType?: string;
  application?: string;
  region?: string;
  path?: string;
  secretId?: string;
  kmsKey?: string;
  url?: string;
  baseUrl?: string;
}

/** What `env platforms connect` was given. */
export interface ConnectOptions extends PlatformTargetOptions {
  platform: string;
  environment: string;
  name?: string;
  targets: TargetFlags;
  credentialStdin?: boolean;
  credentialFile?: string;
}

const usage = (message: string, hint?: string): LatchkeyError =>
  new LatchkeyError("LK_USAGE", hint === undefined ? { message } : { message, hint });

/** The path of a copy's connections under the API prefix. */
export function platformsPath(vaultId: string, org: string | undefined): string {
  return `${org === undefined ? vaultPath(vaultId) : orgVaultPath(org, vaultId)}/${PLATFORMS_SEGMENT}`;
}

/** Which flags each platform's configuration is made of, for messages. */
const FLAGS: Record<PlatformName, string> = {
  vercel: "--project ID [--team ID] [--target production|preview|development]… [--type encrypted|sensitive]",
  fly: "--app NAME",
  railway: "--project ID --railway-environment ID [--service ID] [--token-type account|team|project]",
  coolify: "--application UUID [--base-url URL of your instance]",
  "github-actions": "--repo OWNER/REPO [--repo-environment NAME]",
  "aws-ssm": "--region REGION --path /PREFIX/ [--kms-key ID]",
  "aws-sm": "--region REGION --secret-id NAME [--kms-key ID]",
  generic: "--url URL",
};

/** The connection's configuration from the command line, checked with core's schema. */
export function configFromFlags(platform: string, flags: TargetFlags): PlatformConfig {
  const name = PLATFORMS.find((p) => p === platform);
  if (name === undefined) throw usage(`PLATFORM must be one of ${PLATFORMS.join(", ")}.`);
  const base = flags.baseUrl === undefined ? {} : { baseUrl: flags.baseUrl };
  let config: Record<string, unknown>;
  const used: (keyof TargetFlags)[] = [];
  switch (name) {
    case "vercel":
      used.push("project", "team", "target", "type", "baseUrl");
      config = {
        platform: name,
        projectId: flags.project,
        ...(flags.team === undefined ? {} : { teamId: flags.team }),
        target: flags.target === undefined || flags.target.length === 0 ? ["production"] : [...flags.target],
        type: flags.type ?? "encrypted",
        ...base,
      };
      break;
    case "fly":
      used.push("app", "baseUrl");
      config = { platform: name, app: flags.app, ...base };
      break;
    case "github-actions": {
      used.push("repo", "repoEnvironment", "baseUrl");
      const [owner, repo, ...rest] = (flags.repo ?? "").split("/");
      if (rest.length > 0 || owner === undefined || repo === undefined)
        throw usage(
          "--repo must be OWNER/REPO.",
          `latchkey env platforms connect github-actions ${FLAGS[name]}`,
        );
      config = {
        platform: name,
        owner,
        repo,
        ...(flags.repoEnvironment === undefined ? {} : { environment: flags.repoEnvironment }),
        ...base,
      };
      break;
    }
    case "railway":
      used.push("project", "railwayEnvironment", "service", "tokenType", "baseUrl");
      config = {
        platform: name,
        projectId: flags.project,
        environmentId: flags.railwayEnvironment,
        ...(flags.service === undefined ? {} : { serviceId: flags.service }),
        tokenType: flags.tokenType ?? "account",
        ...base,
      };
      break;
    case "coolify":
      used.push("application", "baseUrl");
      config = { platform: name, applicationUuid: flags.application, ...base };
      break;
    case "aws-ssm":
      used.push("region", "path", "kmsKey", "baseUrl");
      config = {
        platform: name,
        region: flags.region,
        path: flags.path,
        ...(flags.kmsKey === undefined ? {} : { kmsKeyId: flags.kmsKey }),
        ...base,
      };
      break;
    case "aws-sm":
      used.push("region", "secretId", "kmsKey", "baseUrl");
      config = {
        platform: name,
        region: flags.region,
        secretId: flags.secretId,
        ...(flags.kmsKey === undefined ? {} : { kmsKeyId: flags.kmsKey }),
        ...base,
      };
      break;
    case "generic":
      used.push("url");
      config = { platform: name, url: flags.url };
      break;
  }
  const stray = (Object.keys(flags) as (keyof TargetFlags)[]).filter(
    (key) =>
      flags[key] !== undefined && !used.includes(key) && !(key === "target" && flags.target?.length === 0),
  );
  if (stray.length > 0) {
    const spelled = stray.map((key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw usage(
      `${spelled.join(", ")} ${stray.length === 1 ? "is" : "are"} not an option of ${name}.`,
      `${name} takes ${FLAGS[name]}.`,
    );
  }
  const checked = checkSchema(platformConfigSchema, config);
  if (!checked.ok)
    throw usage(`The ${name} target is not valid: ${checked.message}`, `${name} takes ${FLAGS[name]}.`);
  return checked.value;
}

/**
 * The credential, never from argv: a file only this account can read (`--credential-file`), all of stdin
 * (`--credential-stdin`), or the masked prompt on a terminal.
 */
async function readCredential(
  ctx: Context,
  options: ConnectOptions,
  platform: PlatformName,
): Promise<string> {
  if (options.credentialStdin === true && options.credentialFile !== undefined)
    throw usage("Give the credential one way: --credential-stdin or --credential-file, not both.");
  if (options.credentialFile !== undefined) {
    const path = resolve(ctx.cwd, options.credentialFile);
    const report = await checkPrivate(path);
    if (report !== null && report.problems.length > 0) {
      throw new LatchkeyError("LK_USAGE", {
        message: `${path} ${report.problems.join("; ")}: a platform credential must be in a file only you can read. Nothing was sent.`,
        hint: `Run \`chmod 600 ${path}\`, or pass the credential on stdin (--credential-stdin).`,
      });
    }
    const text = utf8Decode(await readUserFile(ctx, path, "pass it with --credential-stdin")).replace(
      /\r?\n$/,
      "",
    );
    if (text === "")
      throw new LatchkeyError("LK_INPUT_EMPTY", {
        message: `${path} is empty: there is no credential to connect with.`,
      });
    return text;
  }
  if (options.credentialStdin !== true && !(ctx.stdin.isTTY && ctx.stderr.isTTY)) {
    throw new LatchkeyError("LK_NOT_INTERACTIVE", {
      message:
        "The platform credential is asked at a masked prompt, and this command has no terminal. Nothing was sent.",
      hint: "Pass it with --credential-stdin (e.g. from a secret manager) or --credential-file FILE (mode 0600); never on the command line.",
    });
  }
  const what =
    platform === "generic"
      ? "signing secret"
      : platform === "aws-ssm" || platform === "aws-sm"
        ? "access key as ACCESS_KEY_ID:SECRET_ACCESS_KEY"
        : "API token";
  try {
    return await readSecretInput(ctx, `${platform} ${what} (hidden): `);
  } catch (error) {
    // readSecretInput's own hint offers --allow-empty, which connect has not: an empty token is never meant.
    if (!isLatchkeyError(error, "LK_INPUT_EMPTY")) throw error;
    const prompted = ctx.stdin.isTTY && ctx.stderr.isTTY;
    throw new LatchkeyError("LK_INPUT_EMPTY", {
      message: `${prompted ? "Nothing was typed at the prompt" : "Nothing arrived on standard input"}: there is no ${platform} credential to connect with. Nothing was sent.`,
      hint: "Run the command again with the token: typed at the prompt, or given with --credential-stdin or --credential-file FILE (mode 0600).",
      cause: error,
    });
  }
}

/** A refusal of an organisation copy's change in the command's words. */
function forbidden(error: unknown, what: string, org: string | undefined): unknown {
  if (!isLatchkeyError(error, "LK_ORG_FORBIDDEN") || org === undefined) return error;
  return new LatchkeyError("LK_ORG_FORBIDDEN", {
    message: `Your role in organisation ${org} does not allow you to ${what} (it needs maintainer or stronger). Nothing was changed.`,
    hint: `Ask a maintainer, admin or owner of ${org} (\`latchkey org members ${org}\`) to do it.`,
    details: { org, ...(error.details ?? {}) },
    cause: error,
  });
}

/** A copy's connections as the server lists them. */
export interface ConnectionsOutcome {
  vaultId: string;
  org: string | null;
  server: string;
  connections: PlatformConnection[];
}

/** `env platforms list` and `status`: the copy's connections. */
export async function listConnections(
  ctx: Context,
  options: PlatformTargetOptions,
): Promise<ConnectionsOutcome> {
  const { vaultId, org, api } = await copyTarget(ctx, options);
  const answer = await callApi(
    ctx,
    { method: "GET", path: platformsPath(vaultId, org), answer: platformListResponseSchema },
    api,
  );
  return { vaultId, org: org ?? null, server: answer.server, connections: answer.data.connections };
}

/** One connection by name, or LK_PLATFORM_NOT_CONNECTED naming what there is. */
async function findConnection(ctx: Context, options: PlatformTargetOptions, name: string) {
  const listed = await listConnections(ctx, options);
  const connection = listed.connections.find((c) => c.name === name);
  if (connection === undefined) {
    const org = listed.org ?? undefined;
    const names = listed.connections.map((c) => c.name);
    throw new LatchkeyError("LK_PLATFORM_NOT_CONNECTED", {
      message: `${copyName(listed.vaultId, org)} has no platform connection named ${name} on ${listed.server}${names.length === 0 ? "" : ` (it has ${names.join(", ")})`}.`,
      hint: `List them with \`latchkey env platforms list${orgFlag(org)}\`, or connect one with \`latchkey env platforms connect PLATFORM --env ENV${orgFlag(org)}\`.`,
      details: { name },
    });
  }
  return { ...listed, connection };
}

/** What `connect` made. */
export interface ConnectOutcome {
  vaultId: string;
  org: string | null;
  server: string;
  connection: PlatformConnection;
}

/**
 * `env platforms connect`: reads the credential (never from argv), seals it with the copy's vault key under a new
 * connection id, and sends the connection with that key's version. The credential never leaves this machine open.
 * An organisation copy's key is the one this machine kept at its last pull or share, proved to be the copy's now
 * (copy.ts checkCurrentOrgKey) and named by the copy's key version, which the server checks again as it stores the
 * connection: a stale copy's key, which a rotation retired and a removed member may hold, seals nothing
 * (LK_VAULT_KEY_STALE).
 */
export async function connectPlatform(ctx: Context, options: ConnectOptions): Promise<ConnectOutcome> {
  const config = configFromFlags(options.platform, options.targets);
  const environment = validateEnvName(options.environment);
  const name = options.name ?? `${config.platform}-${environment}`.toLowerCase();
  const checkedName = checkSchema(platformConnectionNameSchema, name);
  if (!checkedName.ok) throw usage(`--name ${JSON.stringify(name)} is not valid: ${checkedName.message}`);
  const sp = await openSyncProject(ctx);
  const org = chosenOrg(sp.project, options);
  const serverOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const active = await requireServerSession(ctx, { ...serverOptions, verbose: options.verbose ?? 0 });
  const server = active.selection.server;
  const api: ApiOptions = { ...serverOptions, server, verbose: options.verbose ?? 0 };
  const key = await copyKey(ctx, sp, org, server, active.session.subject, {
    what: "seal a platform credential with",
    then: "connect the platform",
  });
  const keyVersion =
    org === undefined
      ? PERSONAL_COPY_KEY_VERSION
      : (
          await checkCurrentOrgKey(
            ctx,
            { org, vaultId: sp.vaultId },
            key,
            { what: "seal a platform credential", then: "connect the platform" },
            api,
          )
        ).keyVersion;
  const credential = await readCredential(ctx, options, config.platform);
  const id = uuidV4(ctx.random.bytes(16));
  const plaintext = utf8Encode(credential);
  const sealed = sealEnvelopeSync(key, plaintext, platformCredentialContext(sp.vaultId, id), (n) =>
    ctx.random.bytes(n),
  );
  plaintext.fill(0);
  const body: PlatformConnectRequest = {
    id,
    name,
    environment,
    config,
    sealedCredential: toBase64(sealed),
    keyVersion,
  };
  const checked = checkSchema(platformConnectRequestSchema, body);
  if (!checked.ok) throw usage(`The connection is not valid: ${checked.message}`);
  try {
    const answer = await callApi(
      ctx,
      {
        method: "POST",
        path: platformsPath(sp.vaultId, org),
        body,
        answer: platformConnectionResponseSchema,
      },
      api,
    );
    return {
      vaultId: sp.vaultId,
      org: org ?? null,
      server: answer.server,
      connection: answer.data.connection,
    };
  } catch (error) {
    if (isLatchkeyError(error, "LK_PLATFORM_NAME_TAKEN")) {
      throw new LatchkeyError("LK_PLATFORM_NAME_TAKEN", {
        message: `${copyName(sp.vaultId, org)} already has a platform connection named ${name}. Nothing was changed.`,
        hint: `Pick another with --name, or \`latchkey env platforms disconnect ${name}${orgFlag(org)}\` first.`,
        details: { name },
        cause: error,
      });
    }
    if (isLatchkeyError(error, "LK_VAULT_KEY_STALE")) {
      // Rotated between the check above and the server's: the credential was sealed with the retired key.
      throw new LatchkeyError("LK_VAULT_KEY_STALE", {
        message: `The server refused the connection: the credential was sealed with the key of version ${keyVersion} of ${copyName(sp.vaultId, org)}, which is not its key now (rotated meanwhile). Nothing was stored.`,
        hint: `Run \`latchkey env pull${orgFlag(org)}\` to get the copy's current key, then connect the platform again.`,
        details: { name, keyVersion },
        cause: error,
      });
    }
    throw forbidden(error, `connect platforms to its copy of vault ${sp.vaultId}`, org);
  }
}

/** `env platforms disconnect NAME`: deletes the connection and its sealed credential from the server. */
export async function disconnectPlatform(
  ctx: Context,
  options: PlatformTargetOptions & { name: string },
): Promise<{ vaultId: string; org: string | null; server: string; name: string }> {
  const { vaultId, org, api } = await copyTarget(ctx, options);
  try {
    const answer = await callApi(
      ctx,
      {
        method: "DELETE",
        path: `${platformsPath(vaultId, org)}/${encodeURIComponent(options.name)}`,
        answer: platformDisconnectResponseSchema,
      },
      api,
    );
    return { vaultId, org: org ?? null, server: answer.server, name: options.name };
  } catch (error) {
    if (isLatchkeyError(error, "LK_PLATFORM_NOT_CONNECTED")) {
      throw new LatchkeyError("LK_PLATFORM_NOT_CONNECTED", {
        message: `${copyName(vaultId, org)} has no platform connection named ${options.name}; nothing was deleted.`,
        hint: `List them with \`latchkey env platforms list${orgFlag(org)}\`.`,
        details: { name: options.name },
        cause: error,
      });
    }
    throw forbidden(error, `disconnect platforms of its copy of vault ${vaultId}`, org);
  }
}

/** The copy's values after a pull, the key its blob is sealed with, and the version pulled. */
interface PulledCopy {
  pull: PullOutcome;
  key: Uint8Array;
  document: Record<string, Record<string, string>>;
}

/** Pulls the copy (as `env pull` does) and reads back the server's version of it, and its key. */
async function pullCopy(
  ctx: Context,
  options: PlatformTargetOptions,
  environment: string,
): Promise<PulledCopy> {
  const pull = await pullVault(ctx, { ...options, environment });
  const sp = await openSyncProject(ctx);
  const localKey = await loadVaultKey(sp.deps, sp.vaultId);
  const base = localKey === null ? null : await readSyncBase(ctx.paths.home, sp.vaultId, localKey, pull.org);
  const key = pull.org === undefined ? localKey : base?.orgKey === undefined ? null : fromBase64(base.orgKey);
  if (base === null || key === null || base.version !== pull.version) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The pull of ${copyName(pull.vaultId, pull.org)} left no readable copy of version ${pull.version} on this machine.`,
      hint: "Run `latchkey env pull` and try again.",
    });
  }
  return { pull, key, document: base.document };
}

/** The connection's credential, opened with the copy's key; LK_PLATFORM_CREDENTIAL_UNREADABLE otherwise. */
async function unseal(
  key: Uint8Array,
  vaultId: string,
  connection: PlatformConnection,
  org: string | undefined,
): Promise<string> {
  try {
    const bytes = await openEnvelopeCli(
      key,
      fromBase64(connection.sealedCredential),
      platformCredentialContext(vaultId, connection.id),
    );
    const text = utf8Decode(bytes);
    bytes.fill(0);
    return text;
  } catch (error) {
    throw new LatchkeyError("LK_PLATFORM_CREDENTIAL_UNREADABLE", {
      message: `The credential of connection ${connection.name} does not open with the key of ${copyName(vaultId, org)} this machine holds. Nothing was sent to ${connection.platform}.`,
      details: { name: connection.name },
      cause: error,
    });
  }
}

/** What `push` planned and did; names and counts only. */
export interface PushOutcome {
  vaultId: string;
  org: string | null;
  server: string;
  name: string;
  platform: PlatformName;
  environment: string;
  version: number;
  plan: PushPlan;
  dryRun: boolean;
  /** Absent on a dry run. */
  result?: ApplyResult;
  outcome?: PlatformOutcome;
  /** Names changed on this machine and not pushed to the server: the platform gets the server's version. */
  notPushedLocal: string[];
}

/** The status a push records: counts of the names the platform confirmed. */
function statusOf(plan: PushPlan, result: ApplyResult, version: number): PlatformStatusRequest {
  const written = new Set(result.written);
  const outcome: PlatformOutcome =
    result.failed.length === 0
      ? "ok"
      : result.written.length + result.removed.length > 0
        ? "partial"
        : "failed";
  return {
    operation: "push",
    version,
    added: plan.added.filter((n) => written.has(n)).length,
    changed: plan.changed.filter((n) => written.has(n)).length,
    removed: result.removed.length,
    outcome,
    message:
      result.failed.length === 0
        ? null
        : `${result.failed.length} name${result.failed.length === 1 ? "" : "s"} not written: ${result.failed
            .map((f) => f.name)
            .join(", ")}`.slice(0, 500),
  };
}

async function recordStatus(
  ctx: Context,
  api: ApiOptions,
  vaultId: string,
  org: string | undefined,
  name: string,
  status: PlatformStatusRequest,
): Promise<void> {
  await callApi(
    ctx,
    {
      method: "PUT",
      path: `${platformsPath(vaultId, org)}/${encodeURIComponent(name)}/status`,
      body: status,
      answer: platformConnectionResponseSchema,
    },
    api,
  );
}

/**
 * `env platforms push NAME`: pulls the copy, takes the connection's environment from the server's version of it,
 * unseals the credential, lists the platform's names where it can, plans (added / changed / removed names; removed
 * only with `prune`), stops there on a dry run, applies, and records the outcome on the server.
 */
export async function pushPlatform(
  ctx: Context,
  options: PlatformTargetOptions & { name: string; dryRun: boolean; prune: boolean },
): Promise<PushOutcome> {
  const found = await findConnection(ctx, options, options.name);
  const { connection } = found;
  const org = found.org ?? undefined;
  const copy = await pullCopy(ctx, options, connection.environment);
  const values = copy.document[connection.environment];
  if (values === undefined) {
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `Version ${copy.pull.version} of ${copyName(found.vaultId, org)} has no environment ${connection.environment}, which connection ${connection.name} pushes. Nothing was sent.`,
      hint: `Set its secrets (\`latchkey env set --env ${connection.environment} NAME\`) and \`latchkey env push${orgFlag(org)}\` first.`,
    });
  }
  const credential = await unseal(copy.key, found.vaultId, connection, org);
  const adapter = createPlatformAdapter({
    ctx,
    config: connection.config,
    credential,
    verbose: options.verbose ?? 0,
  });
  const api: ApiOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    server: found.server,
    verbose: options.verbose ?? 0,
  };
  const plan = planPush(await adapter.listNames(), values, options.prune);
  const base = {
    vaultId: found.vaultId,
    org: found.org,
    server: found.server,
    name: connection.name,
    platform: connection.platform,
    environment: connection.environment,
    version: copy.pull.version,
    plan,
    notPushedLocal: copy.pull.keptLocal,
  };
  if (options.dryRun) return { ...base, dryRun: true };
  let result: ApplyResult;
  try {
    result = await adapter.apply(applyPlanFor(plan, values));
  } catch (error) {
    // Nothing could be said about any name: recorded as failed, in the catalogue's words (never a value).
    await recordStatus(ctx, api, found.vaultId, org, connection.name, {
      operation: "push",
      version: copy.pull.version,
      added: 0,
      changed: 0,
      removed: 0,
      outcome: "failed",
      message: reasonOf(error).slice(0, 500),
    }).catch(() => undefined);
    throw error;
  }
  const status = statusOf(plan, result, copy.pull.version);
  await recordStatus(ctx, api, found.vaultId, org, connection.name, status);
  return { ...base, dryRun: false, result, outcome: status.outcome };
}

/** What `pull` imported: names only. */
export interface PlatformPullOutcome {
  vaultId: string;
  org: string | null;
  server: string;
  name: string;
  platform: PlatformName;
  environment: string;
  added: string[];
  changed: string[];
  unchanged: number;
  /** Names the platform holds but does not give values for (sealed, shown once, sensitive): not imported. */
  withheld: string[];
}

/**
 * `env platforms pull NAME`: pulls the copy, then imports the platform's names and values into the connection's
 * environment of the local vault (pushed to the server by a later `env push`); a write-only platform is
 * LK_PLATFORM_PULL_UNSUPPORTED before anything is read.
 */
export async function pullPlatform(
  ctx: Context,
  options: PlatformTargetOptions & { name: string },
): Promise<PlatformPullOutcome> {
  const found = await findConnection(ctx, options, options.name);
  const { connection } = found;
  const org = found.org ?? undefined;
  const copy = await pullCopy(ctx, options, connection.environment);
  const credential = await unseal(copy.key, found.vaultId, connection, org);
  const adapter = createPlatformAdapter({
    ctx,
    config: connection.config,
    credential,
    verbose: options.verbose ?? 0,
  });
  if (adapter.pull === null) {
    throw new LatchkeyError("LK_PLATFORM_PULL_UNSUPPORTED", {
      message: `${connection.platform} keeps the values of connection ${connection.name} write-only: there is nothing to pull from it. Nothing was changed.`,
      details: { platform: connection.platform },
    });
  }
  const { values, withheld } = await adapter.pull();
  const sp = await openSyncProject(ctx);
  const imported = await updateVault(sp.deps, sp.vaultId, (document) => {
    const env = (document[connection.environment] ??= {});
    const added: string[] = [];
    const changed: string[] = [];
    for (const [key, value] of Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!Object.hasOwn(env, key)) added.push(key);
      else if (env[key] !== value) changed.push(key);
      else continue;
      env[key] = value;
    }
    return { result: { added, changed }, changed: added.length + changed.length > 0 };
  });
  const api: ApiOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    server: found.server,
    verbose: options.verbose ?? 0,
  };
  await recordStatus(ctx, api, found.vaultId, org, connection.name, {
    operation: "pull",
    version: copy.pull.version,
    added: imported.added.length,
    changed: imported.changed.length,
    removed: 0,
    outcome: "ok",
    message:
      withheld.length === 0
        ? null
        : `${withheld.length} name${withheld.length === 1 ? "" : "s"} not imported (${connection.platform} does not return the value): ${withheld.join(", ")}`.slice(
            0,
            500,
          ),
  });
  return {
    vaultId: found.vaultId,
    org: found.org,
    server: found.server,
    name: connection.name,
    platform: connection.platform,
    environment: connection.environment,
    added: imported.added,
    changed: imported.changed,
    unchanged: Object.keys(values).length - imported.added.length - imported.changed.length,
    withheld: [...withheld],
  };
}
