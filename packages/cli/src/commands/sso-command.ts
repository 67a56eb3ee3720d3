import { Command, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { authCommandGroup } from "./auth-command.js";
import { authStatus, loginSso, logoutSso } from "./sso.js";
import { globalOptions, type RunState } from "./support.js";

const TARGET_HELP =
  "\nThe issuer and client id default to sso_issuer and sso_client_id of the selected profile in\n" +
  "$LATCHKEY_HOME/config.toml (--profile, else LATCHKEY_PROFILE, else `profile` in latchkey.json, else default):\n" +
  "  [profiles.work]\n" +
  '  sso_issuer = "https://login.example.com"\n' +
  '  sso_client_id = "latchkey-cli"\n' +
  "Issuers must use https (plain http only on 127.0.0.1, ::1 and localhost).";

/**
 * `sso` sits under the registry `login` / `logout`, whose own options are then meaningless. The parent parses its
 * options before dispatching, so `login --npm sso` would otherwise run an SSO login and silently drop --npm.
 */
function refuseParentOptions(command: Command): void {
  const parent = command.parent;
  if (parent === null) return;
  // -v is every command's own (cli.ts), not a registry option.
  const given = Object.entries(parent.opts()).filter(
    ([name, v]) => name !== "verbose" && v !== undefined && v !== false,
  );
  if (given.some(([name]) => name === "token")) throw new LatchkeyError("LK_TOKEN_IN_ARGV");
  if (given.length > 0) {
    throw new LatchkeyError("LK_USAGE", {
      message: `\`${parent.name()} sso\` takes no registry options (got ${given.map(([n]) => `--${n.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`).join(", ")}).`,
      hint: `Run \`latchkey ${parent.name()} sso --help\` for the SSO options, or \`latchkey ${parent.name()} --help\` for registries.`,
    });
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
    .addHelpText(
      "after",
      `${TARGET_HELP}\n\nThe browser login is the authorization code flow with PKCE: Latchkey listens once on 127.0.0.1\n` +
        "(a random port) for the provider's redirect and stops listening after it or after 5 minutes. Access,\n" +
        "refresh and ID tokens go to the keystore (account sso:<issuer>), never to a file.\n\n" +
        "Examples:\n" +
        "  latchkey login sso\n" +
        "  latchkey login sso --issuer https://login.example.com --client-id latchkey-cli\n" +
        "  latchkey login sso --no-browser      # open the printed URL yourself, on this machine\n" +
        "  latchkey login sso --device          # over SSH: enter the printed code on your laptop",
    )
    .action(
      async (
        opts: {
          issuer?: string;
          clientId?: string;
          browser: boolean;
          device?: boolean;
          profile?: string;
          timeout: string;
        },
        command: Command,
      ) => {
        refuseParentOptions(command);
        const seconds = Number(opts.timeout);
        if (!Number.isInteger(seconds) || seconds <= 0) {
          throw new LatchkeyError("LK_USAGE", { message: "--timeout takes a whole number of seconds." });
        }
        state.exitCode = await loginSso(
          ctx,
          {
            ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
            ...(opts.clientId === undefined ? {} : { clientId: opts.clientId }),
            ...(opts.profile === undefined ? {} : { profile: opts.profile }),
            noBrowser: !opts.browser,
            device: opts.device === true,
            timeoutMs: seconds * 1000,
          },
          globalOptions(command).verbose,
        );
      },
    );
}

function logoutSsoCommand(ctx: Context, state: RunState): Command {
  return new Command("sso")
    .description("end the SSO session: revoke its tokens at the provider (RFC 7009), then remove it locally")
    .option(
      "--issuer <url>",
      "the session's issuer (default: the profile's sso_issuer, or the only stored session)",
    )
    .option("--profile <name>", "the profile whose sso_issuer to use")
    .addHelpText(
      "after",
      "\nThe refresh token is revoked first, then the access token. Where the provider offers no revocation\n" +
        "endpoint the tokens stay valid until they expire; the local session is removed in every case.",
    )
    .action(async (opts: { issuer?: string; profile?: string }, command: Command) => {
      refuseParentOptions(command);
      state.exitCode = await logoutSso(ctx, opts, globalOptions(command).verbose);
    });
}

function authStatusCommand(ctx: Context, state: RunState): Command {
  return new Command("status")
    .description(
      "show the SSO session (subject, issuer, expiry, keystore backend) and each environment's token cache",
    )
    .option("--json", "print JSON")
    .option("--issuer <url>", "only the session at this issuer")
    .option("--profile <name>", "the profile to report on")
    .addHelpText(
      "after",
      "\nAn expired SSO session is refreshed when it has a refresh token. When it cannot be, the report is still\n" +
        "printed and the command exits 1 with LK_SESSION_EXPIRED. No token value is ever printed.\n\n" +
        "Examples:\n  latchkey auth status\n  latchkey auth status --json | jq '.environments'",
    )
    .action(async (opts: { json?: boolean; issuer?: string; profile?: string }, command: Command) => {
      state.exitCode = await authStatus(ctx, opts, globalOptions(command).verbose);
    });
}

/**
 * Adds `login sso` and `logout sso` under the registry `login` / `logout`, and `status` under `auth` (auth-command.ts's
 * group, created if absent). cli.ts calls it after every other command, so it finds the commands built
 * elsewhere instead of adding second ones.
 */
export function addSsoCommands(program: Command, ctx: Context, state: RunState): void {
  const find = (name: string): Command | undefined =>
    program.commands.find((command) => command.name() === name);
  const login = find("login") ?? program.command("login").description("log in");
  const logout = find("logout") ?? program.command("logout").description("log out");
  // Options after `sso` then belong to `sso`: `login sso --npm` is an unknown option, not a registry flag.
  login.enablePositionalOptions().addCommand(loginSsoCommand(ctx, state));
  logout.enablePositionalOptions().addCommand(logoutSsoCommand(ctx, state));
  authCommandGroup(program).addCommand(authStatusCommand(ctx, state));
}
