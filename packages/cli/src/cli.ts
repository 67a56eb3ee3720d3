import { Command, CommanderError, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "./context.js";
import { createNodeContext } from "./node-context.js";
import { environmentDeviceGrant } from "./oauth/device.js";
import { environmentCodeGrant } from "./oauth/sso.js";
import { printError } from "./output/output.js";
import { VERSION } from "./version.js";
import { environmentHelp } from "./env-vars.js";
import { doctorCommand } from "./commands/doctor.js";
import { keystoreCommand } from "./commands/keystore-command.js";
import { envCommand, runCommand } from "./commands/env-command.js";
import { exitLikeChild } from "./run/child.js";
import { gitCredentialCommand } from "./commands/git-credential-command.js";
import { execCommand } from "./commands/exec-command.js";
import { setupCommand } from "./commands/setup-command.js";
import { credentialProviderCommand } from "./commands/credential-provider-command.js";
import { loginCommand } from "./commands/login-command.js";
import { logoutCommand } from "./commands/logout-command.js";
import { whoamiCommand } from "./commands/whoami-command.js";
import { tokenCommand } from "./commands/token-command.js";
import { tokenRotateCommand } from "./commands/token-rotate-command.js";
import { pairCommand } from "./commands/pair-command.js";
import { orgCommand } from "./commands/org-command.js";
import { authCommand } from "./commands/auth-command.js";
import { completeCommand, completionCommand } from "./commands/completion-command.js";
import { globalOptions, type RunState } from "./commands/support.js";

/** A top-level command: its builder, which makes the whole subtree, and whether help leaves it out. */
interface CommandEntry {
  readonly build: (ctx: Context, state: RunState) => Command;
  readonly hidden?: boolean;
}

/** Every top-level command, in the order `latchkey --help` lists them. */
const COMMANDS: readonly CommandEntry[] = [
  { build: envCommand },
  { build: runCommand },
  { build: doctorCommand },
  { build: keystoreCommand },
  { build: loginCommand },
  { build: logoutCommand },
  { build: whoamiCommand },
  { build: tokenCommand },
  { build: tokenRotateCommand },
  { build: pairCommand },
  { build: orgCommand },
  { build: gitCredentialCommand },
  { build: credentialProviderCommand },
  { build: execCommand },
  { build: setupCommand },
  { build: authCommand },
  { build: completionCommand },
  { build: completeCommand, hidden: true },
];

const VERBOSE_HELP = "more detail on errors (-vv adds stack traces); secrets are always redacted";
/** `-v` counts: each one adds a level. */
const countVerbose = (_value: string | undefined, previous: number | undefined): number =>
  (previous ?? 0) + 1;

/**
 * `help [command...]` for `parent`: the help of the named command at any depth. commander's own help command
 * shows the parent's help, exit 0, for a name it does not know; a typo must fail like `latchkey nosuch` does.
 */
function helpCommand(parent: Command): Command {
  return new Command("help")
    .description("show help for a command")
    .argument("[command...]", "the command, with its subcommands")
    .action((names: string[]) => {
      let target = parent;
      for (const name of names) {
        const next = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (next === undefined || next.name() === "help") {
          const path = [...commandPath(target), name].slice(1).join(" ");
          throw new LatchkeyError("LK_USAGE", {
            message: `Unknown command '${path}'.`,
            hint: `Run \`${commandPath(target).join(" ")} help\` to see the commands.`,
          });
        }
        target = next;
      }
      target.outputHelp();
    });
}

/** The names from the program down to `command`: ["latchkey", "env", "set"]. */
function commandPath(command: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return names;
}

/** Builds the command tree from {@link COMMANDS}; each top-level command lives in its own module under commands/. */
export function buildProgram(ctx: Context, state: RunState): Command {
  const program = new Command("latchkey")
    .description(
      "One tool for every credential on a developer's machine: registry tokens, OAuth and SSO sessions and " +
        "per-project secrets, kept in the OS keychain (or an encrypted file where there is none).",
    )
    .version(VERSION, "-V, --version", "print the version")
    .option("-v, --verbose", VERBOSE_HELP, countVerbose, 0)
    .helpOption("-h, --help", "show help for a command")
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
    `\n${environmentHelp()}\n\nRun \`latchkey doctor\` to see which keystore is active and why.`,
  );
  for (const { build, hidden } of COMMANDS)
    program.addCommand(build(ctx, state), { hidden: hidden === true });
  program.addCommand(helpCommand(program));
  // Error output follows the options of the command that runs: its --json, and -v wherever it was given.
  program.hook("preAction", (_program, action) => {
    state.errorOutput = {
      verbose: globalOptions(action).verbose,
      json: action.opts<{ json?: boolean }>().json === true,
    };
  });
  // Commands are built in their own modules, so program-wide settings are pushed down the tree here: output goes
  // through the context, and no command may call process.exit behind the top-level handler's back.
  // Every command takes -v as well, so it may follow the command's name (`latchkey env push -v`) where
  // positional options would otherwise refuse it; it is hidden, as the program's help lists it.
  const inherit = (command: Command): void => {
    for (const sub of command.commands) {
      sub.configureOutput(program.configureOutput()).exitOverride().showSuggestionAfterError(true);
      if (sub.name() !== "help")
        sub.addOption(new Option("-v, --verbose", VERBOSE_HELP).argParser(countVerbose).hideHelp());
      if (sub.commands.length > 0) sub.addCommand(helpCommand(sub));
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

/**
 * -v and --json as the words of the command line give them, for an error raised before any command ran (a usage
 * error); otherwise the parsed options are used. Words after `--` belong to another program.
 */
function outputFromWords(argv: readonly string[]): { verbose: number; json: boolean } {
  const end = argv.indexOf("--");
  const words = end === -1 ? argv : argv.slice(0, end);
  const verbose = words
    .filter((a) => a === "--verbose" || /^-v+$/.test(a))
    .reduce((n, a) => n + (a === "--verbose" ? 1 : a.length - 1), 0);
  return { verbose, json: words.includes("--json") };
}

/** Like runCli, but also reports a signal the process should die of (a `run` child's). */
export async function runCliForOutcome(argv: readonly string[], ctx: Context): Promise<RunState> {
  const state: RunState = { exitCode: 0 };
  try {
    const program = buildProgram(ctx, state);
    await program.parseAsync([...argv], { from: "user" });
    return state;
  } catch (error) {
    const { verbose, json } = state.errorOutput ?? outputFromWords(argv);
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
      ) {
        return { exitCode: 0 };
      }
      const usage = new LatchkeyError("LK_USAGE", { message: usageMessage(error) });
      return { exitCode: printError(ctx, usage, verbose, { json }) };
    }
    return { exitCode: printError(ctx, error, verbose, { json }) };
  }
}

/** The process entry: real context, real argv. Returns the exit code, or dies like a `run` child that died. */
export async function main(argv: readonly string[]): Promise<number> {
  const interactiveGrants = { authorization_code: environmentCodeGrant, device_code: environmentDeviceGrant };
  const outcome = await runCliForOutcome(argv, createNodeContext({ interactiveGrants }));
  if (outcome.signal) exitLikeChild({ code: null, signal: outcome.signal });
  return outcome.exitCode;
}
