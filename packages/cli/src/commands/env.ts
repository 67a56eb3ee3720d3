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
import fs from "node:fs";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { readSecretInput } from "../input.js";
import { palette, printData, printJson, printStatus } from "../output/output.js";
import { loadOrCreateProject, resolveVaultId } from "../project/project.js";
import { runProgram } from "../run/replace.js";
import { parseAssignment, validateEnvName, validateKeyName, validateValue } from "../vault/names.js";
import { readVault, updateVault, vaultKeyAccount, type VaultStoreDeps } from "../vault/vault-store.js";
import type { RunState } from "./support.js";

/** A project's vault as commands use it. */
interface ProjectVault {
  readonly vaultId: string;
  readonly schema: EnvSchema;
  readonly deps: VaultStoreDeps;
}

/**
 * The project's vault. Writes create latchkey.json (or add its vault id) on first use; reads never write, and
 * fail with LK_PROJECT_NOT_FOUND when there is no project. LATCHKEY_VAULT_ID overrides the file.
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
  const schema = parseEnvSchema(project?.config.envSchema, project?.file ?? "latchkey.json");
  // Every vault read starts with this vault's wrapped key.
  const { keystore } = await ctx.keystore(vaultKeyAccount(vaultId));
  return {
    vaultId,
    schema,
    deps: { keystore, home: ctx.paths.home, vaultsDir: ctx.paths.vaults, random: ctx.random },
  };
}

async function readEnvironment(
  ctx: Context,
  environment: string,
): Promise<{ vault: ProjectVault; values: Record<string, string> }> {
  const vault = await openProjectVault(ctx, false);
  const document = await readVault(vault.deps, vault.vaultId);
  const values = document[environment];
  if (values === undefined) {
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `The vault has no environment named ${environment}.`,
      details: { environment, environments: Object.keys(document).sort() },
    });
  }
  return { vault, values };
}

function checkAgainstSchema(schema: EnvSchema, key: string, value: string): void {
  const { violations } = checkEnv({ [key]: schema[key]! }, { [key]: value }, { applyDefaults: false });
  if (violations.length > 0) {
    throw new LatchkeyError("LK_ENV_CHECK_FAILED", { message: violations.map((v) => v.message).join("\n") });
  }
}

/** Writes entries into an environment after checking each against envSchema; nothing is written if one fails. */
async function storeEntries(
  ctx: Context,
  environment: string,
  entries: readonly (readonly [string, string])[],
): Promise<void> {
  const vault = await openProjectVault(ctx, true);
  for (const [key, value] of entries) if (vault.schema[key]) checkAgainstSchema(vault.schema, key, value);
  await updateVault(vault.deps, vault.vaultId, (document) => {
    const target = (document[environment] ??= {});
    for (const [key, value] of entries) target[key] = value;
    return { result: undefined, changed: true };
  });
}

/** `env set KEY=VALUE…` or `env set KEY` (value from stdin or a masked prompt). */
export async function envSet(
  ctx: Context,
  options: { environment: string; assignments: readonly string[] },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  const parsed = options.assignments.map(parseAssignment);
  const missing = parsed.filter((p) => p.value === undefined);
  if (missing.length > 0 && parsed.length > 1) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Give every value as KEY=VALUE, or set one KEY at a time to read its value from stdin.",
    });
  }
  const entries: [string, string][] = [];
  for (const { key, value } of parsed) {
    entries.push([key, value ?? validateValue(key, await readSecretInput(ctx, `Value for ${key}`))]);
  }
  await storeEntries(ctx, environment, entries);
  printStatus(ctx, `Set ${entries.map(([k]) => k).join(", ")} in ${environment}.`);
  return 0;
}

