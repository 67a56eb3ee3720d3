import {
  LatchkeyError,
  checkEnv,
  formatDotenv,
  formatJson,
  formatShell,
  isSecretKey,
  parseDotenv,
  parseEnvSchema,
  type EnvSchema,
} from "@latchkey/core";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { readSecretInput, readUserFile } from "../input.js";
import { palette, printData, printJson, printStatus, printValue } from "../output/output.js";
import { authorizeVaultUse } from "../project/approvals.js";
import { loadOrCreateProject, resolveVaultId, type Project } from "../project/project.js";
import { runProgram } from "../run/replace.js";
import { fileVariable, writeSecretFiles, type SecretFiles } from "../run/secret-files.js";
import { refuseVaultSyncedElsewhere } from "../sync/not-paired.js";
import {
  checkLocalCopyAge,
  offlineMaxAge,
  withoutNetwork,
  type MaxAge,
  type OfflineFlags,
} from "../sync/offline.js";
import { checkVaultSize, tooLargeForEnvironment, tooLargeWarning } from "../vault/limits.js";
import {
  checkReservedNames,
  checkReservedName,
  isReservedName,
  parseAssignment,
  sameNameOtherCase,
  validateEnvName,
  validateKeyName,
  validateValue,
} from "../vault/names.js";
import {
  readVaultWithPresence,
  updateVault,
  vaultKeyAccount,
  type VaultDocument,
  type VaultStoreDeps,
} from "../vault/vault-store.js";
import type { RunState } from "./support.js";

/** A project's vault as commands use it. */
interface ProjectVault {
  readonly vaultId: string;
  readonly schema: EnvSchema;
  readonly deps: VaultStoreDeps;
  /** latchkey.json, when there is one (it may name another vault than LATCHKEY_VAULT_ID). */
  readonly project: Project | null;
}

/**
 * The project's vault. Writes create latchkey.json (or add its vault id) on first use; reads never write, and
 * fail with LK_PROJECT_NOT_FOUND when there is no project. LATCHKEY_VAULT_ID overrides the file. A vault this
 * machine uses for another project root is opened only once approved (project/approvals.ts).
 */
async function openProjectVault(ctx: Context, create: boolean): Promise<ProjectVault> {
  const override = ctx.env.LATCHKEY_VAULT_ID !== undefined;
  const project = await loadOrCreateProject(ctx.cwd, {
    create: create && !override,
    ...(ctx.env.HOME ? { home: ctx.env.HOME } : {}),
  });
  if (project?.change === "created")
    printStatus(ctx, `Created ${project.file} to hold this project's vault id.`);
  if (project?.change === "added-vault")
    printStatus(ctx, `Added this project's vault id to ${project.file}.`);
  const vaultId = resolveVaultId(ctx.env, project);
  // Before a write binds the vault here: a first value must not start a second vault under the id of one that
  // lives elsewhere (sync/not-paired.ts).
  if (create)
    await refuseVaultSyncedElsewhere(
      (await ctx.keystore(vaultKeyAccount(vaultId))).keystore,
      project,
      vaultId,
    );
  if (project !== null) await authorizeVaultUse(ctx, { vaultId, project, creates: create });
  const schema = parseEnvSchema(project?.config.envSchema, project?.file ?? "latchkey.json");
  // Every vault read starts with this vault's wrapped key.
  const { keystore } = await ctx.keystore(vaultKeyAccount(vaultId));
  return {
    vaultId,
    schema,
    deps: { keystore, home: ctx.paths.home, vaultsDir: ctx.paths.vaults, random: ctx.random },
    project,
  };
}

/**
 * The vault's document. One with no local file reads as empty, unless it was synced from another machine and never
 * reached this one: then it is LK_VAULT_NOT_PAIRED (sync/not-paired.ts), not an empty vault to start afresh in.
 */
async function readDocument(vault: ProjectVault): Promise<VaultDocument> {
  const { document, exists } = await readVaultWithPresence(vault.deps, vault.vaultId);
  if (!exists) await refuseVaultSyncedElsewhere(vault.deps.keystore, vault.project, vault.vaultId);
  return document;
}

/** LK_ENV_NOT_FOUND for `environment`, with a "did you mean" when only its case is wrong. */
function environmentNotFound(environment: string, document: VaultDocument): LatchkeyError {
  const other = sameNameOtherCase(environment, Object.keys(document));
  return new LatchkeyError("LK_ENV_NOT_FOUND", {
    message: `The vault has no environment named ${environment}.${other === undefined ? "" : ` Did you mean ${other}?`}`,
    ...(other === undefined
      ? {}
      : { hint: `Environment names are case-sensitive: use --env ${other}, or run \`latchkey env envs\`.` }),
    details: { environment, environments: Object.keys(document).sort() },
  });
}

