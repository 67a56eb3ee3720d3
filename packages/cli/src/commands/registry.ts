// login, logout, whoami and token: registry credentials in the keystore. The token is taken from a
// masked prompt, stdin or a file, or obtained by npm's web or classic login, and validated with the registry's
// whoami before it is stored; it never travels in argv and never lands in a file outside the keystore.
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { openBrowser } from "../browser.js";
import { readSecretInput, readUserFile } from "../input.js";
import { printData, printError, printJson, printStatus, printValue } from "../output/output.js";
import { findRegistryConfig, loadRegistryConfigs, updateLoginRecord } from "../registry/config.js";
import { isTokenShaped } from "../registry/host-cli.js";
import {
  KNOWN_REGISTRIES,
  REGISTRY_ACCOUNT_PREFIX,
  accountNerfDart,
  isLoopbackNerfDart,
  nerfDart,
  registryAccount,
  registryKind,
} from "../registry/nerf-dart.js";
import {
  couchLogin,
  pollWebLogin,
  registryWhoami,
  startWebLogin,
  type WhoamiResult,
} from "../registry/registry-client.js";
import { describeCheck, registryUrlFor, resolveRegistryToken } from "../registry/sources.js";
import type { NerfDart, RegistryKind, SourceCheck, TokenResolution } from "../registry/types.js";

/** How a command names its registry: `--registry URL` or one of the known-registry flags. */
export interface RegistrySelection {
  registry?: string;
  npm?: boolean;
  github?: boolean;
  gitlab?: boolean;
}

/** The largest token file read: tokens are hundreds of bytes; anything this big is the wrong file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
const BROWSER_TIMEOUT_MS = 10_000;

/** The registry URL a command names, or undefined when it names none. */
export function selectedRegistry(selection: RegistrySelection): string | undefined {
  const chosen = [
    selection.registry,
    selection.npm === true ? KNOWN_REGISTRIES.npm : undefined,
    selection.github === true ? KNOWN_REGISTRIES.github : undefined,
    selection.gitlab === true ? KNOWN_REGISTRIES.gitlab : undefined,
  ].filter((v): v is string => v !== undefined);
  if (chosen.length > 1) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Name one registry: --registry URL, --npm, --github or --gitlab, not several.",
    });
  }
  return chosen[0];
}

/** The canonical URL of a registry: its scheme (https for a bare nerf dart) and its nerf dart. */
export function canonicalRegistryUrl(url: string): string {
  const nerf = nerfDart(url);
  const scheme = url.trim().startsWith("//") ? "https:" : new URL(url.trim()).protocol;
  return `${scheme}${nerf}`;
}

async function kindOf(ctx: Context, nerf: NerfDart): Promise<RegistryKind> {
  return (await findRegistryConfig(ctx, nerf))?.kind ?? registryKind(nerf);
}

function backendName(backend: string): string {
  return backend === "keyring"
    ? "OS keychain"
    : backend === "file"
      ? "encrypted file store"
      : `${backend} store`;
}

function checkedToken(value: string, from: string): string {
  const token = value.replace(/\r?\n$/, "");
  if (token === "") throw new LatchkeyError("LK_INPUT_EMPTY", { message: `No token was read from ${from}.` });
  if (!isTokenShaped(token)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `The token read from ${from} contains spaces, line breaks or control characters; a registry token is one word.`,
      hint: 'Check that the input holds the token alone, e.g. `printf %s "$TOKEN" | latchkey login --token-stdin`.',
    });
  }
  return token;
}

async function readTokenFile(ctx: Context, path: string): Promise<string> {
  const bytes = await readUserFile(ctx, path, "use --token-stdin");
  if (bytes.length > MAX_TOKEN_FILE_BYTES) {
    throw new LatchkeyError("LK_USAGE", {
      message: `The token file ${path} is ${bytes.length} bytes; a token file holds one token.`,
    });
  }
  return checkedToken(bytes.toString("utf8"), path);
}

