// Environment variable names compared the way the operating system compares them: Windows ignores case
// (`npm_token` and `NPM_TOKEN` are one variable there), POSIX systems do not. A check that compares names
// otherwise can be walked around on one platform or the other.
import type { Context } from "./context.js";

type Os = Context["platform"]["os"];

/** Whether `a` and `b` name the same environment variable on `os` (absent: POSIX). */
export function sameVariable(a: string, b: string, os: Os): boolean {
  return os === "win32" ? a.toUpperCase() === b.toUpperCase() : a === b;
}

/** The value of the variable `name` in `env`, looked up the way `os` looks it up. */
export function readVariable(env: Context["env"], name: string, os: Os): string | undefined {
  if (Object.hasOwn(env, name)) return env[name];
  if (os !== "win32") return undefined;
  for (const [key, value] of Object.entries(env)) if (sameVariable(key, name, os)) return value;
  return undefined;
}
