import type { Command } from "commander";
import { Option } from "commander";
import type { Context } from "../context.js";
import { DEFAULT_ENVIRONMENT } from "../vault/names.js";
import {
  envLog,
  envPull,
  envPush,
  envRotateKey,
  envShare,
  envStatus,
  type SyncCommandOptions,
} from "./sync.js";
import { LatchkeyError } from "@latchkey/core";
import {
  OIDC_HELP,
  addOidcOptions,
  envPullOidc,
  oidcOptions,
  refuseOidcOnly,
  type OidcFlags,
} from "./ci-job.js";
import type { ExportFormat } from "./env.js";
import { TRUSTING_KEYS_HELP, TRUST_NEW_MEMBERS_HELP } from "./org-command.js";
import { globalOptions, type RunState } from "./support.js";

interface ServerFlags {
  server?: string;
  profile?: string;
  json?: boolean;
  force?: boolean;
  org?: string;
  personal?: boolean;
}

/** --org and --personal, for the commands that work on either copy of the vault. */
export function withCopyOptions(command: Command): Command {
  return command
    .option("--org <slug>", "the organisation's copy of the vault (default: latchkey.json's \"org\", if any)")
    .option("--personal", "your personal copy, even where latchkey.json names an organisation");
}

/** The copy `--org` and `--personal` chose, as the sync functions take it. */
export function copyOptions(flags: { org?: string; personal?: boolean }): {
  org?: string;
  personal?: boolean;
} {
  return {
    ...(flags.org === undefined ? {} : { org: flags.org }),
    ...(flags.personal === true ? { personal: true } : {}),
  };
}

const ORG_COPY_HELP =
  '\nWith --org SLUG (or "org": "SLUG" in latchkey.json; --personal overrides it) the command works on the\n' +
  "organisation's copy: sealed with the organisation's vault key, which the server holds wrapped for each\n" +
  "member's sharing key. Its versions are counted apart from your personal copy's (vaultSync.orgVersions in\n" +
  "latchkey.json), with the same conflict and rollback rules. See `latchkey org --help`.";

function withServerOptions(command: Command): Command {
  return command
    .option("--server <url>", "the Latchkey server (default: the profile's)")
    .option("--profile <name>", "the profile whose server session to use")
    .option("--json", "print JSON");
}

function syncOptions(command: Command, flags: ServerFlags): SyncCommandOptions {
  return {
    verbose: globalOptions(command).verbose,
    json: flags.json === true,
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.profile === undefined ? {} : { profile: flags.profile }),
  };
}

