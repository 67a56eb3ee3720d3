import { Command } from "commander";
import type { Context } from "../context.js";
import { DEFAULT_PAIRING_TIMEOUT } from "../sync/pairing.js";
import { envPair, pairMachine } from "./pair.js";
import { globalOptions, type RunState } from "./support.js";

interface ServerFlags {
  server?: string;
  profile?: string;
  json?: boolean;
}

function withServerOptions(command: Command): Command {
  return command
    .option("--server <url>", "the Latchkey server (default: LATCHKEY_SERVER, else the profile's)")
    .option("--profile <name>", "the profile whose server session to use");
}

function server(flags: ServerFlags): { server?: string; profile?: string } {
  return {
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.profile === undefined ? {} : { profile: flags.profile }),
  };
}

const FLOW_HELP =
  "\nPairing gives a second machine of yours the wrapping key that opens your vaults, through the server, which\n" +
  "never sees it. Both machines must be signed in to the same account (`latchkey login`):\n" +
  "  1. on the NEW machine:            latchkey pair            (asks for your password, shows a code)\n" +
  "  2. on the machine with the keys:  latchkey env pair CODE   (shows a 6-digit number, asks y/N)\n" +
  "  3. check that both machines show the same number, then answer y; the new machine finishes by itself,\n" +
  "     and `latchkey env pull` works there for every vault the other machine pushed.\n" +
  "A code lives 5 minutes. A relay between the machines cannot make the numbers agree except by a one in a\n" +
  "million guess: if they differ, answer no. See docs/pairing.md.\n";

/** `latchkey pair`: run on the new machine. */
export function pairCommand(ctx: Context, state: RunState): Command {
  return withServerOptions(
    new Command("pair")
      .description("pair this new machine with one that has your vaults (run `latchkey env pair CODE` there)")
      .option("--label <name>", "how the other machine names this one (default: the host name)")
      .option(
        "--timeout <duration>",
        `how long to wait for the other machine: 90s, 2m… (default ${DEFAULT_PAIRING_TIMEOUT}, a code's life)`,
      )
      .option("--list", "list your account's pending pairings and those of the last 24 hours")
      .option("--revoke-all", "revoke every unfinished pairing of your account")
      .option("--json", "print JSON (--list, --revoke-all; after a pairing, a summary)"),
  )
    .addHelpText(
      "after",
      `${FLOW_HELP}\n` +
        "Ctrl-C or the timeout revokes the pairing on the server. Status goes to stderr; --json prints data on\n" +
        "stdout.\n\n" +
        "Examples:\n" +
        "  latchkey pair\n" +
        "  latchkey pair --label 'work laptop' --timeout 2m\n" +
        "  latchkey pair --list --json\n" +
        "  latchkey pair --revoke-all",
    )
    .action(
      async (
        flags: ServerFlags & { label?: string; timeout?: string; list?: boolean; revokeAll?: boolean },
        command: Command,
      ) => {
        state.exitCode = await pairMachine(ctx, {
          ...server(flags),
          verbose: globalOptions(command).verbose,
          ...(flags.label === undefined ? {} : { label: flags.label }),
          ...(flags.timeout === undefined ? {} : { timeout: flags.timeout }),
          list: flags.list === true,
          revokeAll: flags.revokeAll === true,
          json: flags.json === true,
        });
      },
    );
}

/** Adds `pair CODE` to `latchkey env`: run on the machine that has the wrapping key. */
export function addEnvPairCommand(env: Command, ctx: Context, state: RunState): void {
  withServerOptions(
    env
      .command("pair")
      .description("approve a new machine of yours: send it this machine's wrapping key, sealed to its key")
      .argument("<code>", "the code `latchkey pair` shows on the new machine")
      .option(
        "--yes",
        "approve without asking: nobody compares the numbers, so a server or relay in the middle would get the key; only for a server and network you trust",
      )
      .option("--json", "also print a JSON summary on stdout"),
  )
    .addHelpText(
      "after",
      `${FLOW_HELP}\n` +
        "This machine must have a wrapping key (it has opened a vault) and no unfinished `env rotate-key`.\n" +
        "Without a terminal it refuses (LK_NOT_INTERACTIVE) unless --yes is given. The numbers are what stop a\n" +
        "server or relay that swaps in its own key, and only a person comparing them does that: --yes gives it up.\n\n" +
        "Examples:\n" +
        "  latchkey env pair 7KQM4P\n" +
        "  latchkey env pair 7kq-m4p --server https://latchkey.example.com",
    )
    .action(async (code: string, flags: ServerFlags & { yes?: boolean }, command: Command) => {
      state.exitCode = await envPair(ctx, {
        ...server(flags),
        verbose: globalOptions(command).verbose,
        code,
        yes: flags.yes === true,
        json: flags.json === true,
      });
    });
}
