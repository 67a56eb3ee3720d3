// `latchkey setup git`: points git's credential.helper at `latchkey git-credential`, through `git config` itself
// (git owns its config file's syntax and locking; Latchkey never edits it by hand).
import { LatchkeyError } from "@latchkey/core";
import { isAbsolute } from "node:path";
import type { Context, Platform, SpawnResult } from "../context.js";
import { canonicalHost, type GitProtocol } from "../helpers/git-credential.js";
import { printJson, printStatus } from "../output/output.js";
import { parseQuotedWords, shellQuote } from "../shell-words.js";

/** Options of `setup git`. */
export interface SetupGitOptions {
  readonly scope: "global" | "local";
  /** Limit the helper to one host (`credential.<url>.helper`); all hosts when absent. */
  readonly host?: string;
  readonly json: boolean;
}

/**
 * The path of the `latchkey` command this process was started as (process.argv[1]: a global install's
 * `<prefix>/bin/latchkey`, a project's `node_modules/.bin/latchkey`), or null when it is not an absolute path a
 * shell line can name. Helper configurations run Latchkey by this path.
 */
export function latchkeyCommandPath(platform: Platform): string | null {
  const { cliPath } = platform;
  return cliPath !== undefined && isAbsolute(cliPath) && !/[\n\0]/.test(cliPath) ? cliPath : null;
}

/**
 * The `credential.helper` value that runs this installation of Latchkey. git's `!` form hands the rest to the
 * shell (gitcredentials(7), "CUSTOM HELPERS") with the operation appended. The command is named by absolute path
 * so git finds the same Latchkey whatever PATH a GUI, IDE or hook gives it; Node is not named: the command runs
 * on the `node` its `#!/usr/bin/env node` line finds, like every command npm installs, so the helper outlives
 * Node upgrades (Homebrew's and nvm's Node paths carry the version). Single-quoted: spaces or quotes stay one word.
 */
export function gitHelperCommand(platform: Platform): string {
  const command = latchkeyCommandPath(platform);
  if (command === null) {
    throw new LatchkeyError("LK_GIT_CONFIG_FAILED", {
      message: "Could not tell where this latchkey command is installed, so git could not be pointed at it.",
      hint: "Run `latchkey setup git` through the installed `latchkey` command, not from a bundle or REPL.",
    });
  }
  return `!${shellQuote(command)} git-credential`;
}

/**
 * The programs a `credential.helper` value written by `setup git` runs: the latchkey command (and, as written by
 * earlier versions, the Node before it). Null for a value `setup git` did not write.
 */
export function gitHelperPrograms(value: string): string[] | null {
  const suffix = " git-credential";
  if (!value.startsWith("!") || !value.endsWith(suffix)) return null;
  return parseQuotedWords(value.slice(1, -suffix.length));
}

/**
 * The credential context for `--host`: `https://<host>` (or `http://` when the value says so), host validated
 * and lower-cased as the helper itself would see it.
 */
export function credentialContext(value: string): string {
  const match = /^(https?):\/\/([^/]*)\/?$/i.exec(value);
  const protocol = (match ? match[1]!.toLowerCase() : "https") as GitProtocol;
  try {
    return `${protocol}://${canonicalHost(protocol, match ? match[2]! : value)}`;
  } catch (error) {
    throw new LatchkeyError("LK_USAGE", {
      message: "--host must be a host name with an optional port, or an http(s):// URL of one, with no path.",
      hint: "e.g. `latchkey setup git --host git.example.com` or `--host http://127.0.0.1:8080`.",
      cause: error,
    });
  }
}

// A helper value may be a shell snippet with a token inside (gitcredentials(7) shows one), so only its kind or the
// helper's name is ever printed.
function describeHelper(value: string): string {
  if (value.startsWith("!")) return "a shell snippet";
  return value.trim().split(/\s+/)[0] ?? value;
}

async function runGit(ctx: Context, args: readonly string[]): Promise<SpawnResult> {
  try {
    return await ctx.spawn("git", args, { env: ctx.env, cwd: ctx.cwd, timeoutMs: 30_000 });
  } catch (error) {
    throw new LatchkeyError("LK_GIT_CONFIG_FAILED", {
      message: "git could not be started: it is not installed or not on PATH.",
      cause: error,
    });
  }
}

function failed(result: SpawnResult, what: string): LatchkeyError {
  const reason = result.timedOut
    ? "it timed out"
    : (result.stderr.trim().split("\n")[0] ?? `exit ${result.code ?? result.signal}`);
  return new LatchkeyError("LK_GIT_CONFIG_FAILED", { message: `\`git config ${what}\` failed: ${reason}` });
}

/**
 * Writes the helper into git's config: first an empty value, which makes git forget the helpers configured before
 * it (a plaintext `store` helper would otherwise also receive every password git approves), then Latchkey's.
 * Running it again leaves the same two values.
 */
export async function setupGit(ctx: Context, options: SetupGitOptions): Promise<number> {
  const helper = gitHelperCommand(ctx.platform);
  const context = options.host === undefined ? undefined : credentialContext(options.host);
  const key = context === undefined ? "credential.helper" : `credential.${context}.helper`;
  const scope = `--${options.scope}`;

  const before = await runGit(ctx, ["config", scope, "--get-all", key]);
  // `git config --get-all` exits 1 when the key is not set.
  if (before.code !== 0 && before.code !== 1) throw failed(before, `${scope} --get-all ${key}`);
  const replaced = (before.code === 0 ? before.stdout.split("\n") : [])
    .filter((value) => value !== "" && value !== helper)
    .map(describeHelper);

  const reset = await runGit(ctx, ["config", scope, "--replace-all", key, ""]);
  if (reset.code !== 0) throw failed(reset, `${scope} --replace-all ${key}`);
  const add = await runGit(ctx, ["config", scope, "--add", key, helper]);
  if (add.code !== 0) throw failed(add, `${scope} --add ${key}`);

  if (options.json) {
    printJson(ctx, { scope: options.scope, key, helper, hosts: context ?? "all", replaced });
    return 0;
  }
  const where = options.scope === "global" ? "your global git config" : "this repository's git config";
  printStatus(
    ctx,
    `git will ask Latchkey for ${context === undefined ? "http(s) credentials" : `credentials for ${context}`} ` +
      `(${key} in ${where}).`,
  );
  if (replaced.length > 0) printStatus(ctx, `It replaces: ${replaced.join(", ")}.`);
  printStatus(
    ctx,
    "The next password or token you give git is kept in the keystore once git has used it successfully.\n" +
      "To store one now: printf 'protocol=https\\nhost=HOST\\nusername=USER\\npassword=%s\\n' \"$TOKEN\" | " +
      "latchkey git-credential store",
  );
  return 0;
}
