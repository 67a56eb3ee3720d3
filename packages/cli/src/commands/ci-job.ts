// `env pull --oidc` and `run --oidc`: what a CI job runs (docs/ci.md, "In the workflow"). ci/ci-pull.ts gets the
// environment; this prints it, writes it, or starts the program with it through `run`'s own machinery.
import {
  LatchkeyError,
  formatDotenv,
  formatJson,
  formatShell,
  parseEnvSchema,
  type EnvSchema,
} from "@latchkey/core";
import type { Command } from "commander";
import { resolve } from "node:path";
import type { Context } from "../context.js";
import { pullWithOidc, type OidcPull, type OidcPullOptions } from "../ci/ci-pull.js";
import { writeFileAtomic } from "../fs/safe-file.js";
import { printJson, printStatus } from "../output/output.js";
import { checkReservedNames } from "../vault/names.js";
import { programOf, startWithValues, type ExportFormat, type RunOptions } from "./env.js";
import type { RunState } from "./support.js";

/**
 * The options of a CI job's pull (`run --oidc`, `env pull --oidc`), valid only with --oidc; `server: false` for a
 * command that has --server already.
 */
export function addOidcOptions(command: Command, { server = true } = {}): Command {
  command.option(
    "--oidc",
    "CI jobs: pull the environment from the server with the job's OIDC ID token (no keychain, no login)",
  );
  if (server) command.option("--server <url>", "with --oidc: the Latchkey server (default: LATCHKEY_SERVER)");
  return command
    .option(
      "--audience <aud>",
      "with --oidc on GitHub: the token's audience (default: LATCHKEY_OIDC_AUDIENCE, else the server's URL)",
    )
    .option(
      "--token-env <name>",
      "with --oidc on GitLab: the variable holding the job's token (default: LATCHKEY_OIDC_TOKEN)",
    );
}

/** The --oidc options given, as the CI pull takes them. */
export interface OidcFlags {
  oidc?: boolean;
  server?: string;
  audience?: string;
  tokenEnv?: string;
  org?: string;
  personal?: boolean;
}

/** Refuses the options that mean something only with --oidc when it is absent. */
export function refuseOidcOnly(flags: OidcFlags, without: string): void {
  if (flags.oidc === true) return;
  const given = (
    [
      ["--server", flags.server],
      ["--audience", flags.audience],
      ["--token-env", flags.tokenEnv],
    ] as const
  )
    .filter(([, value]) => value !== undefined)
    .map(([name]) => name);
  if (given.length > 0) {
    throw new LatchkeyError("LK_USAGE", {
      message: `${given.join(", ")} ${given.length === 1 ? "is" : "are"} for --oidc, which ${without}.`,
      hint: "Add --oidc in a CI job (`latchkey setup ci --oidc` prints one), or leave them out.",
    });
  }
}

/** The CI pull's options from the flags; --env only when given on the command line (else the token's one). */
export function oidcOptions(flags: OidcFlags, command: Command, env: string, verbose: number) {
  return {
    verbose,
    ...(command.getOptionValueSource("env") === "default" ? {} : { environment: env }),
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.audience === undefined ? {} : { audience: flags.audience }),
    ...(flags.tokenEnv === undefined ? {} : { tokenEnv: flags.tokenEnv }),
    ...(flags.org === undefined ? {} : { org: flags.org }),
    ...(flags.personal === true ? { personal: true } : {}),
  };
}

/** What --oidc means, for the help of `run` and `env pull`. */
export const OIDC_HELP =
  "With --oidc (in a CI job) the environment comes from the server, not a local vault: the job's OIDC\n" +
  "ID token (GitHub Actions: asked of the runner, which needs `permissions: id-token: write`; GitLab\n" +
  "CI: LATCHKEY_OIDC_TOKEN from the job's `id_tokens:` block, or --token-env NAME) is exchanged for a\n" +
  "CI access token of a few minutes, which pulls one environment as the vault's CI policy allows\n" +
  "(`latchkey env ci enable`). The server is --server or LATCHKEY_SERVER; the vault latchkey.json's or\n" +
  "LATCHKEY_VAULT_ID; --org SLUG (or latchkey.json's \"org\") for an organisation's copy. Without --env:\n" +
  "the one environment the job's token is bound to. No keychain, login or local vault is used, and\n" +
  "nothing is written under ~/.latchkey.";

/** Options of `env pull --oidc`. */
export interface EnvPullOidcOptions extends OidcPullOptions {
  format: ExportFormat;
  /** Write the environment to this file (0600, atomically) instead of stdout. */
  output?: string;
  /** With --output: a summary as JSON on stdout (names, never values). */
  json?: boolean;
  /** With --format shell: print reserved names (PATH, NODE_OPTIONS…) too. */
  allowOverride?: boolean;
}

