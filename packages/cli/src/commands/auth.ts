// `latchkey auth token` and `latchkey auth fetch`: an environment's access token, for scripts and for one-off
// requests to the services it opens.
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { readFileSafe } from "../fs/safe-file.js";
import { printJson, printStatus, printValue } from "../output/output.js";
import { selectProfile } from "../oauth/config.js";
import { authFetch } from "../oauth/fetch.js";
import { getAccessToken, type TokenTarget } from "../oauth/tokens.js";

/** Options shared by the `auth` subcommands that act on one environment. */
export interface EnvironmentSelection {
  env?: string;
  profile?: string;
}

/** Resolves profile and environment: --env, else the profile's default_environment. */
export async function resolveTarget(ctx: Context, selection: EnvironmentSelection): Promise<TokenTarget> {
  const selected = await selectProfile(ctx, selection.profile);
  const env = selection.env ?? selected.profile.defaultEnvironment;
  if (env === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: `No environment given: pass --env NAME (profile ${JSON.stringify(selected.name)} has no default_environment).`,
      hint: "Run `latchkey auth token --env NAME`, or set default_environment in the profile.",
    });
  }
  return { profile: selected.name, env };
}

/** `auth token`: prints the access token alone on stdout (or JSON with --json). */
export async function authToken(
  ctx: Context,
  selection: EnvironmentSelection & { json?: boolean },
  verbose: number,
): Promise<number> {
  const target = await resolveTarget(ctx, selection);
  const { token, source } = await getAccessToken(ctx, target, { verbose });
  if (selection.json) {
    printJson(ctx, {
      profile: target.profile,
      environment: target.env,
      access_token: token.access_token,
      token_type: token.token_type,
      expires_at: new Date(token.expires_at * 1000).toISOString(),
      ...(token.scope !== undefined ? { scope: token.scope } : {}),
      source,
    });
  } else {
    printValue(ctx, token.access_token);
  }
  return 0;
}

/** Options of `auth fetch`. */
export interface AuthFetchCommandOptions extends EnvironmentSelection {
  request?: string;
  header?: string[];
  data?: string;
}

async function requestBody(ctx: Context, data: string | undefined): Promise<string | Uint8Array | undefined> {
  if (data === undefined) return undefined;
  if (data === "@-") return ctx.stdin.readAll();
  if (data.startsWith("@")) {
    const bytes = await readFileSafe(data.slice(1));
    if (bytes === null) throw new LatchkeyError("LK_USAGE", { message: `-d ${data}: no such file.` });
    return bytes;
  }
  return data;
}

function parseHeaders(lines: readonly string[]): Headers {
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new LatchkeyError("LK_USAGE", { message: "-H expects 'Name: value' with a valid header name." });
    }
    if (/^(authorization|proxy-authorization)$/i.test(name)) {
      // Latchkey sets Authorization itself, and a credential on the command line would show in `ps`.
      throw new LatchkeyError("LK_TOKEN_IN_ARGV", {
        message: `-H ${name} is not accepted: auth fetch sends the environment's token itself, and a credential in argv shows in \`ps\`.`,
      });
    }
    headers.append(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** `auth fetch`: one request with the environment's token; body on stdout, status on stderr, 1 on HTTP ≥ 400. */
export async function authFetchCommand(
  ctx: Context,
  url: string,
  options: AuthFetchCommandOptions,
  verbose: number,
): Promise<number> {
  const target = await resolveTarget(ctx, options);
  const headers = parseHeaders(options.header ?? []);
  const body = await requestBody(ctx, options.data);
  if (body !== undefined && !headers.has("content-type"))
    headers.set("content-type", "application/x-www-form-urlencoded");
  const method = (options.request ?? (body === undefined ? "GET" : "POST")).toUpperCase();
  const response = await authFetch(
    ctx,
    target,
    url,
    { method, headers, ...(body !== undefined ? { body } : {}) },
    { verbose },
  );
  const bytes = new Uint8Array(await response.arrayBuffer());
  printStatus(ctx, `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`);
  if (bytes.length > 0) ctx.stdout.write(new TextDecoder().decode(bytes));
  return response.status >= 400 ? 1 : 0;
}
