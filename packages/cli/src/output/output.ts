import { LatchkeyError } from "@latchkey/core";
import type { Context, OutputStream } from "../context.js";

/** True when `stream` should get ANSI colour: a TTY, NO_COLOR unset (https://no-color.org), and not TERM=dumb. */
export function colourEnabled(env: Context["env"], stream: OutputStream): boolean {
  return stream.isTTY && !env.NO_COLOR && env.TERM !== "dumb";
}

/** Colour helpers that turn into identity functions where colour is off. */
export function palette(env: Context["env"], stream: OutputStream) {
  const on = colourEnabled(env, stream);
  const wrap = (open: number, close: number) => (text: string) =>
    on ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
  };
}

/** Data goes to stdout: what a script would capture. */
export function printData(ctx: Context, text: string): void {
  ctx.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/**
 * One value alone on stdout (`env get`, `keystore get`, `token`, `auth token`): exactly its bytes, and a newline
 * after it only when stdout is a terminal, so the shell prompt does not run on after it. A script therefore
 * gets what was stored, byte for byte, through `> file`, a pipe or `$(…)`; a value that itself ends in a
 * newline (a PEM key) keeps it, which an appended newline would make impossible to tell apart.
 */
export function printValue(ctx: Context, value: string): void {
  ctx.stdout.write(ctx.stdout.isTTY ? `${value}\n` : value);
}

/** One JSON document, as `--json` prints it (data on stdout, an error on stderr). */
function jsonDocument(value: unknown, replacer?: (key: string, value: unknown) => unknown): string {
  return `${JSON.stringify(value, replacer, 2)}\n`;
}

/** `--json` output: one JSON document on stdout. */
export function printJson(ctx: Context, value: unknown): void {
  ctx.stdout.write(jsonDocument(value));
}

/** Status and progress go to stderr, so they never mix into data a script captures. */
export function printStatus(ctx: Context, text: string): void {
  ctx.stderr.write(text.endsWith("\n") ? text : `${text}\n`);
}

const authHeaderPattern = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const secretParamPattern =
  /\b(token|secret|password|passphrase|code|access_token|refresh_token|id_token|client_secret)=[^\s&"']+/gi;

/**
 * Masks anything shaped like a credential in diagnostic text, plus the values of secret-bearing environment
 * variables, so `-v` detail from libraries can be shown without leaking.
 */
export function redact(text: string, env: Context["env"] = {}): string {
  let out = text
    .replace(authHeaderPattern, (_m, scheme: string) => `${scheme} [REDACTED]`)
    .replace(secretParamPattern, (_m, name: string) => `${name}=[REDACTED]`);
  for (const [name, value] of Object.entries(env)) {
    if (
      value &&
      value.length >= 6 &&
      /(^|_)(TOKEN|SECRET|PASSWORD|PASSPHRASE|API_KEY|PRIVATE_KEY)(_|$)/.test(name)
    ) {
      out = out.split(value).join("[REDACTED]");
    }
  }
  return out;
}

function describeValue(value: unknown): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? typeof value);
}

function causeChain(error: unknown): string[] {
  const lines: string[] = [];
  let current: unknown = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    lines.push(current instanceof Error ? `${current.name}: ${current.message}` : describeValue(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines;
}

/** How {@link printError} writes: `json` for a command run with `--json`. */
export interface ErrorFormat {
  readonly json?: boolean;
}

/**
 * Prints an error the way every command does: code, message and hint; causes with -v, stack with -vv. An error
 * outside the catalogue is a bug, shown as LK_INTERNAL with a short line. With `json` it is one JSON object on
 * stderr instead (LatchkeyError.toJSON, plus `causes` and `stack` with -v/-vv), so a script that asked for JSON
 * can parse the failure too; the exit code is the same either way.
 */
export function printError(ctx: Context, error: unknown, verbose: number, format: ErrorFormat = {}): number {
  const known = error instanceof LatchkeyError ? error : undefined;
  const shown = known ?? new LatchkeyError("LK_INTERNAL", { cause: error });
  const causes =
    verbose < 1
      ? []
      : known
        ? causeChain(known)
        : [error instanceof Error ? `${error.name}: ${error.message}` : String(error)];
  const stack = verbose >= 2 && error instanceof Error ? error.stack : undefined;
  if (format.json === true) {
    const body = {
      ...shown.toJSON(),
      ...(causes.length > 0 ? { causes } : {}),
      ...(stack === undefined ? {} : { stack }),
    };
    ctx.stderr.write(
      jsonDocument(body, (_key, value) => (typeof value === "string" ? redact(value, ctx.env) : value)),
    );
    return shown.exitCode;
  }
  const c = palette(ctx.env, ctx.stderr);
  const lines = [
    `${c.red(c.bold("error"))} ${c.bold(shown.code)}: ${shown.message}`,
    `  ${c.dim("hint:")} ${shown.hint}`,
  ];
  for (const cause of causes) lines.push(`  ${c.dim("cause:")} ${cause}`);
  if (stack !== undefined) lines.push(c.dim(stack));
  if (verbose < 1 && !known) lines.push(`  ${c.dim("(run with -v for detail)")}`);
  ctx.stderr.write(`${redact(lines.join("\n"), ctx.env)}\n`);
  return shown.exitCode;
}