/** LK_ENV_KEY_NOT_FOUND for `keys`, with a "did you mean" for a key whose case alone is wrong. */
function keysNotFound(
  keys: readonly string[],
  environment: string,
  values: Readonly<Record<string, string>>,
): LatchkeyError {
  const guesses = keys.flatMap((key) => {
    const other = sameNameOtherCase(key, Object.keys(values));
    return other === undefined ? [] : [`${other} (not ${key})`];
  });
  return new LatchkeyError("LK_ENV_KEY_NOT_FOUND", {
    message:
      (keys.length === 1
        ? `${keys[0]} is not set in ${environment}.`
        : `Not set in ${environment}: ${keys.join(", ")}.`) +
      (guesses.length === 0 ? "" : ` Did you mean ${guesses.join(", ")}?`),
    ...(guesses.length === 0
      ? {}
      : { hint: "Secret names are case-sensitive; `latchkey env list` shows them as they are stored." }),
  });
}

/** One environment of the project's vault; with `offline`, only from a local copy recent enough for it. */
async function readEnvironment(
  ctx: Context,
  environment: string,
  offline: MaxAge | null = null,
): Promise<{ vault: ProjectVault; values: Record<string, string> }> {
  const vault = await openProjectVault(ctx, false);
  if (offline !== null) await checkLocalCopyAge(ctx, vault.vaultId, offline);
  const document = await readDocument(vault);
  const values = document[environment];
  if (values === undefined) throw environmentNotFound(environment, document);
  return { vault, values };
}

function checkAgainstSchema(schema: EnvSchema, key: string, value: string): void {
  const { violations } = checkEnv({ [key]: schema[key]! }, { [key]: value }, { applyDefaults: false });
  if (violations.length > 0) {
    throw new LatchkeyError("LK_ENV_CHECK_FAILED", { message: violations.map((v) => v.message).join("\n") });
  }
}

/**
 * Writes entries into an environment after checking each (reserved names, envSchema, the size limits);
 * nothing is written if one fails. Warns about values `run` cannot put in an environment. Returns the keys
 * that already had a value.
 */
async function storeEntries(
  ctx: Context,
  environment: string,
  entries: readonly (readonly [string, string])[],
  options: { allowOverride: boolean },
): Promise<string[]> {
  for (const [key] of entries) checkReservedName(key, options.allowOverride, ctx.platform.os);
  const vault = await openProjectVault(ctx, true);
  for (const [key, value] of entries) if (vault.schema[key]) checkAgainstSchema(vault.schema, key, value);
  const replaced = await updateVault(vault.deps, vault.vaultId, (document) => {
    const target = (document[environment] ??= {});
    const had = entries.filter(([key]) => key in target).map(([key]) => key);
    for (const [key, value] of entries) target[key] = value;
    checkVaultSize(document, "store");
    return { result: had, changed: true };
  });
  for (const [key, value] of entries) {
    const size = tooLargeForEnvironment(key, value);
    if (size !== null) printStatus(ctx, tooLargeWarning(key, size));
  }
  return replaced;
}

/** The value `key` has in `environment` now, or undefined (also when there is no project yet). */
async function currentValue(ctx: Context, environment: string, key: string): Promise<string | undefined> {
  try {
    const vault = await openProjectVault(ctx, false);
    return (await readDocument(vault))[environment]?.[key];
  } catch (error) {
    if (error instanceof LatchkeyError && error.code === "LK_PROJECT_NOT_FOUND") return undefined;
    throw error;
  }
}

/** Options of `env set`. */
export interface EnvSetOptions {
  environment: string;
  assignments: readonly string[];
  /** Store an empty value read from stdin or the prompt without asking. */
  allowEmpty?: boolean;
  /** Allow names that replace a variable programs rely on (PATH, LD_PRELOAD…). */
  allowOverride?: boolean;
}

