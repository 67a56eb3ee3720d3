// Tokens that a host's own CLI already holds: `gh` for GitHub Packages, `glab` for GitLab. They are read at
// command time and never copied into Latchkey's storage, so logging out of gh or glab takes effect at once.
import type { Context } from "../context.js";
import { nerfHost, nerfHostname } from "./nerf-dart.js";
import type { NerfDart, RegistryKind } from "./types.js";

/** How long a host CLI may take before its answer is abandoned. */
export const HOST_CLI_TIMEOUT_MS = 3000;

/** What asking a host CLI produced: a token, or why not. */
export interface HostCliAnswer {
  /** The command as shown in explanations, e.g. "gh auth token". */
  readonly name: string;
  readonly token: string | null;
  readonly reason: string;
}

interface HostCliCommand {
  readonly program: string;
  readonly args: readonly string[];
  readonly name: string;
  readonly host: string;
}

/**
 * The command that prints the token for a registry, or null when no host CLI serves it. GitHub Packages tokens
 * are github.com tokens. glab has no `auth token` subcommand (its `auth` has login, logout, status and the
 * docker helpers); `glab config get token --host H` prints the token glab stores for H.
 */
export function hostCliCommand(nerf: NerfDart, kind: RegistryKind): HostCliCommand | null {
  if (kind === "github" && nerfHostname(nerf) === "npm.pkg.github.com") {
    return {
      program: "gh",
      args: ["auth", "token", "--hostname", "github.com"],
      name: "gh auth token",
      host: "github.com",
    };
  }
  if (kind === "gitlab") {
    const host = nerfHost(nerf);
    return {
      program: "glab",
      args: ["config", "get", "token", "--host", host],
      name: "glab config get token",
      host,
    };
  }
  return null;
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/**
 * Asks the host CLI for the registry's token, time-boxed. An absent CLI, a non-zero exit, a timeout or output
 * that is not one token are reasons, not errors: the next source is tried. The CLI's own output is never
 * repeated in a reason, since it may carry the token.
 */
export async function hostCliToken(ctx: Context, command: HostCliCommand): Promise<HostCliAnswer> {
  const { name } = command;
  let result;
  try {
    result = await ctx.spawn(command.program, command.args, {
      // Never let a host CLI stop to ask a question: nobody may be there to answer it.
      env: { ...ctx.env, GH_PROMPT_DISABLED: "1", NO_COLOR: "1", GLAB_NO_PROMPT: "1" },
      timeoutMs: HOST_CLI_TIMEOUT_MS,
    });
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return { name, token: null, reason: `${command.program} is not installed` };
    return { name, token: null, reason: `${command.program} could not be started (${code ?? "error"})` };
  }
  if (result.timedOut) {
    return { name, token: null, reason: `timed out after ${HOST_CLI_TIMEOUT_MS / 1000} s` };
  }
  if (result.code !== 0) {
    const how = result.code === null ? `killed by ${result.signal ?? "a signal"}` : `exit ${result.code}`;
    return { name, token: null, reason: `${command.program} has no token for ${command.host} (${how})` };
  }
  const token = result.stdout.replace(/\r?\n$/, "");
  if (token === "")
    return { name, token: null, reason: `${command.program} has no token for ${command.host}` };
  if (!isTokenShaped(token)) {
    return { name, token: null, reason: `${command.program} printed something that is not a single token` };
  }
  return { name, token, reason: `${command.program} is logged in to ${command.host}` };
}

/** True for a value that can be sent as a bearer token: printable ASCII without spaces. */
export function isTokenShaped(value: string): boolean {
  return /^[\x21-\x7e]+$/.test(value);
}
