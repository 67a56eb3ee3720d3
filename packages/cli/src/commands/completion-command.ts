import { Argument, Command } from "commander";
import type { Context } from "../context.js";
import { DYNAMIC_SOURCES, SHELLS, completeValues, completionScript, type Shell } from "./completion.js";
import { globalOptions, type RunState } from "./support.js";

function root(command: Command): Command {
  let top = command;
  while (top.parent !== null) top = top.parent;
  return top;
}

/** `latchkey completion SHELL`: the script for the tree this command is part of. */
export function completionCommand(ctx: Context): Command {
  return new Command("completion")
    .description("print a shell completion script: commands, flags, environment names and registry URLs")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .addHelpText(
      "after",
      "\nLoad it from your shell's startup file, so it always matches the installed latchkey:\n" +
        "  bash   ~/.bashrc:                  source <(latchkey completion bash)\n" +
        "  zsh    ~/.zshrc, after compinit:   source <(latchkey completion zsh)\n" +
        "  fish   ~/.config/fish/config.fish: latchkey completion fish | source\n" +
        "Or save it where the shell looks for completions (generate it again after upgrading latchkey):\n" +
        "  latchkey completion bash > ~/.local/share/bash-completion/completions/latchkey\n" +
        '  latchkey completion zsh > "${fpath[1]}/_latchkey"\n' +
        "  latchkey completion fish > ~/.config/fish/completions/latchkey.fish\n" +
        "\nCommands and flags come from this version's command tree. The values of --env (the environments of\n" +
        "the current project's vault) and --registry (the registries in config.toml, latchkey.json and past\n" +
        "logins) are read when you complete them, by `latchkey __complete`: names only, never a secret.",
    )
    .action((shell: Shell, _opts: unknown, command: Command) => {
      ctx.stdout.write(completionScript(shell, root(command)));
    });
}

/** `latchkey __complete SOURCE`, which the completion scripts call back into; hidden from help. */
export function completeCommand(ctx: Context, state: RunState): Command {
  return new Command("__complete")
    .description("the names a completion script offers, one per line")
    .addArgument(new Argument("<source>", "what to list").choices(DYNAMIC_SOURCES))
    .action(async (source: string, _opts: unknown, command: Command) => {
      state.exitCode = await completeValues(ctx, source, globalOptions(command).verbose);
    });
}
