import { Command } from "commander";
import type { Context } from "../context.js";
import { gitCredential } from "./git-credential.js";
import type { RunState } from "./support.js";

/** Builds `git-credential <operation>`, the command git runs as its credential helper. */
export function gitCredentialCommand(ctx: Context, state: RunState): Command {
  return new Command("git-credential")
    .description("git's credential helper: answers git from the keystore (git runs it; see `setup git`)")
    .argument("<operation>", "get, store or erase, appended by git; other operations are ignored")
    .addHelpText(
      "after",
      "\ngit writes a credential description (protocol=, host=, username=, password=… lines) on stdin.\n" +
        "`get` prints username= and password= for an exact protocol + host (+ path with credential.useHttpPath)\n" +
        "match only; `store` keeps what git used successfully; `erase` removes it when git rejects it.\n" +
        "Only http and https are answered; input with CR, NUL or malformed lines is refused (LK_HELPER_INPUT_INVALID).\n" +
        "\nExamples:\n" +
        "  latchkey setup git                    # make git call this helper\n" +
        "  # store a token by hand: printf is a shell builtin, so the token never shows in `ps`\n" +
        "  printf 'protocol=https\\nhost=git.example.com\\nusername=me\\npassword=%s\\n' \"$TOKEN\" \\\n" +
        "    | latchkey git-credential store\n" +
        "  printf 'protocol=https\\nhost=git.example.com\\n' | latchkey git-credential get",
    )
    .action(async (operation: string) => {
      state.exitCode = await gitCredential(ctx, operation);
    });
}
