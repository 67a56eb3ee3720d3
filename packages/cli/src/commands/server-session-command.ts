import { Command, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { resolveServer } from "../server/session.js";
import { globalOptions, type RunState } from "./support.js";
import { tokenRotate } from "./server-session.js";

/** The help paragraph shared by `login`, `logout` and `whoami`: which of the two kinds of login a call is. */
export const SERVER_OR_REGISTRY_HELP =
  "\nTwo kinds of login share these commands:\n" +
  "  - a Latchkey server (sync): --server URL, or no registry flag while the active profile has a server\n" +
  '    (config.toml: [profiles.NAME] server = "https://latchkey.example.com") or LATCHKEY_SERVER is set;\n' +
  "    the session lives in the keystore under session:<server>, and a login records the server in the profile\n" +
  "  - a package registry: --registry URL, --npm, --github, --gitlab (or none of them and no server: npmjs)\n" +
  "Server URLs must use https (plain http only on 127.0.0.1, ::1 and localhost).\n";

/** The server options as commander hands them over. */
export interface ServerFlags {
  server?: string;
  profile?: string;
  device?: boolean;
  /** false with --no-browser; undefined otherwise (a hidden --browser keeps commander from defaulting it). */
  browser?: boolean;
}

/** Adds `--server` and `--profile` (and for login `--device`, `--no-browser`) to a registry command. */
export function withServerOptions(command: Command, login: boolean): Command {
  command
    .option(
      "--server <url>",
      "a Latchkey server, e.g. https://latchkey.example.com (default: LATCHKEY_SERVER, else the profile's server)",
    )
    .option("--profile <name>", "the profile whose server and session to use");
  if (login) {
    command
      .option("--device", "server login by device code (RFC 8628): for machines without a browser")
      // Declaring the positive form keeps `browser` undefined unless --no-browser is given, so `login sso`'s
      // check for stray parent options does not see a default.
      .addOption(new Option("--browser").hideHelp())
      .option("--no-browser", "server login: print the login URL instead of opening a browser");
  }
  return command;
}

/**
 * Whether a `login` / `logout` / `whoami` call is about a Latchkey server: `--server`, or no registry flag while
 * the active profile has a server or LATCHKEY_SERVER is set. Server-only flags with registry flags are a usage
 * error, never silently dropped.
 */
export async function isServerCall(
  ctx: Context,
  command: string,
  flags: ServerFlags,
  registryFlags: readonly string[],
): Promise<boolean> {
  const serverOnly = [
    flags.device === true ? "--device" : undefined,
    flags.browser === false ? "--no-browser" : undefined,
  ].filter((f): f is string => f !== undefined);
  if (flags.server !== undefined) {
    if (registryFlags.length > 0) {
      throw new LatchkeyError("LK_USAGE", {
        message: `\`${command} --server\` is a Latchkey server ${command}; it takes no registry options (got ${registryFlags.join(", ")}).`,
      });
    }
    return true;
  }
  if (registryFlags.length > 0) {
    const extra = [...serverOnly, ...(flags.profile !== undefined ? ["--profile"] : [])];
    if (extra.length > 0) {
      throw new LatchkeyError("LK_USAGE", {
        message: `${extra.join(", ")} ${extra.length === 1 ? "is" : "are"} for a Latchkey server ${command}, not a registry's (got ${registryFlags.join(", ")}).`,
      });
    }
    return false;
  }
  if ((await resolveServer(ctx, flags.profile === undefined ? {} : { profile: flags.profile })) !== null)
    return true;
  if (serverOnly.length > 0 || flags.profile !== undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: `${[...serverOnly, ...(flags.profile !== undefined ? ["--profile"] : [])].join(", ")} need${serverOnly.length + (flags.profile !== undefined ? 1 : 0) === 1 ? "s" : ""} a Latchkey server, and none is configured.`,
      hint: `Add --server URL, or set \`server\` in the profile's table of ${ctx.paths.config}.`,
    });
  }
  return false;
}

/** The registry flags present in a parsed option bag, spelled as on the command line. */
export function givenFlags(opts: Record<string, unknown>, names: readonly string[]): string[] {
  return names
    .filter((name) => opts[name] !== undefined && opts[name] !== false)
    .map((name) => `--${name.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`);
}

/** `latchkey token-rotate`. */
export function tokenRotateCommand(ctx: Context, state: RunState): Command {
  return new Command("token-rotate")
    .description(
      "replace the Latchkey server session's tokens: a refresh (new access and refresh token), then the old access token is revoked",
    )
    .option("--server <url>", "the server (default: LATCHKEY_SERVER, else the profile's server)")
    .option("--profile <name>", "the profile whose session to rotate")
    .addHelpText(
      "after",
      "\nUse it after a token may have been exposed (a shared screen, a leaked log). The new session replaces the\n" +
        "old one in the keystore; the server refuses the old access token from then on, and the new one is checked\n" +
        "with the server before the command reports success.",
    )
    .action(async (opts: { server?: string; profile?: string }, command: Command) => {
      state.exitCode = await tokenRotate(ctx, opts, globalOptions(command).verbose);
    });
}
