import { Command } from "commander";
import type { Context } from "../context.js";
import { whoami, type RegistrySelection } from "./registry.js";
import { serverWhoami } from "./server-session.js";
import type { RunState } from "./support.js";
import {
  SERVER_OR_REGISTRY_HELP,
  TOKEN_SOURCES_HELP,
  resolveCommandTarget,
  withRegistryOptions,
  withServerOptions,
} from "./target.js";

type WhoamiFlags = RegistrySelection & { json?: boolean; explain?: boolean };

/** `latchkey whoami`: who a Latchkey server, or each registry, says the stored credentials belong to. */
export function whoamiCommand(ctx: Context, state: RunState): Command {
  const command = withRegistryOptions(
    new Command("whoami").description(
      "ask each registry who its token belongs to, with the token's source and the storage backend",
    ),
    "default: every registry that has a token source",
  )
    .option("--json", "print JSON")
    .option("--explain", "list every token source per registry and why it won or did not")
    .addHelpText(
      "after",
      `${TOKEN_SOURCES_HELP}\nThe registry is asked on every call; an invalid token fails with LK_TOKEN_INVALID.\n` +
        "A Latchkey server is asked too (GET /api/v1/me, signed): an expired or revoked session fails with\n" +
        "LK_SESSION_EXPIRED, no session with LK_NOT_LOGGED_IN.\n" +
        SERVER_OR_REGISTRY_HELP,
    )
    .action(async (_opts: unknown, command: Command) => {
      const { target, opts, verbose } = await resolveCommandTarget<WhoamiFlags>(ctx, command, "whoami");
      state.exitCode =
        target === "server" ? await serverWhoami(ctx, opts, verbose) : await whoami(ctx, opts, verbose);
    });
  return withServerOptions(command, false);
}
