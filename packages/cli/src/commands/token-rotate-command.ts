import { Command } from "commander";
import type { Context } from "../context.js";
import { tokenRotate } from "./server-session.js";
import { globalOptions, type RunState } from "./support.js";

/** `latchkey token-rotate`. */
export function tokenRotateCommand(ctx: Context, state: RunState): Command {
  return new Command("token-rotate")
    .description(
      "replace the Latchkey server session's tokens: a refresh (new access and refresh token), then the old access token is revoked",
    )
    .option("--server <url>", "the server (default: LATCHKEY_SERVER, else the profile's server)")
    .option("--profile <name>", "the profile whose session to rotate")
    .addHelpText(
      "after",
      "\nUse it after a token may have been exposed (a shared screen, a leaked log). The new session replaces the\n" +
        "old one in the keystore; the server refuses the old access token from then on, and the new one is checked\n" +
        "with the server before the command reports success.",
    )
    .action(async (opts: { server?: string; profile?: string }, command: Command) => {
      state.exitCode = await tokenRotate(ctx, opts, globalOptions(command).verbose);
    });
}