/** Options of `latchkey login`. */
export interface LoginOptions extends RegistrySelection {
  tokenStdin?: boolean;
  tokenFile?: string;
  web?: boolean;
  user?: string;
  /** Set when `--token` was given: always refused. */
  token?: string;
  /** false with `--no-verify`: store the token without asking the registry's whoami. */
  verify?: boolean;
}

async function passwordLogin(ctx: Context, url: string, user: string, verbose: number): Promise<string> {
  const password = await readSecretInput(ctx, `Password for ${user} at ${url}`);
  const interactive = ctx.stdin.isTTY && ctx.stderr.isTTY;
  const result = await couchLogin(ctx, url, user, password, {
    verbose,
    otp: async () => {
      if (!interactive) {
        throw new LatchkeyError("LK_LOGIN_FAILED", {
          message: `${url} asks for a one-time password, and there is no terminal to ask it at.`,
          hint: "Log in on a terminal, or create a token on the registry and pass it with --token-stdin.",
        });
      }
      return ctx.prompts.secret("One-time password (two-factor authentication)");
    },
  });
  return result.token;
}

async function webLogin(
  ctx: Context,
  url: string,
  user: string | undefined,
  verbose: number,
): Promise<string> {
  const session = await startWebLogin(ctx, url, { verbose });
  if (session === null) {
    if (user !== undefined) {
      printStatus(ctx, `${url} offers no web login; logging in as ${user} with a password instead.`);
      return passwordLogin(ctx, url, user, verbose);
    }
    throw new LatchkeyError("LK_LOGIN_FAILED", {
      message: `${url} offers no web login.`,
      hint: "Log in with a user name (`--user NAME`, password at a masked prompt) or a token (`--token-stdin`, `--token-file FILE`, or the prompt).",
    });
  }
  printStatus(
    ctx,
    `Open this URL in a browser to log in to ${url}:\n  ${session.loginUrl}\nWaiting for the login to finish…`,
  );
  const browser = openBrowser(ctx, session.loginUrl, BROWSER_TIMEOUT_MS).catch(() => undefined);
  try {
    return await pollWebLogin(ctx, session, undefined, { verbose });
  } finally {
    await browser;
  }
}

function unverifiedToken(url: string, note: string | undefined): LatchkeyError {
  return new LatchkeyError("LK_TOKEN_UNVERIFIED", {
    message: `${url} could not confirm the token (${note ?? "no whoami"}), so it was not stored.`,
    hint:
      "Check the registry URL: a wrong path answers 404 too. If the registry really has no /-/whoami (or the token " +
      "cannot read it, like a GitLab job or deploy token), store it unchecked: add --no-verify to the login.",
  });
}

/**
 * `latchkey login`: obtains a token, checks it with the registry's whoami, and stores it in the keystore. A token
 * the registry cannot confirm is stored only with `--no-verify`.
 */
