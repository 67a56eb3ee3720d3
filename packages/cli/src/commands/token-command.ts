import { Command } from "commander";
import type { Context } from "../context.js";
import { printToken, type RegistrySelection } from "./registry.js";
import type { RunState } from "./support.js";
import { TOKEN_SOURCES_HELP, withRegistryOptions } from "./target.js";

/** `latchkey token`: a registry's token alone on stdout (the fast path takes its common shapes, fast-path.ts). */
export function tokenCommand(ctx: Context, state: RunState): Command {
  return withRegistryOptions(
    new Command("token").description(
      "print a registry's token alone on stdout, for scripts and credential helpers",
    ),
    "required, or --npm, --github, --gitlab",
  )
    .addHelpText(
      "after",
      `${TOKEN_SOURCES_HELP}\nExample:\n  curl -H "Authorization: Bearer $(latchkey token --registry https://npm.example.com/)" …\n` +
        "Exits 1 with LK_TOKEN_MISSING on stderr when no source has a token.",
    )
    .action(async (opts: RegistrySelection) => {
      state.exitCode = await printToken(ctx, opts);
    });
}
