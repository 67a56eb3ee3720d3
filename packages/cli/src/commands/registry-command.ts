import { Command, Option } from "commander";
import type { Context } from "../context.js";
import { KNOWN_REGISTRIES } from "../registry/nerf-dart.js";
import { login, logout, printToken, whoami, type RegistrySelection } from "./registry.js";
import { globalOptions, type RunState } from "./support.js";
import { serverLogin, serverLogout, serverWhoami } from "./server-session.js";
import {
  SERVER_OR_REGISTRY_HELP,
  givenFlags,
  isServerCall,
  withServerOptions,
  type ServerFlags,
} from "./server-session-command.js";

const REGISTRY_FLAGS = ["registry", "npm", "github", "gitlab"] as const;

function withRegistryOptions(command: Command, what: string): Command {
  return command
    .option("--registry <url>", `the registry's URL, e.g. https://npm.example.com/ (${what})`)
    .option("--npm", `npmjs: ${KNOWN_REGISTRIES.npm}`)
    .option("--github", `GitHub Packages: ${KNOWN_REGISTRIES.github}`)
    .option("--gitlab", `GitLab: ${KNOWN_REGISTRIES.gitlab} (a self-managed GitLab: --registry URL)`);
}

const SOURCES_HELP =
  "\nWhere a registry's token comes from, first match wins:\n" +
  "  1. the environment: NPM_TOKEN (registry.npmjs.org only), GH_TOKEN / GITHUB_TOKEN (npm.pkg.github.com),\n" +
  "     GITLAB_TOKEN then CI_JOB_TOKEN (gitlab.com and GitLab hosts declared in config.toml), or the variable\n" +
  "     a registry's tokenEnv names in config.toml\n" +
  "  2. a credential provider declared for the registry in config.toml or latchkey.json\n" +
  "  3. the host's CLI, asked at command time and never copied: `gh auth token`, `glab config get token`\n" +
  "  4. the token stored by `latchkey login`\n";

