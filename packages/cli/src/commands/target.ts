// `login`, `logout` and `whoami` each serve a Latchkey server, a package registry and (`login sso`, `logout sso`)
// the organisation's single sign-on. resolveLoginTarget alone decides which one a command line means, from the
// options given on it, LATCHKEY_SERVER and the profile; the commands dispatch on its answer. target.test.ts holds
// TARGET_OPTIONS against the options the commands declare, so the two cannot drift apart.
import type { Command } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { KNOWN_REGISTRIES } from "../registry/nerf-dart.js";
import { resolveServer } from "../server/session.js";
import { globalOptions } from "./support.js";

/** What a `login`, `logout` or `whoami` command line is about. */
export type LoginTarget = "server" | "registry" | "sso";

/** The commands that serve more than one target. */
export type TargetedCommand = "login" | "logout" | "whoami";

const REGISTRY_SELECTION = ["--registry", "--npm", "--github", "--gitlab"] as const;

/**
 * The options that belong to one target, by command, spelled as typed; messages list them in this order.
 * `--server` and `--profile` are read apart: --server names the server outright, --profile says whose server.
 */
export const TARGET_OPTIONS: Readonly<
  Record<TargetedCommand, { readonly registry: readonly string[]; readonly server: readonly string[] }>
> = {
  login: {
    registry: [
      ...REGISTRY_SELECTION,
      "--token-stdin",
      "--token-file",
      "--web",
      "--user",
      "--token",
      "--no-verify",
    ],
    server: ["--device", "--no-browser"],
  },
  logout: { registry: [...REGISTRY_SELECTION, "--all"], server: [] },
  whoami: { registry: [...REGISTRY_SELECTION, "--explain"], server: [] },
};

/** A command line as resolveLoginTarget sees it. */
export interface TargetCall {
  command: TargetedCommand;
  /**
   * The command's own options given on the command line, never their defaults, spelled as typed (`--npm`,
   * `--no-browser`); see {@link givenOptions}. With `sso`, the options given before `sso`.
   */
  given: readonly string[];
  /** The value of `--profile`, when given: the profile whose server counts. */
  profile?: string;
  /** The command line names the `sso` subcommand (`login sso`, `logout sso`). */
  sso?: boolean;
}

function usage(message: string, hint?: string): LatchkeyError {
  return new LatchkeyError("LK_USAGE", hint === undefined ? { message } : { message, hint });
}

/**
 * Which target a command line means:
 *
 * - `sso` named: the SSO session; any option given to the command before `sso` is refused (it would be dropped).
 * - `--server`: the server; registry options with it are refused.
 * - a registry option: that registry; server-only options and --profile with it are refused.
 * - otherwise the server when LATCHKEY_SERVER or the profile names one, else the default registry (npmjs);
 *   server-only options or --profile without any server are refused.
 *
 * Nothing is ever silently dropped: an option the chosen target cannot use is LK_USAGE.
 */
export async function resolveLoginTarget(ctx: Context, call: TargetCall): Promise<LoginTarget> {
  const { command } = call;
  const given = new Set(call.given);
  if (call.sso === true) {
    // -v is every command's own (cli.ts), not an option of the target.
    const stray = call.given.filter((flag) => flag !== "--verbose");
    if (stray.includes("--token")) throw new LatchkeyError("LK_TOKEN_IN_ARGV");
    if (stray.length > 0) {
      throw usage(
        `\`${command} sso\` takes no registry options (got ${stray.join(", ")}).`,
        `Run \`latchkey ${command} sso --help\` for the SSO options, or \`latchkey ${command} --help\` for registries.`,
      );
    }
    return "sso";
  }
  const registryFlags = TARGET_OPTIONS[command].registry.filter((flag) => given.has(flag));
  const serverOnly = TARGET_OPTIONS[command].server.filter((flag) => given.has(flag));
  const serverChoices = [...serverOnly, ...(given.has("--profile") ? ["--profile"] : [])];
  if (given.has("--server")) {
    if (registryFlags.length > 0) {
      throw usage(
        `\`${command} --server\` is a Latchkey server ${command}; it takes no registry options (got ${registryFlags.join(", ")}).`,
      );
    }
    return "server";
  }
  if (registryFlags.length > 0) {
    if (serverChoices.length > 0) {
      throw usage(
        `${serverChoices.join(", ")} ${serverChoices.length === 1 ? "is" : "are"} for a Latchkey server ${command}, not a registry's (got ${registryFlags.join(", ")}).`,
      );
    }
    return "registry";
  }
  if ((await resolveServer(ctx, call.profile === undefined ? {} : { profile: call.profile })) !== null)
    return "server";
  if (serverChoices.length > 0) {
    throw usage(
      `${serverChoices.join(", ")} need${serverChoices.length === 1 ? "s" : ""} a Latchkey server, and none is configured.`,
      `Add --server URL, or set \`server\` in the profile's table of ${ctx.paths.config}.`,
    );
  }
  return "registry";
}

