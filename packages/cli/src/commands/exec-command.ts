import { Command } from "commander";
import type { Context } from "../context.js";
import { execWithTokens } from "./exec.js";
import { globalOptions, type RunState } from "./support.js";

/** Builds `latchkey exec`. */
export function execCommand(ctx: Context, state: RunState): Command {
  return new Command("exec")
    .description("run npm, pnpm, yarn or any program with registry tokens handed over in its environment")
    .option("--strict", "do not start the program when a registry an .npmrc names has no token")
    .argument("<command...>", "the program and its arguments (after --)")
    .passThroughOptions()
    .addHelpText(
      "after",
      "\nThe registries are the ones npm would use here: `registry=` and every `@scope:registry=` in the project's\n" +
        ".npmrc (nearest directory with package.json), your ~/.npmrc (or npm_config_userconfig) and npm_config_*\n" +
        "variables, with https://registry.npmjs.org/ when none names a default. Each token is resolved like\n" +
        "`latchkey token` (environment, credential provider, gh/glab, then the keystore) and given to the program\n" +
        "only in its environment, never in argv or a file:\n" +
        "  npm_config_//host/:_authToken    read by npm and pnpm (pnpm 10 only for hosts without a port)\n" +
        "  pnpm_config_//host/:_authToken   read by pnpm 11+\n" +
        "  LATCHKEY_TOKEN_<HOST>_<HASH>      for files that say ${LATCHKEY_TOKEN_…}: see `latchkey setup npmrc`\n" +
        "                                   (yarn 1) and .yarnrc.yml npmAuthToken (yarn 2+)\n" +
        "A shell script between latchkey and the client (Debian's /bin/sh is dash) drops the npm_config_//…\n" +
        "variables, whose names are not shell identifiers; the LATCHKEY_TOKEN_* ones survive it.\n" +
        "No .npmrc is changed. A registry without a token gets a note on stderr (an error with --strict). The\n" +
        "program's exit code and termination signal are passed through; SIGINT and SIGTERM are forwarded to it.\n\n" +
        "Examples:\n" +
        "  latchkey exec -- npm install\n" +
        "  latchkey exec -- npm publish\n" +
        "  latchkey exec --strict -- pnpm install --frozen-lockfile",
    )
    .action(async (argv: string[], opts: { strict?: boolean }, command: Command) => {
      state.exitCode = await execWithTokens(ctx, state, {
        command: argv,
        strict: opts.strict === true,
        verbose: globalOptions(command).verbose,
      });
    });
}
