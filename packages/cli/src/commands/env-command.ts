import { Command, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { DEFAULT_MAX_AGE } from "../sync/offline.js";
import { DEFAULT_ENVIRONMENT } from "../vault/names.js";
import {
  envCheck,
  envEnvs,
  envExport,
  envGet,
  envImport,
  envList,
  envSet,
  envUnset,
  runWithSecrets,
  type ExportFormat,
} from "./env.js";
import { globalOptions, type RunState } from "./support.js";
import { addCiCommands } from "./ci-command.js";
import { addPlatformCommands } from "./platforms-command.js";
import {
  OIDC_HELP,
  addOidcOptions,
  oidcOptions,
  refuseOidcOnly,
  runWithOidc,
  type OidcFlags,
} from "./ci-job.js";
import { addEnvPairCommand } from "./pair-command.js";
import { addSharingKeyCommands } from "./sharing-command.js";
import { addSyncCommands } from "./sync-command.js";

function envOption(): Option {
  return new Option("-e, --env <name>", "environment").default(DEFAULT_ENVIRONMENT);
}

/** --offline and --max-age, as `run` and `env get` take them (sync/offline.ts). */
function addOfflineOptions(command: Command): Command {
  return command
    .option(
      "--offline",
      "use the local copy only, with no network request; refuse it when its last push or pull is older than --max-age",
    )
    .option(
      "--max-age <duration>",
      `the oldest last sync --offline accepts: 30m, 24h, 7d… (default ${DEFAULT_MAX_AGE}; implies --offline)`,
    );
}

/** What --offline means, for the help of `run` and `env get`. */
const OFFLINE_HELP =
  "With --offline the command makes no network request of any kind (it reads only the local copy anyway;\n" +
  "--offline makes that a promise), and a vault this machine has pushed or pulled is used only if its last\n" +
  `successful push or pull is at most --max-age old (default ${DEFAULT_MAX_AGE}), else LK_VAULT_STALE. A vault this\n` +
  "machine never synced is purely local and always passes. --max-age alone implies --offline.\n" +
  "`latchkey env status` shows when each vault was last synced.";

/** Adds the `run` options and action to a command (used by `latchkey run` and `latchkey env run`). */
function defineRun(command: Command, ctx: Context, state: RunState): Command {
  command
    .description("run a program with this project's secrets in its environment")
    .addOption(envOption())
    .option("--mask", "replace every secret value in the program's stdout/stderr with *****")
    .option("--no-check", "start even when envSchema is not satisfied")
    .option(
      "--allow-override",
      "start even when the vault sets a variable programs rely on to start (PATH, NODE_OPTIONS, LD_PRELOAD…)",
    )
    .option(
      "--file <key>",
      "give secret KEY as a private file instead of a variable: its path goes in KEY_FILE (repeatable)",
      (key: string, keys: string[]) => [...keys, key],
      [] as string[],
    )
    .option(
      "--mount <name>",
      "write every secret to one private file NAME (.json: JSON, else dotenv) instead of the environment; its path goes in LATCHKEY_SECRETS_FILE",
    );
  addOidcOptions(addOfflineOptions(command))
    .option(
      "--org <slug>",
      "with --oidc: the organisation's copy of the vault (default: latchkey.json's \"org\")",
    )
    .option("--personal", "with --oidc: your personal copy, even where latchkey.json names an organisation");
  return command
    .argument("<command...>", "the program and its arguments (after --)")
    .passThroughOptions()
    .addHelpText(
      "after",
      "\nThe program gets this shell's environment plus the vault's secrets (the vault wins), with envSchema\n" +
        "defaults for keys set nowhere. Its exit code and termination signal are passed through; SIGINT and\n" +
        "SIGTERM are forwarded to it; stdin and the terminal stay the program's (with --mask its output goes\n" +
        "through a pipe). Secrets travel only in the environment, never in argv.\n\n" +
        "A variable may take at most 128 KiB on Linux; larger secrets go in files: --file KEY or --mount NAME\n" +
        "write them (0600) to a private directory under $XDG_RUNTIME_DIR or the temp directory, removed when\n" +
        "the program ends.\n\n" +
        "A secret named like a variable programs rely on to start or to choose their code (PATH, HOME,\n" +
        "NODE_OPTIONS, LD_*, LATCHKEY_*…) stops the program from starting unless --allow-override is given: a\n" +
        "vault pulled from elsewhere must not choose the code your program runs.\n\n" +
        `${OFFLINE_HELP}\n\n` +
        `${OIDC_HELP} Under GitHub Actions (GITHUB_ACTIONS=true)\n` +
        "each value is first registered with `::add-mask::` on stdout, so the job's log hides it.\n\n" +
        "Examples:\n  latchkey run --env staging -- npm start\n" +
        "  latchkey run --file TLS_KEY -- sh -c 'server --key \"$TLS_KEY_FILE\"'\n" +
        "  latchkey run --offline --max-age 7d -- npm test\n" +
        "  latchkey run --oidc --env production -- npm test        (in a CI job)",
    )
    .action(
      async (
        argv: string[],
        opts: OidcFlags & {
          env: string;
          mask?: boolean;
          check: boolean;
          allowOverride?: boolean;
          file: string[];
          mount?: string;
          offline?: boolean;
          maxAge?: string;
        },
        self: Command,
      ) => {
        const run = {
          mask: opts.mask === true,
          check: opts.check,
          allowOverride: opts.allowOverride === true,
          command: argv,
          files: opts.file,
          ...(opts.mount === undefined ? {} : { mount: opts.mount }),
          offline: opts.offline === true,
          ...(opts.maxAge === undefined ? {} : { maxAge: opts.maxAge }),
        };
        if (opts.oidc === true) {
          const verbose = globalOptions(self).verbose;
          state.exitCode = await runWithOidc(ctx, state, {
            ...run,
            ...oidcOptions(opts, self, opts.env, verbose),
          });
          return;
        }
        refuseOidcOnly(opts, "reads the local vault without it");
        if (opts.org !== undefined || opts.personal === true) {
          throw new LatchkeyError("LK_USAGE", {
            message:
              "--org and --personal choose the copy --oidc pulls; without --oidc, run reads this machine's vault.",
            hint: "Add --oidc in a CI job, or leave them out.",
          });
        }
        state.exitCode = await runWithSecrets(ctx, state, { ...run, environment: opts.env });
      },
    );
}

/** Builds `latchkey run`. */
export function runCommand(ctx: Context, state: RunState): Command {
  return defineRun(new Command("run"), ctx, state);
}

/** Builds `latchkey env …`. */
export function envCommand(ctx: Context, state: RunState): Command {
  const env = new Command("env")
    .description("this project's secrets vault, per environment (--env, default: default)")
    // `env run` passes everything after the program name through untouched, which commander allows only here.
    .enablePositionalOptions();
  env.addHelpText(
    "after",
    "\nThe vault belongs to the project: its id lives in latchkey.json (created on first `env set`), its\n" +
      "secrets in ~/.latchkey/vaults/<id>.enc, encrypted with a key only this machine's keystore can unwrap.",
  );
  env
    .command("set")
    .description("set secrets: KEY=VALUE…, or KEY alone to read the value from stdin or a masked prompt")
    .addOption(envOption())
    .option("--allow-empty", "store an empty value from stdin or the prompt without asking")
    .option(
      "--allow-override",
      "allow names that replace a variable programs rely on (PATH, HOME, LD_PRELOAD…)",
    )
    .argument("<assignments...>", "KEY=VALUE pairs, or one KEY")
    .addHelpText(
      "after",
      "\nValues given as KEY=VALUE are visible to other users in `ps` and stay in your shell history.\n" +
        'The safe ways: `latchkey env set KEY` at the masked prompt, or `printf %s "$V" | latchkey env set KEY`.',
    )
    .action(
      async (assignments: string[], opts: { env: string; allowEmpty?: boolean; allowOverride?: boolean }) => {
        state.exitCode = await envSet(ctx, {
          environment: opts.env,
          assignments,
          allowEmpty: opts.allowEmpty === true,
          allowOverride: opts.allowOverride === true,
        });
      },
    );
  addOfflineOptions(
    env
      .command("get")
      .description(
        "print one secret's value on stdout: exactly its bytes (a newline after it only on a terminal)",
      )
      .addOption(envOption()),
  )
    .argument("<key>")
    .addHelpText("after", `\n${OFFLINE_HELP}`)
    .action(async (key: string, opts: { env: string; offline?: boolean; maxAge?: string }) => {
      state.exitCode = await envGet(ctx, {
        environment: opts.env,
        key,
        offline: opts.offline === true,
        ...(opts.maxAge === undefined ? {} : { maxAge: opts.maxAge }),
      });
    });
  env
    .command("list")
    .description("list secret names (values with --show; schema-secret values only with --reveal)")
    .addOption(envOption())
    .option("--show", "show values, masking keys marked secret in envSchema")
    .option("--reveal", "show every value, including keys marked secret")
    .option("--json", "print JSON")
    .action(async (opts: { env: string; show?: boolean; reveal?: boolean; json?: boolean }) => {
      state.exitCode = await envList(ctx, {
        environment: opts.env,
        show: opts.show === true,
        reveal: opts.reveal === true,
        json: opts.json === true,
      });
    });
  env
    .command("unset")
    .description("remove secrets")
    .addOption(envOption())
    .argument("<keys...>")
    .action(async (keys: string[], opts: { env: string }) => {
      state.exitCode = await envUnset(ctx, { environment: opts.env, keys });
    });
  env
    .command("envs")
    .description("list the vault's environments")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      state.exitCode = await envEnvs(ctx, { json: opts.json === true });
    });
  env
    .command("import")
    .description("import a dotenv file (- for stdin) into the environment")
    .addOption(envOption())
    .option(
      "--allow-override",
      "allow names that replace a variable programs rely on (PATH, HOME, LD_PRELOAD…)",
    )
    .argument("<file>")
    .action(async (file: string, opts: { env: string; allowOverride?: boolean }) => {
      state.exitCode = await envImport(ctx, {
        environment: opts.env,
        file,
        allowOverride: opts.allowOverride === true,
      });
    });
  env
    .command("export")
    .description("print the environment as dotenv, JSON or shell exports")
    .addOption(envOption())
    .addOption(
      new Option("--format <format>", "output format").choices(["dotenv", "json", "shell"]).default("dotenv"),
    )
    .option(
      "--allow-override",
      "with --format shell, also print reserved names (PATH, NODE_OPTIONS, LD_PRELOAD, …) from the vault",
    )
    .action(async (opts: { env: string; format: ExportFormat; allowOverride?: boolean }) => {
      state.exitCode = await envExport(ctx, {
        environment: opts.env,
        format: opts.format,
        allowOverride: opts.allowOverride === true,
      });
    });
  env
    .command("check")
    .description(
      "check the environment against envSchema in latchkey.json (exit 1 on any violation); list secrets that replace reserved variables",
    )
    .addOption(envOption())
    .option("--json", "print JSON")
    .action(async (opts: { env: string; json?: boolean }) => {
      state.exitCode = await envCheck(ctx, { environment: opts.env, json: opts.json === true });
    });
  defineRun(env.command("run"), ctx, state);
  addSyncCommands(env, ctx, state);
  addEnvPairCommand(env, ctx, state);
  addSharingKeyCommands(env, ctx, state);
  addCiCommands(env, ctx, state);
  addPlatformCommands(env, ctx, state);
  return env;
}
