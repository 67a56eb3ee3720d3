import { Command } from "commander";
import type { Context } from "../context.js";
import { logout, type RegistrySelection } from "./registry.js";
import { serverLogout } from "./server-session.js";
import { logoutSso } from "./sso.js";
import type { RunState } from "./support.js";
import {
  SERVER_OR_REGISTRY_HELP,
  resolveCommandTarget,
  withRegistryOptions,
  withServerOptions,
} from "./target.js";

/** Runs `logout` or `logout sso` (`command` is the one named): the target decides what ends. */
async function runLogout(ctx: Context, state: RunState, command: Command): Promise<void> {
  const { target, opts, verbose } = await resolveCommandTarget<RegistrySelection & { all?: boolean }>(
    ctx,
    command,
    "logout",
  );
  switch (target) {
    case "sso":
      state.exitCode = await logoutSso(ctx, command.opts<{ issuer?: string; profile?: string }>(), verbose);
      return;
    case "server":
      state.exitCode = await serverLogout(ctx, opts, verbose);
      return;
    case "registry":
      state.exitCode = await logout(ctx, opts);
      return;
  }
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
    .action((_opts: unknown, command: Command) => runLogout(ctx, state, command));
}

/** `latchkey logout`: a registry's stored token, a Latchkey server's session, or (`logout sso`) the SSO session. */
export function logoutCommand(ctx: Context, state: RunState): Command {
  const command = withRegistryOptions(
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
    .action((_opts: unknown, command: Command) => runLogout(ctx, state, command));
  // Options after `sso` then belong to `sso`: `logout sso --all` is an unknown option, not a registry flag.
  return withServerOptions(command, false).enablePositionalOptions().addCommand(logoutSsoCommand(ctx, state));
}