/** Adds `push`, `share`, `pull`, `status`, `rotate-key` and `log` to `latchkey env`. */
export function addSyncCommands(env: Command, ctx: Context, state: RunState): void {
  withCopyOptions(
    withServerOptions(
      env
        .command("push")
        .description("send the whole vault (every environment), end-to-end encrypted, to the Latchkey server")
        .option("--force", "push a new version even when nothing changed since the last push or pull"),
    ),
  )
    .addHelpText(
      "after",
      "\nThe server gets ciphertext and this machine's wrapped vault key only. A push based on an older version\n" +
        "than the server's is refused: run `latchkey env pull`, then push again. When the secrets, the envSchema\n" +
        "and the name are what this machine last pushed or pulled, nothing is sent and no version is made.\n" +
        `${ORG_COPY_HELP}\n` +
        "A push of an organisation's copy needs a pull of it first (the organisation's key comes with it).\n\n" +
        "Examples:\n  latchkey env push\n  latchkey env push --org acme",
    )
    .action(async (flags: ServerFlags, command: Command) => {
      state.exitCode = await envPush(ctx, {
        ...syncOptions(command, flags),
        ...copyOptions(flags),
        force: flags.force === true,
      });
    });
  withServerOptions(
    env
      .command("share")
      .description("share the vault with an organisation: wrap its key for every member (maintainer)")
      .option("--org <slug>", 'the organisation (default: latchkey.json\'s "org")')
      .option("--new-key", "seal it with a new organisation vault key (as `latchkey org rotate-keys` does)")
      .option("--trust-new-members", TRUST_NEW_MEMBERS_HELP),
  )
    .addHelpText(
      "after",
      "\nPushes the vault as the next version of the organisation's copy (the first share creates it) with its\n" +
        "vault key wrapped for every member who has a sharing key; the keys it had before are replaced by these.\n" +
        "Members still waiting for a sharing key are listed. A member added later (or one who replaced their\n" +
        "sharing key) gets access when a maintainer runs `latchkey env share --org SLUG` again: a plain push never\n" +
        "hands the key to anyone new. The same rules as a push: based on an older version it is refused, and a\n" +
        "copy the organisation already has must be pulled first (`latchkey env pull --org SLUG`).\n\n" +
        `${TRUSTING_KEYS_HELP}\n\n` +
        "Examples:\n  latchkey env share --org acme\n  latchkey env share --org acme --json",
    )
    .action(
      async (flags: ServerFlags & { newKey?: boolean; trustNewMembers?: boolean }, command: Command) => {
        state.exitCode = await envShare(ctx, {
          ...syncOptions(command, flags),
          ...(flags.org === undefined ? {} : { org: flags.org }),
          newKey: flags.newKey === true,
          trustNewMembers: flags.trustNewMembers === true,
        });
      },
    );
  const pull = withCopyOptions(
    withServerOptions(
      env
        .command("pull")
        .description("fetch the server's copy of the vault and merge it with local changes")
        .addOption(
          new Option("-e, --env <name>", "the environment --output writes").default(DEFAULT_ENVIRONMENT),
        )
        .option("-o, --output <file>", "also write that environment as a dotenv file (mode 0600)")
        .option("--trust-new-members", TRUST_NEW_MEMBERS_HELP),
    ),
  );
  addOidcOptions(pull, { server: false })
    .addOption(
      new Option("--format <format>", "with --oidc: how the environment is printed or written").choices([
        "dotenv",
        "json",
        "shell",
      ]),
    )
    .option(
      "--allow-override",
      "with --oidc --format shell: also print reserved names (PATH, NODE_OPTIONS, LD_PRELOAD, …)",
    )
    .addHelpText(
      "after",
      "\nKeys changed only here stay, keys changed only on the server are taken, keys changed on both sides keep\n" +
        "the local value and are listed (names only) so the next push settles them. A version older than one this\n" +
        `machine has seen is refused.\n${ORG_COPY_HELP}\n\n` +
        "An organisation's key opens only as wrapped by the member who shared it, from the sharing key this\n" +
        "machine pinned for them (org-keys.json), and never at a key version older than one it has had. A sharer\n" +
        "whose key changed is refused (LK_ORG_MEMBER_KEY_CHANGED: check the fingerprint with them, then\n" +
        "`latchkey org trust SLUG EMAIL FINGERPRINT`); one never seen is asked about on a terminal, and refused\n" +
        "without one (LK_ORG_MEMBER_UNTRUSTED) unless --trust-new-members.\n\n" +
        `${OIDC_HELP} The environment goes to stdout, or\n` +
        "with --output FILE into that file (0600, replaced atomically, never through a symbolic link; under\n" +
        "GitHub Actions each value is then registered with `::add-mask::`), as --format says (dotenv).\n\n" +
        "Examples:\n  latchkey env pull\n  latchkey env pull --org acme -e staging -o .env\n" +
        "  latchkey env pull --org acme --trust-new-members   (a script's first pull)\n" +
        "  latchkey env pull --oidc --env production --output .env   (in a CI job)\n" +
        "  latchkey env pull --oidc --format json > env.json",
    )
    .action(
      async (
        flags: ServerFlags &
          OidcFlags & {
            env: string;
            output?: string;
            trustNewMembers?: boolean;
            format?: ExportFormat;
            allowOverride?: boolean;
          },
        command: Command,
      ) => {
        if (flags.oidc === true) {
          for (const [given, name] of [
            [flags.profile !== undefined, "--profile"],
            [flags.trustNewMembers === true, "--trust-new-members"],
          ] as const) {
            if (given) {
              throw new LatchkeyError("LK_USAGE", {
                message: `${name} is not for --oidc: a CI pull uses no profile, no session and no organisation key.`,
                hint: "Leave it out; the server is --server or LATCHKEY_SERVER.",
              });
            }
          }
          state.exitCode = await envPullOidc(ctx, {
            ...oidcOptions(flags, command, flags.env, globalOptions(command).verbose),
            format: flags.format ?? "dotenv",
            ...(flags.output === undefined ? {} : { output: flags.output }),
            json: flags.json === true,
            allowOverride: flags.allowOverride === true,
          });
          return;
        }
        refuseOidcOnly({ ...flags, server: undefined }, "pulls with this machine's session without it");
        if (flags.format !== undefined || flags.allowOverride === true) {
          throw new LatchkeyError("LK_USAGE", {
            message:
              "--format and --allow-override are for --oidc; without it, --output writes the environment as dotenv.",
            hint: "For another format of the local copy after a pull: `latchkey env export --format json`.",
          });
        }
        state.exitCode = await envPull(ctx, {
          ...syncOptions(command, flags),
          ...copyOptions(flags),
          environment: flags.env,
          trustNewMembers: flags.trustNewMembers === true,
          ...(flags.output === undefined ? {} : { output: flags.output }),
        });
      },
    );
  withServerOptions(
    env
      .command("status")
      .description(
        "per vault: the local version and last sync, the server's version, and whether this machine is paired",
      )
      .option("--all", "every vault on this machine, not only this project's")
      .option("--offline", "do not ask the server"),
  )
    .addHelpText(
      "after",
      "\nThe local version is the one this machine last pushed or pulled, and the time of that sync is what\n" +
        "`run --offline --max-age` measures. The server is asked for its copy (one request per vault); when\n" +
        "you are not signed in or it cannot be reached, the status says so and still shows the local side.\n" +
        "Paired means this machine's wrapping key opens the vault key of the server's copy, so `env pull` can\n" +
        "decrypt it. Nothing is written.",
    )
    .action(async (flags: ServerFlags & { all?: boolean; offline?: boolean }, command: Command) => {
      state.exitCode = await envStatus(ctx, {
        ...syncOptions(command, flags),
        all: flags.all === true,
        offline: flags.offline === true,
      });
    });
  env
    .command("rotate-key")
    .description("replace this machine's wrapping key: re-wrap every vault key, update synced server copies")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nSafe to interrupt: the old key is dropped only after everything is re-wrapped; run it again to finish.",
    )
    .action(async (flags: ServerFlags, command: Command) => {
      state.exitCode = await envRotateKey(ctx, syncOptions(command, flags));
    });
  withCopyOptions(
    withServerOptions(env.command("log").description("the last 50 audit entries of this project's vault")),
  )
    .addHelpText(
      "after",
      "\nThe personal copy's log is yours alone; an organisation's copy's (--org SLUG) is readable by its owners,\n" +
        "admins and maintainers.\n\nExamples:\n  latchkey env log\n  latchkey env log --org acme --json",
    )
    .action(async (flags: ServerFlags, command: Command) => {
      state.exitCode = await envLog(ctx, { ...syncOptions(command, flags), ...copyOptions(flags) });
    });
}