/** `env get KEY`: the value alone on stdout. */
export async function envGet(ctx: Context, options: { environment: string; key: string }): Promise<number> {
  const key = validateKeyName(options.key);
  const { values } = await readEnvironment(ctx, validateEnvName(options.environment));
  const value = values[key];
  if (value === undefined) {
    throw new LatchkeyError("LK_ENV_KEY_NOT_FOUND", {
      message: `${key} is not set in ${options.environment}.`,
    });
  }
  ctx.stdout.write(value);
  if (ctx.stdout.isTTY) ctx.stdout.write("\n");
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
  const removed = await updateVault(vault.deps, vault.vaultId, (document) => {
    const target = document[environment];
    if (target === undefined) {
      throw new LatchkeyError("LK_ENV_NOT_FOUND", {
        message: `The vault has no environment named ${environment}.`,
      });
    }
    const gone = keys.filter((key) => key in target);
    for (const key of gone) delete target[key];
    return { result: gone, changed: gone.length > 0 };
  });
  const absent = keys.filter((key) => !removed.includes(key));
  if (removed.length > 0) printStatus(ctx, `Removed ${removed.join(", ")} from ${environment}.`);
  if (absent.length > 0) {
    throw new LatchkeyError("LK_ENV_KEY_NOT_FOUND", {
      message: `Not set in ${environment}: ${absent.join(", ")}.`,
    });
  }
  return 0;
}

/** `env envs`: the environments of this project's vault. */
export async function envEnvs(ctx: Context, options: { json: boolean }): Promise<number> {
  const vault = await openProjectVault(ctx, false);
  const document = await readVault(vault.deps, vault.vaultId);
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
  return Object.keys(await readVault(vault.deps, vault.vaultId)).sort();
}

/** `env import FILE`: dotenv into the environment; `-` reads stdin. */
export async function envImport(
  ctx: Context,
  options: { environment: string; file: string },
): Promise<number> {
  const environment = validateEnvName(options.environment);
  const source = options.file === "-" ? "stdin" : resolve(ctx.cwd, options.file);
  let text: string;
  try {
    text =
      options.file === "-"
        ? Buffer.from(await ctx.stdin.readAll()).toString("utf8")
        : await fs.promises.readFile(source, "utf8");
  } catch (error) {
    throw new LatchkeyError("LK_FILE_IO", { message: `Could not read ${source}.`, cause: error });
  }
  const entries = parseDotenv(text, source);
  await storeEntries(ctx, environment, entries);
  printStatus(
    ctx,
    `Imported ${entries.length} secret${entries.length === 1 ? "" : "s"} into ${environment}.`,
  );
  return 0;
}

/** Export formats of `env export`. */
export type ExportFormat = "dotenv" | "json" | "shell";

/** `env export`: the environment's secrets on stdout. */
export async function envExport(
  ctx: Context,
  options: { environment: string; format: ExportFormat },
): Promise<number> {
  const { values } = await readEnvironment(ctx, validateEnvName(options.environment));
  const entries = Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
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
  if (options.json) {
    printJson(ctx, { environment, ok: violations.length === 0, violations });
  } else if (violations.length === 0) {
    printData(ctx, `${environment}: all ${Object.keys(vault.schema).length} schema rules hold.`);
  } else {
    const c = palette(ctx.env, ctx.stdout);
    printData(
      ctx,
      [
        `${environment}: ${violations.length} problem(s):`,
        ...violations.map((v) => `${c.red("✗")} ${v.message}`),
      ].join("\n"),
    );
  }
  return violations.length === 0 ? 0 : 1;
}

/** Options of `latchkey run`. */
export interface RunOptions {
  environment: string;
  mask: boolean;
  check: boolean;
  command: readonly string[];
}

/**
 * `latchkey run -- cmd args…`: the child gets this process's environment plus the vault's secrets (secrets win),
 * with schema defaults for keys set nowhere. It refuses to start when the schema is violated, unless --no-check.
 */
export async function runWithSecrets(ctx: Context, state: RunState, options: RunOptions): Promise<number> {
  const [command, ...args] = options.command;
  if (command === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "No program given.",
      hint: "Usage: latchkey run [--env E] -- program [args…]",
    });
  }
  const environment = validateEnvName(options.environment);
  const vault = await openProjectVault(ctx, false);
  const document = await readVault(vault.deps, vault.vaultId);
  const secrets = document[environment];
  if (secrets === undefined) {
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `The vault has no environment named ${environment}.`,
    });
  }
  const inherited: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.env)) if (value !== undefined) inherited[key] = value;
  const merged = { ...inherited, ...secrets };
  const schema = vault.schema;
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
  const env = { ...checked.values, ...merged };
  const outcome = await runProgram(ctx, {
    command,
    args,
    env,
    mask: options.mask ? Object.values(secrets ?? {}) : null,
  });
  if (outcome.signal) state.signal = outcome.signal;
  return outcome.code ?? 1;
}
