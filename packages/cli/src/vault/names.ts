import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { sameVariable } from "../env-names.js";

type Os = Context["platform"]["os"];

const KEY_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Environment names appear in file names of later exports and in URLs of the sync API: keep them plain.
const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The environment used when no `--env` is given. */
export const DEFAULT_ENVIRONMENT = "default";

/** Checks a secret's name is a portable environment variable name. */
export function validateKeyName(name: string): string {
  if (!KEY_NAME.test(name)) {
    throw new LatchkeyError("LK_ENV_KEY_INVALID", {
      message: `${JSON.stringify(name)} is not a valid secret name.`,
    });
  }
  return name;
}

// Variables a program relies on to start, or that decide which code it or its interpreter loads: a secret by one
// of these names would replace it in every program `run` starts (a vault can also arrive by `env pull`).
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "PWD",
  "TMPDIR",
  "IFS",
  "ENV",
  "BASH_ENV",
  "SHELLOPTS",
  "BASHOPTS",
  "PS4",
  "PROMPT_COMMAND",
  "NODE_OPTIONS",
  "NODE_PATH",
  "PYTHONPATH",
  "PYTHONHOME",
  "PYTHONSTARTUP",
  "PERL5LIB",
  "PERL5OPT",
  "RUBYLIB",
  "RUBYOPT",
  "JAVA_TOOL_OPTIONS",
  "JDK_JAVA_OPTIONS",
  "_JAVA_OPTIONS",
]);
// The dynamic linkers' variables (LD_PRELOAD, DYLD_INSERT_LIBRARIES…) and Latchkey's own.
const RESERVED_PREFIXES = ["LD_", "DYLD_", "LATCHKEY_"] as const;

/**
 * True for a name a secret may take only with --allow-override (see RESERVED_NAMES), compared the way `os`
 * compares variable names: on Windows `Path` is PATH.
 */
export function isReservedName(name: string, os: Os): boolean {
  for (const reserved of RESERVED_NAMES) if (sameVariable(reserved, name, os)) return true;
  return RESERVED_PREFIXES.some((prefix) => sameVariable(name.slice(0, prefix.length), prefix, os));
}

/** Refuses (LK_ENV_KEY_RESERVED) a reserved name unless the user allowed overriding it. */
export function checkReservedName(name: string, allowOverride: boolean, os: Os): void {
  if (allowOverride || !isReservedName(name, os)) return;
  throw new LatchkeyError("LK_ENV_KEY_RESERVED", {
    message: `${name} is reserved: a secret called ${name} would replace the ${name} every program started by \`latchkey run\` relies on.`,
    details: { key: name },
  });
}

/** What {@link checkReservedNames} refuses: starting a program, or printing exports for a shell to evaluate. */
export type ReservedNameUse =
  | { readonly kind: "run"; readonly program: string }
  /** `command`: the one printing them, for the hint (default `latchkey env export --format shell`). */
  | { readonly kind: "export-shell"; readonly command?: string };

/**
 * Refuses (LK_ENV_KEY_RESERVED) reserved names among `names`, the variables `use` would set from `environment`:
 * starting a program with them (`run`), or printing them as exports for a shell to evaluate (`env export --format
 * shell`). Checked at that moment, not only when a secret is set: a vault can arrive by `env pull`, written by
 * whoever may push to it, and its NODE_OPTIONS, LD_PRELOAD or PATH would choose the code that runs next. Names the
 * variables, never their values.
 */
export function checkReservedNames(
  use: ReservedNameUse,
  environment: string,
  names: Iterable<string>,
  os: Os,
): void {
  const reserved = [...names].filter((name) => isReservedName(name, os)).sort();
  if (reserved.length === 0) return;
  const what = use.kind === "run" ? `Not starting ${use.program}` : "Not printing shell exports";
  const command = use.kind === "run" ? "latchkey run" : (use.command ?? "latchkey env export --format shell");
  throw new LatchkeyError("LK_ENV_KEY_RESERVED", {
    message: `${what}: ${environment} would set ${reserved.join(", ")}, which ${reserved.length === 1 ? "decides" : "decide"} how programs start or which code they run.`,
    hint:
      "A vault can come from another machine or member by `env pull`: if you did not set these yourself, remove them " +
      `(\`latchkey env unset --env ${environment} ${reserved.join(" ")}\`); if they should be set, pass --allow-override to \`${command}\`.`,
    details: { environment, keys: reserved },
  });
}

/**
 * The name in `names` that differs from `wanted` only in case, for a "did you mean" (environment names and
 * secret names are case-sensitive, and a wrong case is the likeliest typo); undefined when there is none.
 */
export function sameNameOtherCase(wanted: string, names: Iterable<string>): string | undefined {
  const folded = wanted.toLowerCase();
  for (const name of names) if (name !== wanted && name.toLowerCase() === folded) return name;
  return undefined;
}

/** Checks a value can live in an environment variable. The value itself never appears in the error. */
export function validateValue(name: string, value: string): string {
  if (value.includes("\0")) {
    throw new LatchkeyError("LK_ENV_VALUE_INVALID", {
      message: `The value for ${name} contains a NUL byte.`,
    });
  }
  return value;
}

/** Checks an environment name given with `--env`. */
export function validateEnvName(name: string): string {
  if (!ENV_NAME.test(name)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `${JSON.stringify(name)} is not a valid environment name.`,
      hint: "Use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. staging, prod-eu).",
    });
  }
  return name;
}

/** Splits `KEY=VALUE` at the first `=`; a bare `KEY` yields no value. */
export function parseAssignment(argument: string): { key: string; value: string | undefined } {
  const at = argument.indexOf("=");
  if (at === -1) return { key: validateKeyName(argument), value: undefined };
  const key = validateKeyName(argument.slice(0, at));
  return { key, value: validateValue(key, argument.slice(at + 1)) };
}
