import { LatchkeyError } from "@latchkey/core";

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