/** `env set KEY=VALUE…` or `env set KEY` (value from stdin or a masked prompt). */
export async function envSet(ctx: Context, options: EnvSetOptions): Promise<number> {
  const environment = validateEnvName(options.environment);
  const allowOverride = options.allowOverride === true;
  const parsed = options.assignments.map(parseAssignment);
  const missing = parsed.filter((p) => p.value === undefined);
  if (missing.length > 0 && parsed.length > 1) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Give every value as KEY=VALUE, or set one KEY at a time to read its value from stdin.",
    });
  }
  // Refused before anyone types a value that would then be thrown away.
  for (const { key } of parsed) checkReservedName(key, allowOverride, ctx.platform.os);
  const entries: [string, string][] = [];
  for (const { key, value } of parsed) {
    if (value !== undefined) {
      entries.push([key, value]);
      continue;
    }
    const prompting = ctx.stdin.isTTY && ctx.stderr.isTTY;
    // At the keyboard, say before the prompt that the answer replaces a value, not after.
    const replacing = prompting && (await currentValue(ctx, environment, key)) !== undefined;
    const typed = await readSecretInput(
      ctx,
      replacing ? `Value for ${key} (replaces its current value in ${environment})` : `Value for ${key}`,
      {
        allowEmpty: options.allowEmpty === true,
        confirmEmpty: replacing
          ? `The value is empty. Replace ${key}'s current value with an empty one?`
          : `The value is empty. Store ${key} with an empty value?`,
      },
    );
    entries.push([key, validateValue(key, typed)]);
  }
  const replaced = await storeEntries(ctx, environment, entries, { allowOverride });
  const added = entries.map(([k]) => k).filter((k) => !replaced.includes(k));
  printStatus(
    ctx,
    [
      ...(added.length > 0 ? [`Set ${added.join(", ")} in ${environment}.`] : []),
      ...(replaced.length > 0 ? [`Replaced the value of ${replaced.join(", ")} in ${environment}.`] : []),
    ].join(" "),
  );
  return 0;
}

/** `env get KEY`: the value alone on stdout; with --offline (or --max-age), only from a recent enough copy. */
export async function envGet(
  ctx: Context,
  options: { environment: string; key: string } & OfflineFlags,
): Promise<number> {
  const key = validateKeyName(options.key);
  const offline = offlineMaxAge(options);
  if (offline !== null) ctx = withoutNetwork(ctx);
  const { values } = await readEnvironment(ctx, validateEnvName(options.environment), offline);
  const value = values[key];
  if (value === undefined) throw keysNotFound([key], options.environment, values);
  printValue(ctx, value);
  return 0;
}

/** `env list`: names; values with --show, secret-marked values only with --reveal. */
export async function envList(
  ctx: Context,
  options: { environment: string; show: boolean; reveal: boolean; json: boolean },
): Promise<number> {
  const { vault, values } = await readEnvironment(ctx, validateEnvName(options.environment));
  const keys = Object.keys(values).sort();
  const shown = (key: string): string | undefined => {
    if (!options.show && !options.reveal) return undefined;
    return isSecretKey(vault.schema, key) && !options.reveal ? "*****" : values[key];
  };
  if (options.json) {
    printJson(ctx, {
      environment: options.environment,
      keys: keys.map((key) => ({
        key,
        secret: isSecretKey(vault.schema, key),
        ...(shown(key) === undefined ? {} : { value: shown(key) }),
      })),
    });
  } else if (keys.length === 0) {
    printStatus(ctx, `${options.environment} has no secrets.`);
  } else {
    printData(ctx, keys.map((key) => (shown(key) === undefined ? key : `${key}=${shown(key)}`)).join("\n"));
  }
  return 0;
}

/** `env unset KEY…`. */
export async function envUnset(
  ctx: Context,
  options: { environment: string; keys: readonly string[] },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  const keys = options.keys.map(validateKeyName);
  const vault = await openProjectVault(ctx, false);
  await refuseVaultSyncedElsewhere(vault.deps.keystore, vault.project, vault.vaultId);
  const { gone: removed, left } = await updateVault(vault.deps, vault.vaultId, (document) => {
    const target = document[environment];
    if (target === undefined) throw environmentNotFound(environment, document);
    const gone = keys.filter((key) => key in target);
    for (const key of gone) delete target[key];
    return { result: { gone, left: { ...target } }, changed: gone.length > 0 };
  });
  const absent = keys.filter((key) => !removed.includes(key));
  if (removed.length > 0) printStatus(ctx, `Removed ${removed.join(", ")} from ${environment}.`);
  if (absent.length > 0) throw keysNotFound(absent, environment, left);
  return 0;
}

/** `env envs`: the environments of this project's vault. */
export async function envEnvs(ctx: Context, options: { json: boolean }): Promise<number> {
  const vault = await openProjectVault(ctx, false);
  const document = await readDocument(vault);
  const environments = Object.keys(document)
    .sort()
    .map((name) => ({ name, keys: Object.keys(document[name] ?? {}).length }));
  if (options.json) printJson(ctx, { environments });
  else if (environments.length === 0) printStatus(ctx, "No environments yet.");
  else
    printData(
      ctx,
      environments.map((e) => `${e.name} (${e.keys} secret${e.keys === 1 ? "" : "s"})`).join("\n"),
    );
  return 0;
}

