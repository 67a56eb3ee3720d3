import { Command, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { login, type LoginOptions } from "./registry.js";
import { serverLogin } from "./server-session.js";
import { loginSso } from "./sso.js";
import type { RunState } from "./support.js";
import {
  SERVER_OR_REGISTRY_HELP,
  resolveCommandTarget,
  withRegistryOptions,
  withServerOptions,
} from "./target.js";

const SSO_HELP =
  "\nThe issuer and client id default to sso_issuer and sso_client_id of the selected profile in\n" +
  "$LATCHKEY_HOME/config.toml (--profile, else LATCHKEY_PROFILE, else `profile` in latchkey.json, else default):\n" +
  "  [profiles.work]\n" +
  '  sso_issuer = "https://login.example.com"\n' +
  '  sso_client_id = "latchkey-cli"\n' +
  "Issuers must use https (plain http only on 127.0.0.1, ::1 and localhost).\n\n" +
  "The browser login is the authorization code flow with PKCE: Latchkey listens once on 127.0.0.1\n" +
  "(a random port) for the provider's redirect and stops listening after it or after 5 minutes. Access,\n" +
  "refresh and ID tokens go to the keystore (account sso:<issuer>), never to a file.\n\n" +
  "Examples:\n" +
  "  latchkey login sso\n" +
  "  latchkey login sso --issuer https://login.example.com --client-id latchkey-cli\n" +
  "  latchkey login sso --no-browser      # open the printed URL yourself, on this machine\n" +
  "  latchkey login sso --device          # over SSH: enter the printed code on your laptop";

interface LoginSsoFlags {
  issuer?: string;
  clientId?: string;
  browser: boolean;
  device?: boolean;
  profile?: string;
  timeout: string;
}

/** Runs `login` or `login sso` (`command` is the one named): the target decides which login. */
async function runLogin(ctx: Context, state: RunState, command: Command): Promise<void> {
  const { target, opts, verbose } = await resolveCommandTarget<LoginOptions>(ctx, command, "login");
  switch (target) {
    case "sso": {
      const flags = command.opts<LoginSsoFlags>();
      const seconds = Number(flags.timeout);
      if (!Number.isInteger(seconds) || seconds <= 0) {
        throw new LatchkeyError("LK_USAGE", { message: "--timeout takes a whole number of seconds." });
      }
      state.exitCode = await loginSso(
        ctx,
        {
          ...(flags.issuer === undefined ? {} : { issuer: flags.issuer }),
          ...(flags.clientId === undefined ? {} : { clientId: flags.clientId }),
          ...(flags.profile === undefined ? {} : { profile: flags.profile }),
          noBrowser: !flags.browser,
          device: flags.device === true,
          timeoutMs: seconds * 1000,
        },
        verbose,
      );
      return;
    }
    case "server":
      state.exitCode = await serverLogin(
        ctx,
        {
          ...(opts.server === undefined ? {} : { server: opts.server }),
          ...(opts.profile === undefined ? {} : { profile: opts.profile }),
          device: opts.device === true,
          noBrowser: opts.browser === false,
        },
        verbose,
      );
      return;
    case "registry":
      state.exitCode = await login(ctx, opts, verbose);
      return;
  }
}

function loginSsoCommand(ctx: Context, state: RunState): Command {
  return new Command("sso")
    .description(
      "log in to your organisation's single sign-on (OpenID Connect) in the browser, or with --device",
    )
    .option(
      "--issuer <url>",
      "the OpenID provider, e.g. https://login.example.com (default: the profile's sso_issuer)",
    )
    .option(
      "--client-id <id>",
      "the public client registered for Latchkey (default: the profile's sso_client_id)",
    )
    .option("--no-browser", "print the login URL instead of opening a browser")
    .option(
      "--device",
      "device authorization (RFC 8628): enter a code on another device; for machines without a browser",
    )
    .option("--profile <name>", "the profile whose sso_issuer / sso_client_id to use")
    .addOption(
      new Option("--timeout <seconds>", "how long to wait for the browser").default("300").hideHelp(),
    )
    .addHelpText("after", SSO_HELP)
    .action((_opts: unknown, command: Command) => runLogin(ctx, state, command));
}

/** `latchkey login`: a Latchkey server, a registry, or (`login sso`) the organisation's single sign-on. */
export function loginCommand(ctx: Context, state: RunState): Command {
  const command = withRegistryOptions(
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
    .action((_opts: unknown, command: Command) => runLogin(ctx, state, command));
  // Options after `sso` then belong to `sso`: `login sso --npm` is an unknown option, not a registry flag.
  return withServerOptions(command, true).enablePositionalOptions().addCommand(loginSsoCommand(ctx, state));
}