export async function login(ctx: Context, options: LoginOptions, verbose = 0): Promise<number> {
  if (options.token !== undefined) {
    throw new LatchkeyError("LK_TOKEN_IN_ARGV", {
      message: "`--token` is not accepted: a token on the command line shows in `ps` and shell history.",
      hint: "Pass it on stdin (`--token-stdin`), from a file (`--token-file FILE`), or at the masked prompt (run `latchkey login` on a terminal).",
    });
  }
  const url = canonicalRegistryUrl(selectedRegistry(options) ?? KNOWN_REGISTRIES.npm);
  const sources = [options.tokenStdin, options.tokenFile !== undefined].filter(Boolean).length;
  if (sources > 1) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Give the token one way: --token-stdin or --token-file, not both.",
    });
  }
  if (sources > 0 && (options.web === true || options.user !== undefined)) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        "--web and --user log in to obtain a token; they cannot be combined with a token given by --token-stdin or --token-file.",
    });
  }
  const nerf = nerfDart(url);
  const kind = await kindOf(ctx, nerf);
  if (url.startsWith("http:") && !isLoopbackNerfDart(nerf)) {
    printStatus(
      ctx,
      `Warning: ${url} is plain http; the token will cross the network unencrypted on every request.`,
    );
  }

  let token: string;
  if (options.tokenStdin === true) {
    token = checkedToken(Buffer.from(await ctx.stdin.readAll()).toString("utf8"), "stdin");
  } else if (options.tokenFile !== undefined) {
    token = await readTokenFile(ctx, options.tokenFile);
  } else if (options.web === true) {
    token = checkedToken(await webLogin(ctx, url, options.user, verbose), `the web login at ${url}`);
  } else if (options.user !== undefined) {
    token = checkedToken(await passwordLogin(ctx, url, options.user, verbose), `the login at ${url}`);
  } else {
    token = checkedToken(await readSecretInput(ctx, `Token for ${url}`), "the input");
  }

  // A token the person supplied is stored only once the registry has confirmed it: a wrong URL path answers 404
  // just like a registry without /-/whoami, and "Logged in" must not cover either. A token the registry's own
  // login just issued was confirmed by that login.
  const who = options.verify === false ? null : await registryWhoami(ctx, url, token, kind, { verbose });
  const issued = options.web === true || options.user !== undefined;
  if (who !== null && !who.verified && !issued) throw unverifiedToken(url, who.note);
  const account = registryAccount(nerf);
  const resolution = await ctx.keystore();
  await resolution.keystore.set(account, token);
  await updateLoginRecord(ctx, nerf, url);

  const where = `The token is in the ${backendName(resolution.backend)} (account ${account}).`;
  if (who === null) {
    printStatus(ctx, `Stored the token for ${url}, not verified (--no-verify). ${where}`);
  } else {
    const as = who.username === null ? "" : ` as ${who.username}`;
    printStatus(ctx, `Logged in to ${url}${as}. ${where}`);
    if (!who.verified) printStatus(ctx, `Note: the token could not be checked: ${who.note ?? "no whoami"}.`);
  }
  const effective = await resolveRegistryToken(ctx, url);
  if (effective.source !== "keystore" && effective.source !== null) {
    const winner = effective.checks.find((c) => c.won);
    if (winner !== undefined) {
      printStatus(
        ctx,
        `Note: ${describeCheck(winner)} comes before the stored token for this registry and will be used instead.`,
      );
    }
  }
  return 0;
}

/** Options of `latchkey logout`. */
export interface LogoutOptions extends RegistrySelection {
  all?: boolean;
}

/** `latchkey logout`: removes a registry's stored token (or every one with `--all`). */
export async function logout(ctx: Context, options: LogoutOptions): Promise<number> {
  const named = selectedRegistry(options);
  const { keystore } = await ctx.keystore();
  if (options.all === true) {
    if (named !== undefined) {
      throw new LatchkeyError("LK_USAGE", {
        message: "--all logs out of every registry; do not name one as well.",
      });
    }
    const accounts = (await keystore.list()).filter((a) => a.startsWith(REGISTRY_ACCOUNT_PREFIX));
    for (const account of accounts) {
      await keystore.delete(account);
      const nerf = accountNerfDart(account);
      if (nerf !== null) await updateLoginRecord(ctx, nerf, null);
    }
    printStatus(
      ctx,
      accounts.length === 0
        ? "No registry tokens were stored."
        : `Logged out of ${accounts.length} ${accounts.length === 1 ? "registry" : "registries"}: ${accounts.map((a) => a.slice(REGISTRY_ACCOUNT_PREFIX.length)).join(", ")}.`,
    );
    return 0;
  }
  const url = canonicalRegistryUrl(named ?? KNOWN_REGISTRIES.npm);
  const nerf = nerfDart(url);
  const removed = await keystore.delete(registryAccount(nerf));
  await updateLoginRecord(ctx, nerf, null);
  if (!removed) {
    throw new LatchkeyError("LK_TOKEN_MISSING", {
      message: `No token is stored for ${url}.`,
      hint: "`latchkey whoami` lists the registries that have a token, and where each comes from.",
    });
  }
  printStatus(ctx, `Logged out of ${url}: removed its stored token.`);
  const still = await resolveRegistryToken(ctx, url);
  if (still.token !== null) {
    const winner = still.checks.find((c) => c.won);
    if (winner !== undefined)
      printStatus(ctx, `Note: ${describeCheck(winner)} still supplies a token for ${url}.`);
  }
  return 0;
}