/** The environment names of this project's vault, sorted; names only (shell completion offers them). */
export async function environmentNames(ctx: Context): Promise<string[]> {
  const vault = await openProjectVault(ctx, false);
  return Object.keys(await readDocument(vault)).sort();
}

/** `env import FILE`: dotenv into the environment; `-` reads stdin. */
export async function envImport(
  ctx: Context,
  options: { environment: string; file: string; allowOverride?: boolean },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  const source = options.file === "-" ? "stdin" : resolve(ctx.cwd, options.file);
  const text =
    options.file === "-"
      ? Buffer.from(await ctx.stdin.readAll()).toString("utf8")
      : (await readUserFile(ctx, options.file, "pass - to read stdin")).toString("utf8");
  const entries = parseDotenv(text, source);
  await storeEntries(ctx, environment, entries, { allowOverride: options.allowOverride === true });
  printStatus(
    ctx,
    `Imported ${entries.length} secret${entries.length === 1 ? "" : "s"} into ${environment}.`,
  );
  return 0;
}

function sortedEntries(values: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Export formats of `env export`. */
export type ExportFormat = "dotenv" | "json" | "shell";

/** `env export`: the environment's secrets on stdout. */
export async function envExport(
  ctx: Context,
  options: { environment: string; format: ExportFormat; allowOverride?: boolean },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  const { values } = await readEnvironment(ctx, environment);
  const entries = sortedEntries(values);
  // Shell exports are made to be evaluated (`eval "$(latchkey env export --format shell)"`), which sets them in the
  // user's own shell: the same names as `run` refuses. dotenv and JSON are data for a program to read.
  if (options.format === "shell" && options.allowOverride !== true)
    checkReservedNames({ kind: "export-shell" }, environment, Object.keys(values), ctx.platform.os);
  const render = { dotenv: formatDotenv, json: formatJson, shell: formatShell }[options.format];
  ctx.stdout.write(render(entries));
  return 0;
}

/** `env check`: every schema violation of the environment; exit 1 when there is any. */
export async function envCheck(
  ctx: Context,
  options: { environment: string; json: boolean },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  // An unknown environment is an error, as on every read: a typo in --env must fail the check, not pass it.
  const { vault, values } = await readEnvironment(ctx, environment);
  const { violations } = checkEnv(vault.schema, values, { applyDefaults: true });
  // Listed, not failed: setting one took --allow-override, but a vault can also arrive by `env pull`.
  const overrides = Object.keys(values)
    .filter((key) => isReservedName(key, ctx.platform.os))
    .sort();
  const c = palette(ctx.env, ctx.stdout);
  const overrideLines = overrides.map(
    (key) => `${c.yellow("!")} ${key} replaces the ${key} of every program \`latchkey run\` starts.`,
  );
  if (options.json) {
    printJson(ctx, { environment, ok: violations.length === 0, violations, overrides });
  } else if (violations.length === 0) {
    printData(
      ctx,
      [`${environment}: all ${Object.keys(vault.schema).length} schema rules hold.`, ...overrideLines].join(
        "\n",
      ),
    );
  } else {
    printData(
      ctx,
      [
        `${environment}: ${violations.length} problem(s):`,
        ...violations.map((v) => `${c.red("✗")} ${v.message}`),
        ...overrideLines,
      ].join("\n"),
    );
  }
  return violations.length === 0 ? 0 : 1;
}

/** Options of `latchkey run`; `offline` and `maxAge` as for `env get` (sync/offline.ts). */
export interface RunOptions extends OfflineFlags {
  environment: string;
  mask: boolean;
  check: boolean;
  command: readonly string[];
  /** Secrets given as files instead of variables: KEY's file path goes in KEY_FILE (`--file KEY`). */
  files?: readonly string[];
  /** Every secret in one file of this name instead of the environment; its path in LATCHKEY_SECRETS_FILE. */
  mount?: string;
  /** Start the program even when the vault or the schema's defaults set a reserved name (PATH, NODE_OPTIONS…). */
  allowOverride?: boolean;
}

/**
 * `latchkey run -- cmd args…`: the child gets this process's environment plus the vault's secrets (secrets win),
 * with schema defaults for keys set nowhere. It refuses to start when the schema is violated, unless --no-check,
 * and when it would set a reserved name, unless --allow-override. With --offline (or --max-age) it makes no
 * network request and refuses a local copy whose last sync is older than --max-age.
 */
export async function runWithSecrets(ctx: Context, state: RunState, options: RunOptions): Promise<number> {
  programOf(options);
  const environment = validateEnvName(options.environment);
  // The command line is checked before the vault is read, as it always was; startWithValues takes them again.
  for (const key of options.files ?? []) validateKeyName(key);
  const offline = offlineMaxAge(options);
  if (offline !== null) ctx = withoutNetwork(ctx);
  const vault = await openProjectVault(ctx, false);
  if (offline !== null) await checkLocalCopyAge(ctx, vault.vaultId, offline);
  const document = await readDocument(vault);
  const secrets = document[environment];
  if (secrets === undefined) throw environmentNotFound(environment, document);
  return startWithValues(ctx, state, options, { environment, secrets, schema: vault.schema });
}

/** The program `run` starts and its arguments; LK_USAGE when none is given. */
export function programOf(options: Pick<RunOptions, "command">): [string, string[]] {
  const [command, ...args] = options.command;
  if (command === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "No program given.",
      hint: "Usage: latchkey run [--env E] -- program [args…]",
    });
  }
  return [command, args];
}

