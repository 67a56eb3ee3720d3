import type { Command } from "commander";
import type { Context } from "../context.js";
import { envRotateSharingKey } from "./sharing.js";
import { globalOptions, type RunState } from "./support.js";

interface ServerFlags {
  server?: string;
  profile?: string;
}

/** Adds `rotate-sharing-key` to `latchkey env`. */
export function addSharingKeyCommands(env: Command, ctx: Context, state: RunState): void {
  env
    .command("rotate-sharing-key")
    .description("replace your account's sharing key (organisations must share their vaults with you again)")
    .option("--server <url>", "the Latchkey server (default: the profile's)")
    .option("--profile <name>", "the profile whose server session to use")
    .addHelpText(
      "after",
      "\nYour sharing key is how organisations share vaults with you: its private half stays in this machine's\n" +
        "keystore, its public half is registered on the server. Replacing it drops every organisation vault key\n" +
        "wrapped for the old one: the command lists those organisations and vaults, asks you to type ROTATE and\n" +
        "your password (on a terminal only; there is no --yes), then uploads the new key. Their owners and admins\n" +
        "are told, and a maintainer shares each vault again with `latchkey env share --org SLUG`.\n" +
        "Use it when this machine is refused with LK_SHARING_KEY_MISMATCH and you mean to move your sharing key\n" +
        "here, or when the old key may be compromised. Safe to interrupt: run it again to finish.",
    )
    .action(async (flags: ServerFlags, command: Command) => {
      state.exitCode = await envRotateSharingKey(ctx, {
        verbose: globalOptions(command).verbose,
        ...(flags.server === undefined ? {} : { server: flags.server }),
        ...(flags.profile === undefined ? {} : { profile: flags.profile }),
      });
    });
}