function sortedEntries(values: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * GitHub Actions' `::add-mask::` for each line of each value the vault holds (not the envSchema's defaults, which
 * the repository shows anyway, nor blank lines, which would mask every space of the log), so the runner hides them
 * wherever the job prints them. Its command data escapes `%`, CR and LF (as @actions/core's escapeData does).
 */
export function addMasks(ctx: Context, pull: Pick<OidcPull, "values" | "defaulted">): void {
  if (ctx.env.GITHUB_ACTIONS !== "true") return;
  const defaulted = new Set(pull.defaulted);
  const lines = new Set<string>();
  for (const [key, value] of Object.entries(pull.values)) {
    if (defaulted.has(key)) continue;
    for (const line of value.split(/\r?\n|\r/)) if (line.trim() !== "") lines.add(line);
  }
  let out = "";
  for (const line of lines) out += `::add-mask::${line.replace(/%/g, "%25")}\n`;
  if (out !== "") ctx.stdout.write(out);
}

const describePull = (pull: OidcPull, keys: number): string =>
  `${pull.environment} of ${pull.org === null ? `vault ${pull.vaultId}` : `organisation ${pull.org}'s copy of vault ${pull.vaultId}`} (version ${pull.version}, ${keys} key${keys === 1 ? "" : "s"}) for ${pull.name}`;

/**
 * `env pull --oidc`: the environment the job may pull, as dotenv, JSON or shell exports — on stdout, or with
 * --output into that file (0600, atomic, never through a symbolic link). No local vault, keystore or session is
 * touched.
 */
export async function envPullOidc(ctx: Context, options: EnvPullOidcOptions): Promise<number> {
  if (options.json === true && options.output === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        "--json with --oidc prints a summary, which needs the values to go elsewhere: add --output FILE, or use --format json to print the values as JSON.",
      hint: "e.g. `latchkey env pull --oidc --output .env --json`.",
    });
  }
  const outputPath = options.output === undefined ? undefined : resolve(ctx.cwd, options.output);
  const pull = await pullWithOidc(ctx, options);
  const entries = sortedEntries(pull.values);
  // Shell exports are made to be evaluated, which sets them in the job's own shell: what `run` refuses.
  if (options.format === "shell" && options.allowOverride !== true) {
    checkReservedNames(
      { kind: "export-shell", command: "latchkey env pull --oidc --format shell" },
      pull.environment,
      Object.keys(pull.values),
      ctx.platform.os,
    );
  }
  const render = { dotenv: formatDotenv, json: formatJson, shell: formatShell }[options.format];
  if (outputPath === undefined) {
    ctx.stdout.write(render(entries));
    printStatus(ctx, `Pulled ${describePull(pull, entries.length)}.`);
    return 0;
  }
  await writeFileAtomic(outputPath, render(entries));
  addMasks(ctx, pull);
  if (options.json === true) {
    printJson(ctx, {
      server: pull.server,
      vaultId: pull.vaultId,
      org: pull.org,
      environment: pull.environment,
      version: pull.version,
      name: pull.name,
      output: outputPath,
      keys: entries.map(([key]) => key),
      defaulted: pull.defaulted,
    });
  } else {
    printStatus(ctx, `Wrote ${describePull(pull, entries.length)} to ${outputPath}.`);
  }
  return 0;
}

/** The envSchema of the checkout's latchkey.json, which `run` checks the values against (none: no rules). */
function projectSchema(pull: OidcPull): EnvSchema {
  const project = pull.project;
  return parseEnvSchema(project?.config.envSchema, project?.file ?? "latchkey.json");
}

/**
 * `run --oidc -- program args…`: the environment the job may pull, then the program started as `latchkey run`
 * starts it (envSchema check, reserved names, --file, --mount, --mask). Under GitHub Actions every value is
 * registered as a mask on stdout first, so the job's log hides it.
 */
export async function runWithOidc(
  ctx: Context,
  state: RunState,
  options: Omit<RunOptions, "environment"> & OidcPullOptions,
): Promise<number> {
  programOf(options);
  if (options.offline === true || options.maxAge !== undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        "--oidc pulls from the server, and --offline (or --max-age) forbids the network: give one of them.",
      hint: "In a CI job: `latchkey run --oidc --env production -- …`.",
    });
  }
  const pull = await pullWithOidc(ctx, options);
  const schema = projectSchema(pull);
  addMasks(ctx, pull);
  return startWithValues(
    ctx,
    state,
    { ...options, environment: pull.environment },
    { environment: pull.environment, secrets: pull.values, schema },
  );
}
