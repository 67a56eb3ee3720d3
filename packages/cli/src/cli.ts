import { Command, CommanderError } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "./context.js";
import { createNodeContext } from "./node-context.js";
import { printError } from "./output/output.js";
import { VERSION } from "./version.js";
import { doctorCommand } from "./commands/doctor.js";
import { keystoreCommand } from "./commands/keystore-command.js";
import { envCommand, runCommand } from "./commands/env-command.js";
import { exitLikeChild } from "./run/child.js";
import { gitCredentialCommand } from "./commands/git-credential-command.js";
import { addSetupGit } from "./commands/setup-git-command.js";
import { execCommand } from "./commands/exec-command.js";
import { setupCommand } from "./commands/setup-command.js";
import { credentialProviderCommand } from "./commands/credential-provider-command.js";
import { registryCommands } from "./commands/registry-command.js";
import { addAuthCommands } from "./commands/auth-command.js";
import { addSsoCommands } from "./commands/sso-command.js";
import { addCompletionCommands } from "./commands/completion-command.js";
import { tokenRotateCommand } from "./commands/server-session-command.js";
import type { RunState } from "./commands/support.js";

/** Builds the command tree. Each command lives in its own module under commands/. */
export function buildProgram(ctx: Context, state: RunState): Command {
  const program = new Command("latchkey")
    .description(
      "One tool for every credential on a developer's machine: registry tokens, OAuth and SSO sessions and " +
        "per-project secrets, kept in the OS keychain (or an encrypted file where there is none).",
    )
    .version(VERSION, "-V, --version", "print the version")
    .option(
      "-v, --verbose",
      "more detail on errors (-vv adds stack traces); secrets are always redacted",
      (_v, n: number) => n + 1,
      0,
    )
    .helpOption("-h, --help", "show help for a command")
    .addHelpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // Usage errors are reprinted by the top-level handler in the catalogue's format.
      outputError: () => undefined,
    })
    .enablePositionalOptions()
    .exitOverride();
  program.addHelpText(
    "after",
    "\nEnvironment:\n" +
      "  LATCHKEY_HOME        state directory (default ~/.latchkey)\n" +
      "  LATCHKEY_KEYSTORE    force a backend: keyring | file\n" +
      "  LATCHKEY_PASSPHRASE  protect the file store with a passphrase (Argon2id) instead of a machine-bound key\n" +
      "  NO_COLOR             disable colour\n" +
      "\nRun `latchkey doctor` to see which keystore is active and why.",
  );
  for (const make of [envCommand, runCommand, doctorCommand, keystoreCommand])
    program.addCommand(make(ctx, state));
  for (const command of registryCommands(ctx, state)) program.addCommand(command);
  program.addCommand(tokenRotateCommand(ctx, state));
  program.addCommand(gitCredentialCommand(ctx, state));
  program.addCommand(credentialProviderCommand(ctx, state));
  program.addCommand(execCommand(ctx, state));
  program.addCommand(setupCommand(ctx, state));
  addAuthCommands(program, ctx, state);
  addSetupGit(program, ctx, state); // last: it joins a `setup` registered above, or creates it
  addSsoCommands(program, ctx, state); // after registry and auth: it adds `sso` and `status` under them
  addCompletionCommands(program, ctx, state);
  // Commands are built in their own modules, so program-wide settings are pushed down the tree here: output goes
  // through the context, and no command may call process.exit behind the top-level handler's back.
  const inherit = (command: Command): void => {
    for (const sub of command.commands) {
      sub.configureOutput(program.configureOutput()).exitOverride().showSuggestionAfterError(true);
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/**
 * Commander's usage messages quote what the user typed. Arguments may be secrets pasted in the wrong place, so
 * extra arguments are counted, not echoed, and an unknown `--option=value` loses its value.
 */
function usageMessage(error: CommanderError): string {
  let message = error.message.replace(/^error: /, "");
  if (error.code === "commander.excessArguments") message = message.replace(/:[^:]*$/, ".");
  message = message.replace(/'(-{1,2}[^'=\s]+)=[^']*'/g, "'$1=…'");
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], ctx: Context): Promise<number> {
  return (await runCliForOutcome(argv, ctx)).exitCode;
}

/** Like runCli, but also reports a signal the process should die of (a `run` child's). */
export async function runCliForOutcome(argv: readonly string[], ctx: Context): Promise<RunState> {
  const state: RunState = { exitCode: 0 };
  const verbose = argv
    .filter((a) => a === "--verbose" || /^-v+$/.test(a))
    .reduce((n, a) => n + (a === "--verbose" ? 1 : a.length - 1), 0);
  try {
    const program = buildProgram(ctx, state);
    await program.parseAsync([...argv], { from: "user" });
    return state;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
      ) {
        return { exitCode: 0 };
      }
      const message = usageMessage(error);
      const usage = new LatchkeyError("LK_USAGE", { message });
      return { exitCode: printError(ctx, usage, verbose) };
    }
    return { exitCode: printError(ctx, error, verbose) };
  }
}

/** The process entry: real context, real argv. Returns the exit code, or dies like a `run` child that died. */
export async function main(argv: readonly string[]): Promise<number> {
  const outcome = await runCliForOutcome(argv, createNodeContext());
  if (outcome.signal) exitLikeChild({ code: null, signal: outcome.signal });
  return outcome.exitCode;
}