/** A targeted command's action, resolved: its target, its own options and the -v count. */
export interface CommandTarget<Options> {
  target: LoginTarget;
  /** The options of the targeted command, server ones included; for `sso`, those of `login` or `logout`. */
  opts: Options;
  verbose: number;
}

/**
 * Resolves the target of the action of `command`, which is the targeted command `name` itself or its `sso`
 * subcommand; the options given before `sso` are then its parent's, and resolveLoginTarget refuses them.
 */
export async function resolveCommandTarget<Options>(
  ctx: Context,
  command: Command,
  name: TargetedCommand,
): Promise<CommandTarget<Options & ServerFlags>> {
  const sso = command.name() === "sso";
  const parent = sso ? command.parent! : command;
  const opts = parent.opts<Options & ServerFlags>();
  const target = await resolveLoginTarget(ctx, {
    command: name,
    given: givenOptions(parent),
    sso,
    ...(opts.profile === undefined ? {} : { profile: opts.profile }),
  });
  return { target, opts, verbose: globalOptions(command).verbose };
}

/**
 * The options of `command` given on its command line, never those that only hold their default, spelled as typed
 * (the long name: `--no-browser`, `--token-stdin`), in the order the command declares them.
 */
export function givenOptions(command: Command): string[] {
  return command.options
    .filter((option) => command.getOptionValueSource(option.attributeName()) === "cli")
    .map((option) => option.long ?? option.flags);
}

/** The options that name a registry: --registry URL, or one of the known ones. */
export function withRegistryOptions(command: Command, what: string): Command {
  return command
    .option("--registry <url>", `the registry's URL, e.g. https://npm.example.com/ (${what})`)
    .option("--npm", `npmjs: ${KNOWN_REGISTRIES.npm}`)
    .option("--github", `GitHub Packages: ${KNOWN_REGISTRIES.github}`)
    .option("--gitlab", `GitLab: ${KNOWN_REGISTRIES.gitlab} (a self-managed GitLab: --registry URL)`);
}

/** The server options as commander hands them over. */
export interface ServerFlags {
  server?: string;
  profile?: string;
  device?: boolean;
  /** false with --no-browser. */
  browser?: boolean;
}

/** Adds `--server` and `--profile` (and for login `--device`, `--no-browser`) to a targeted command. */
export function withServerOptions(command: Command, login: boolean): Command {
  command
    .option(
      "--server <url>",
      "a Latchkey server, e.g. https://latchkey.example.com (default: LATCHKEY_SERVER, else the profile's server)",
    )
    .option("--profile <name>", "the profile whose server and session to use");
  if (login) {
    command
      .option("--device", "server login by device code (RFC 8628): for machines without a browser")
      .option("--no-browser", "server login: print the login URL instead of opening a browser");
  }
  return command;
}

/** The help paragraph shared by `login`, `logout` and `whoami`: which of the two kinds of login a call is. */
export const SERVER_OR_REGISTRY_HELP =
  "\nTwo kinds of login share these commands:\n" +
  "  - a Latchkey server (sync): --server URL, or no registry flag while the active profile has a server\n" +
  '    (config.toml: [profiles.NAME] server = "https://latchkey.example.com") or LATCHKEY_SERVER is set;\n' +
  "    the session lives in the keystore under session:<server>, and a login records the server in the profile\n" +
  "  - a package registry: --registry URL, --npm, --github, --gitlab (or none of them and no server: npmjs)\n" +
  "Server URLs must use https (plain http only on 127.0.0.1, ::1 and localhost).\n";

/** The help paragraph of `whoami` and `token`: where a registry's token comes from. */
export const TOKEN_SOURCES_HELP =
  "\nWhere a registry's token comes from, first match wins:\n" +
  "  1. the environment: NPM_TOKEN (registry.npmjs.org only), GH_TOKEN / GITHUB_TOKEN (npm.pkg.github.com),\n" +
  "     GITLAB_TOKEN then CI_JOB_TOKEN (gitlab.com and GitLab hosts declared in config.toml), or the variable\n" +
  "     a registry's tokenEnv names in config.toml\n" +
  "  2. a credential provider declared for the registry in config.toml or latchkey.json\n" +
  "  3. the host's CLI, asked at command time and never copied: `gh auth token`, `glab config get token`\n" +
  "  4. the token stored by `latchkey login`\n";
