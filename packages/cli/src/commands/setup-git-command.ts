import { Command, Option } from "commander";
import type { Context } from "../context.js";
import { setupGit } from "./setup-git.js";
import type { RunState } from "./support.js";

/** Builds `setup git`. */
export function setupGitCommand(ctx: Context, state: RunState): Command {
  return new Command("git")
    .description(
      "make git ask Latchkey for http(s) credentials (sets credential.helper through `git config`)",
    )
    .addOption(new Option("--global", "write your global git config (the default)").conflicts("local"))
    .addOption(new Option("--local", "write the current repository's git config only"))
    .option(
      "--host <host>",
      "only for this host: `git.example.com[:port]`, or `http://host[:port]` for plain http",
    )
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      "\ngit then runs `latchkey git-credential get|store|erase` by this latchkey's absolute path, on the first\n" +
        "`node` on PATH. Earlier helpers for the same scope are replaced (an empty value resets git's list), so a\n" +
        "plaintext `store` helper no longer receives your passwords. Run it again after moving Latchkey\n" +
        "(`latchkey doctor` warns when the configured command is gone).\n" +
        "\nExamples:\n" +
        "  latchkey setup git\n" +
        "  latchkey setup git --host git.example.com\n" +
        "  latchkey setup git --local --host http://127.0.0.1:8080",
    )
    .action(async (opts: { local?: boolean; host?: string; json?: boolean }) => {
      state.exitCode = await setupGit(ctx, {
        scope: opts.local === true ? "local" : "global",
        ...(opts.host === undefined ? {} : { host: opts.host }),
        json: opts.json === true,
      });
    });
}

/**
 * Adds `git` under `setup`, creating `setup` when no other module has registered it. cli.ts calls this after
 * every other command, so it finds a `setup` built elsewhere instead of adding a second one.
 */
export function addSetupGit(program: Command, ctx: Context, state: RunState): void {
  const setup =
    program.commands.find((command) => command.name() === "setup") ??
    program.command("setup").description("configure other tools to take their credentials from Latchkey");
  setup.addCommand(setupGitCommand(ctx, state));
}