/** What `run` starts a program with: one environment's values (the local vault's, or a CI pull's) and the schema. */
export interface RunValues {
  environment: string;
  secrets: Readonly<Record<string, string>>;
  schema: EnvSchema;
}

/**
 * Starts `options.command` with `values` in its environment, as `latchkey run` does from the local vault (and
 * `run --oidc` from a CI pull): --file, --mount, --mask, the envSchema check and the reserved names all apply.
 */
export async function startWithValues(
  ctx: Context,
  state: RunState,
  options: RunOptions,
  values: RunValues,
): Promise<number> {
  const [command, args] = programOf(options);
  const { environment, secrets, schema } = values;
  const fileKeys = [...new Set((options.files ?? []).map(validateKeyName))];
  const absent = fileKeys.filter((key) => !(key in secrets));
  if (absent.length > 0) throw keysNotFound(absent, environment, secrets);
  for (const key of fileKeys) {
    if (fileVariable(key) in secrets) {
      throw new LatchkeyError("LK_USAGE", {
        message: `--file ${key} would set ${fileVariable(key)}, which ${environment} already has as a secret.`,
        hint: `Rename the secret ${fileVariable(key)}, or leave ${key} in the environment.`,
      });
    }
  }
  const inherited: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.env)) if (value !== undefined) inherited[key] = value;
  const merged = { ...inherited, ...secrets };
  const schemaKeys = Object.keys(schema);
  const checked = checkEnv(
    schema,
    Object.fromEntries(schemaKeys.filter((k) => k in merged).map((k) => [k, merged[k]!])),
    {
      applyDefaults: true,
    },
  );
  if (options.check && checked.violations.length > 0) {
    throw new LatchkeyError("LK_ENV_CHECK_FAILED", {
      message: `Not starting ${command}: ${environment} does not satisfy envSchema:\n${checked.violations.map((v) => `  - ${v.message}`).join("\n")}`,
      hint: "Set the missing or invalid values with `latchkey env set`, or pass --no-check to start anyway.",
    });
  }
  const withDefaults = { ...checked.values, ...merged };
  // What Latchkey adds to the environment it inherited: the vault's secrets and the schema's defaults.
  const added = Object.keys(withDefaults).filter((key) => key in secrets || !(key in inherited));
  if (options.allowOverride !== true && options.mount === undefined) {
    checkReservedNames(
      { kind: "run", program: command },
      environment,
      added.filter((key) => !fileKeys.includes(key)),
      ctx.platform.os,
    );
  }
  // With --mount the vault is in the file only: the program's environment is what it would be without Latchkey.
  const env: Record<string, string> = options.mount === undefined ? withDefaults : { ...inherited };
  let files: SecretFiles | null = null;
  if (fileKeys.length > 0 || options.mount !== undefined) {
    const vaultAndDefaults = Object.fromEntries(added.map((key) => [key, withDefaults[key]!]));
    files = await writeSecretFiles(ctx, {
      files: fileKeys.map((key) => [key, secrets[key]!] as const),
      ...(options.mount === undefined
        ? {}
        : { mount: { name: options.mount, entries: sortedEntries(vaultAndDefaults) } }),
    });
    for (const key of fileKeys) delete env[key];
    Object.assign(env, files.env);
  }
  try {
    const outcome = await runProgram(ctx, {
      command,
      args,
      env,
      mask: options.mask ? Object.values(secrets) : null,
      // The files are removed once the program ends, so this process must outlive it.
      stayParent: files !== null,
    });
    if (outcome.signal) state.signal = outcome.signal;
    return outcome.code ?? 1;
  } finally {
    files?.remove();
  }
}