/** Options of `latchkey whoami`. */
export interface WhoamiOptions extends RegistrySelection {
  json?: boolean;
  explain?: boolean;
}

interface WhoamiEntry {
  registry: string;
  nerfDart: NerfDart;
  kind: RegistryKind;
  user: string | null;
  verified: boolean;
  note?: string;
  source: TokenResolution["source"];
  sourceName: string | null;
  storage: string;
  checks?: readonly SourceCheck[];
  error?: ReturnType<LatchkeyError["toJSON"]>;
}

/** Every registry that has some token source: stored, configured, or a known one whose variable is set. */
async function registriesWithSources(ctx: Context): Promise<string[]> {
  const nerfs = new Map<NerfDart, string | undefined>();
  const { keystore } = await ctx.keystore();
  for (const account of await keystore.list()) {
    const nerf = accountNerfDart(account);
    if (nerf !== null) nerfs.set(nerf, undefined);
  }
  for (const config of await loadRegistryConfigs(ctx)) nerfs.set(config.nerfDart, config.url);
  const set = (name: string): boolean => (ctx.env[name] ?? "") !== "";
  if (set("NPM_TOKEN")) nerfs.set(nerfDart(KNOWN_REGISTRIES.npm), KNOWN_REGISTRIES.npm);
  if (set("GH_TOKEN") || set("GITHUB_TOKEN"))
    nerfs.set(nerfDart(KNOWN_REGISTRIES.github), KNOWN_REGISTRIES.github);
  if (set("GITLAB_TOKEN") || set("CI_JOB_TOKEN")) {
    // In a GitLab CI job, the instance's own registry is the one its job token is for.
    const api = ctx.env.CI_API_V4_URL;
    const url = api ? `${api.replace(/\/+$/, "")}/packages/npm/` : KNOWN_REGISTRIES.gitlab;
    try {
      nerfs.set(nerfDart(url), url);
    } catch {
      nerfs.set(nerfDart(KNOWN_REGISTRIES.gitlab), KNOWN_REGISTRIES.gitlab);
    }
  }
  const urls: string[] = [];
  for (const [nerf, url] of nerfs)
    urls.push(url === undefined ? await registryUrlFor(ctx, nerf) : canonicalRegistryUrl(url));
  return urls.sort();
}

async function whoamiOne(
  ctx: Context,
  url: string,
  explain: boolean,
  verbose: number,
): Promise<{ entry: WhoamiEntry; failure?: LatchkeyError }> {
  const nerf = nerfDart(url);
  const entry: WhoamiEntry = {
    registry: url,
    nerfDart: nerf,
    kind: await kindOf(ctx, nerf),
    user: null,
    verified: false,
    source: null,
    sourceName: null,
    storage: (await ctx.keystore()).backend,
  };
  try {
    const resolution = await resolveRegistryToken(ctx, url, { explain });
    entry.source = resolution.source;
    entry.sourceName = resolution.checks.find((c) => c.won)?.name ?? null;
    if (explain) entry.checks = resolution.checks;
    if (resolution.token === null) {
      throw new LatchkeyError("LK_TOKEN_MISSING", { message: `No token is available for ${url}.` });
    }
    const who: WhoamiResult = await registryWhoami(ctx, url, resolution.token, resolution.kind, { verbose });
    entry.user = who.username;
    entry.verified = who.verified;
    if (who.note !== undefined) entry.note = who.note;
    return { entry };
  } catch (error) {
    if (!isLatchkeyError(error)) throw error;
    // The hint names this registry, so a user with several knows which one to log in to again.
    const hint =
      error.code === "LK_TOKEN_INVALID" || error.code === "LK_TOKEN_MISSING"
        ? `Run \`latchkey login --registry ${url}\`, or renew the token where it comes from; \`latchkey whoami --explain --registry ${url}\` shows every source.`
        : error.hint;
    const failure = new LatchkeyError(error.code, { message: error.message, hint, cause: error.cause });
    entry.error = failure.toJSON();
    return { entry, failure };
  }
}

