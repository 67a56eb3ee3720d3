import { Command } from "commander";
import type { Context } from "../context.js";
import { authFetchCommand, authToken, type AuthFetchCommandOptions } from "./auth.js";
import { authStatus } from "./sso.js";
import { globalOptions, type RunState } from "./support.js";

const ENVIRONMENT_HELP =
  "\nEnvironments are declared in $LATCHKEY_HOME/config.toml ([environments.NAME] or\n" +
  "[profiles.PROFILE.environments.NAME]). Their client secret is read only from the variable named by\n" +
  "client_secret_env, or from .env.NAME in the project; it is never prompted for and never an argument.\n" +
  "The profile is --profile, else LATCHKEY_PROFILE, else `profile` in latchkey.json, else `default`.";

/** `latchkey auth`: `token` and `fetch` for service environments, `status` for the SSO session and the caches. */
export function authCommand(ctx: Context, state: RunState): Command {
  const auth = new Command("auth").description(
    "OAuth access tokens for service environments and the SSO session",
  );
  auth
    .command("token")
    .description("print a valid access token for an environment (cached, refreshed, or acquired)")
    .option("--env <name>", "the service environment (default: the profile's default_environment)")
    .option("--profile <name>", "the profile whose environment to use")
    .option("--json", "print JSON: the token with its type, expiry, scope and where it came from")
    .addHelpText(
      "after",
      `${ENVIRONMENT_HELP}\n\nExamples:\n  curl -H "Authorization: Bearer $(latchkey auth token --env staging)" https://api.example.com/\n  latchkey auth token --env prod --profile work --json`,
    )
    .action(async (opts: { env?: string; profile?: string; json?: boolean }, command: Command) => {
      state.exitCode = await authToken(ctx, opts, globalOptions(command).verbose);
    });
  auth
    .command("fetch")
    .description("send one HTTP request with an environment's token (body on stdout, status on stderr)")
    .argument("<url>", "https URL (http only on loopback)")
    .option("--env <name>", "the service environment (default: the profile's default_environment)")
    .option("--profile <name>", "the profile whose environment to use")
    .option("-X, --request <method>", "HTTP method (default GET, or POST with -d)")
    .option(
      "-H, --header <line>",
      "extra header 'Name: value' (repeatable; not Authorization)",
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("-d, --data <data>", "request body: text, @FILE, or @- for stdin")
    .addHelpText(
      "after",
      `${ENVIRONMENT_HELP}\n\nOn 401 invalid_token the cached token is replaced and the request retried once; insufficient_scope\n` +
        "and step-up challenges fail without retrying. Exits 1 on HTTP status 400 and above.\n\n" +
        "Examples:\n  latchkey auth fetch --env staging https://api.example.com/v1/me\n" +
        "  latchkey auth fetch --env staging -X PUT -H 'Content-Type: application/json' -d @body.json https://api.example.com/v1/item",
    )
    .action(async (url: string, opts: AuthFetchCommandOptions, command: Command) => {
      state.exitCode = await authFetchCommand(ctx, url, opts, globalOptions(command).verbose);
    });
  auth
    .command("status")
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
  return auth;
}