/** Builds `login`, `logout`, `whoami` and `token`; the first three also serve a Latchkey server (server-session.ts). */
export function registryCommands(ctx: Context, state: RunState): Command[] {
  const loginCommand = withRegistryOptions(
    new Command("login").description(
      "log in to a Latchkey server (--server URL, or the profile's server), or store a registry token in the " +
        "keystore after checking it with the registry (default registry: npmjs)",
    ),
    "default https://registry.npmjs.org/",
  )
    .option("--token-stdin", "read the token from stdin")
    .option("--token-file <file>", "read the token from a file")
    .option("--web", "npm's web login: open the registry's login page in a browser and wait for it")
    .option(
      "--user <name>",
      "log in with a user name; the password is asked at a masked prompt (or read from stdin)",
    )
    // Declaring the positive form keeps `verify` undefined unless --no-verify is given, so it counts as a registry
    // flag only when given (and `login sso`'s check for stray parent options sees no default).
    .addOption(new Option("--verify").hideHelp())
    .option(
      "--no-verify",
      "store the token without asking the registry's /-/whoami (for a registry that has none); says it is not verified",
    )
    // Declared so that a token typed after --token is caught here and refused, never parsed as something else.
    .addOption(new Option("--token <value>").hideHelp())
    .addHelpText(
      "after",
      "\nThe token is never accepted on the command line (`--token` is refused): it would show in `ps` and shell\n" +
        "history. Give it at the masked prompt, on stdin or in a file:\n" +
        "  latchkey login --registry https://npm.example.com/            # masked prompt\n" +
        '  printf %s "$NPM_TOKEN" | latchkey login --npm --token-stdin\n' +
        "  latchkey login --github --token-file ~/secrets/gh-packages.txt\n" +
        "  latchkey login --web                                           # npm's browser login\n" +
        "  latchkey login --registry http://127.0.0.1:4873/ --user alice  # password at a masked prompt\n" +
        "The registry's /-/whoami must accept the token before it is stored; a registry that cannot confirm it\n" +
        "(HTTP 404 from /-/whoami: a wrong path, or no such endpoint) is LK_TOKEN_UNVERIFIED and nothing is stored.\n" +
        "For a registry without /-/whoami, --no-verify stores the token unchecked, and says so.\n" +
        SERVER_OR_REGISTRY_HELP +
        "Examples at a server:\n" +
        "  latchkey login --server https://latchkey.example.com       # browser login at the server\n" +
        "  latchkey login --server https://latchkey.example.com --device  # over SSH: enter a code elsewhere\n" +
        "  latchkey login                                             # the profile's server, if it has one",
    )
    .action(async (opts: Parameters<typeof login>[1] & ServerFlags, command: Command) => {
      const registryFlags = givenFlags(opts as Record<string, unknown>, [
        ...REGISTRY_FLAGS,
        "tokenStdin",
        "tokenFile",
        "web",
        "user",
        "token",
      ]);
      if (opts.verify === false) registryFlags.push("--no-verify");
      if (await isServerCall(ctx, "login", opts, registryFlags)) {
        state.exitCode = await serverLogin(
          ctx,
          {
            ...(opts.server === undefined ? {} : { server: opts.server }),
            ...(opts.profile === undefined ? {} : { profile: opts.profile }),
            device: opts.device === true,
            noBrowser: opts.browser === false,
          },
          globalOptions(command).verbose,
        );
        return;
      }
      state.exitCode = await login(ctx, opts);
    });
  withServerOptions(loginCommand, true);

  const logoutCommand = withRegistryOptions(
    new Command("logout").description("remove a registry's stored token (default registry: npmjs)"),
    "default https://registry.npmjs.org/",
  )
    .option("--all", "remove every stored registry token")
    .addHelpText(
      "after",
      "\nOnly the stored token is removed; a token from the environment or gh/glab stays where it is.\n" +
        "At a Latchkey server, logout revokes the session's refresh and access tokens there (RFC 7009) and\n" +
        "removes the session; when the server cannot be reached the session is removed locally and the exit\n" +
        "code is 1.\n" +
        SERVER_OR_REGISTRY_HELP,
    )
    .action(async (opts: RegistrySelection & { all?: boolean } & ServerFlags, command: Command) => {
      const registryFlags = givenFlags(opts as Record<string, unknown>, [...REGISTRY_FLAGS, "all"]);
      if (await isServerCall(ctx, "logout", opts, registryFlags)) {
        state.exitCode = await serverLogout(ctx, opts, globalOptions(command).verbose);
        return;
      }
      state.exitCode = await logout(ctx, opts);
    });
  withServerOptions(logoutCommand, false);

  const whoamiCommand = withRegistryOptions(
    new Command("whoami").description(
      "ask each registry who its token belongs to, with the token's source and the storage backend",
    ),
    "default: every registry that has a token source",
  )
    .option("--json", "print JSON")
    .option("--explain", "list every token source per registry and why it won or did not")
    .addHelpText(
      "after",
      `${SOURCES_HELP}\nThe registry is asked on every call; an invalid token fails with LK_TOKEN_INVALID.\n` +
        "A Latchkey server is asked too (GET /api/v1/me, signed): an expired or revoked session fails with\n" +
        "LK_SESSION_EXPIRED, no session with LK_NOT_LOGGED_IN.\n" +
        SERVER_OR_REGISTRY_HELP,
    )
    .action(
      async (
        opts: RegistrySelection & { json?: boolean; explain?: boolean } & ServerFlags,
        command: Command,
      ) => {
        const registryFlags = givenFlags(opts as Record<string, unknown>, [...REGISTRY_FLAGS, "explain"]);
        if (await isServerCall(ctx, "whoami", opts, registryFlags)) {
          state.exitCode = await serverWhoami(ctx, opts, globalOptions(command).verbose);
          return;
        }
        state.exitCode = await whoami(ctx, opts, globalOptions(command).verbose);
      },
    );
  withServerOptions(whoamiCommand, false);

  const tokenCommand = withRegistryOptions(
    new Command("token").description(
      "print a registry's token alone on stdout, for scripts and credential helpers",
    ),
    "required, or --npm, --github, --gitlab",
  )
    .addHelpText(
      "after",
      `${SOURCES_HELP}\nExample:\n  curl -H "Authorization: Bearer $(latchkey token --registry https://npm.example.com/)" …\n` +
        "Exits 1 with LK_TOKEN_MISSING on stderr when no source has a token.",
    )
    .action(async (opts: RegistrySelection) => {
      state.exitCode = await printToken(ctx, opts);
    });

  return [loginCommand, logoutCommand, whoamiCommand, tokenCommand];
}