function describeSource(entry: WhoamiEntry): string {
  if (entry.source === null) return "none";
  if (entry.source === "input") return "command input";
  if (entry.source === "keystore") return `stored token (${backendName(entry.storage)})`;
  return describeCheck({ source: entry.source, name: entry.sourceName ?? "" });
}

function formatEntry(entry: WhoamiEntry): string {
  const lines = [entry.registry];
  if (entry.error === undefined) {
    lines.push(
      `  user:    ${entry.user ?? "(not named by the registry)"}${entry.verified ? "" : ` — unverified: ${entry.note ?? ""}`}`,
    );
  }
  lines.push(`  source:  ${describeSource(entry)}`, `  storage: ${backendName(entry.storage)}`);
  if (entry.checks !== undefined) {
    lines.push("  sources, in precedence order:");
    for (const check of entry.checks) {
      lines.push(`    ${check.won ? "✓" : "-"} ${describeCheck(check)}: ${check.reason}`);
    }
  }
  return lines.join("\n");
}

/**
 * `latchkey whoami`: asks each registry who its token belongs to (every call; nothing is cached) and reports the
 * user, the token's source and the storage backend; with `--explain`, every source and why it won or not.
 */
export async function whoami(ctx: Context, options: WhoamiOptions, verbose = 0): Promise<number> {
  const named = selectedRegistry(options);
  const urls = named !== undefined ? [canonicalRegistryUrl(named)] : await registriesWithSources(ctx);
  if (urls.length === 0) {
    const none = new LatchkeyError("LK_TOKEN_MISSING", {
      message:
        "No registry has a token: none is stored or configured, and no registry token variable is set.",
      hint: "Run `latchkey login --registry URL` (or --npm, --github, --gitlab).",
    });
    if (options.json !== true) throw none;
    // No registry is an answer too: a script that asked for JSON can read it, and the exit code still says.
    printJson(ctx, { registries: [] });
    return printError(ctx, none, verbose, { json: true });
  }
  const results: { entry: WhoamiEntry; failure?: LatchkeyError }[] = [];
  for (const url of urls) results.push(await whoamiOne(ctx, url, options.explain === true, verbose));
  const entries = results.map((r) => r.entry);

  if (options.json === true) printJson(ctx, named !== undefined ? entries[0] : { registries: entries });
  else {
    // One named registry that failed has nothing to show on stdout but its explanation.
    const shown = entries.filter(
      (e) => e.error === undefined || options.explain === true || named === undefined,
    );
    if (shown.length > 0) printData(ctx, shown.map(formatEntry).join("\n\n"));
  }
  let exitCode = 0;
  for (const { failure } of results) {
    if (failure === undefined) continue;
    const code = printError(ctx, failure, verbose, { json: options.json === true });
    if (exitCode === 0) exitCode = code;
  }
  return exitCode;
}

/** `latchkey token`: prints the registry's token alone, newline-terminated, for scripts and helpers. */
export async function printToken(ctx: Context, selection: RegistrySelection): Promise<number> {
  const named = selectedRegistry(selection);
  if (named === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "Name the registry: --registry URL, --npm, --github or --gitlab.",
    });
  }
  const resolution = await resolveRegistryToken(ctx, named);
  if (resolution.token === null) {
    throw new LatchkeyError("LK_TOKEN_MISSING", {
      message: `No token is available for ${canonicalRegistryUrl(named)}.`,
      hint: `Run \`latchkey login --registry ${canonicalRegistryUrl(named)}\`, or set its token variable; \`latchkey whoami --explain --registry ${canonicalRegistryUrl(named)}\` shows every source checked.`,
    });
  }
  printValue(ctx, resolution.token);
  return 0;
}
