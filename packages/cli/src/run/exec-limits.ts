/**
 * What the kernel lets execve(2) carry, checked before `run` and `exec` start a program: past these limits
 * execve fails with E2BIG, which Node's process.execve turns into an abort (exit 134) and spawn into an error
 * that names no variable. Linux limits each argument and each NAME=VALUE string to MAX_ARG_STRLEN, and all of
 * them together to a quarter of the stack size limit (`ulimit -s`) clamped to 128 KiB…6 MiB, less a pointer per
 * string; macOS limits the total to kern.argmax (1 MiB). Sizes are UTF-8 bytes, each string's final NUL counted.
 */
import fs from "node:fs";
import { LatchkeyError } from "@latchkey/core";

/** Linux's MAX_ARG_STRLEN (32 pages of 4 KiB): the most one argument or NAME=VALUE may take, NUL included. */
export const LINUX_MAX_ARG_STRLEN = 32 * 4096;

/** What the running system allows; null where a limit does not exist or is not known. */
export interface ExecLimits {
  /** The most one argument or one NAME=VALUE string may take, its NUL included. */
  readonly perString: number | null;
  /** The most all strings (program path, arguments, environment) may take; called only when needed. */
  readonly total: (strings: number) => number | null;
}

// Linux always allows 32 pages in total, whatever the stack limit (macOS allows more): below that no total check
// is needed, so an ordinary start never reads /proc.
const LINUX_MIN_TOTAL = 32 * 4096;
const LINUX_MAX_TOTAL = ((8 * 1024 * 1024) / 4) * 3;
// Room for what the kernel adds on its own: a #! line's interpreter and argument (at most 256 bytes), the
// script's path, and a program path longer than the command name spawn was given.
const MARGIN = 4096;

/** The stack size soft limit from /proc/self/limits (children inherit it); null when it cannot be read. */
export function linuxStackLimit(text: string): number | null {
  const line = /^Max stack size\s+(\S+)/m.exec(text);
  if (line === null) return null;
  if (line[1] === "unlimited") return Number.POSITIVE_INFINITY;
  const value = Number(line[1]);
  return Number.isSafeInteger(value) ? value : null;
}

/** Linux's space for the strings of an execve: see fs/exec.c, bprm_stack_limits(). */
export function linuxTotalLimit(stack: number | null, strings: number): number {
  // An unreadable limit is taken as the usual 8 MiB stack.
  const quarter = (stack ?? 8 * 1024 * 1024) / 4;
  return Math.max(Math.min(LINUX_MAX_TOTAL, quarter), LINUX_MIN_TOTAL) - strings * 8;
}

/** The limits of the platform this process runs on. */
export function systemExecLimits(platform: NodeJS.Platform = process.platform): ExecLimits {
  if (platform === "linux") {
    return {
      perString: LINUX_MAX_ARG_STRLEN,
      total: (strings) => {
        let text = "";
        try {
          text = fs.readFileSync("/proc/self/limits", "utf8");
        } catch {
          // No /proc: the usual limit applies.
        }
        return linuxTotalLimit(linuxStackLimit(text), strings);
      },
    };
  }
  if (platform === "darwin") return { perString: null, total: () => 1024 * 1024 };
  return { perString: null, total: () => null };
}

const format = (n: number): string => n.toLocaleString("en-US");

/**
 * Refuses (LK_RUN_ENV_TOO_LARGE) to start `command` with `args` and `env` when execve could not carry them,
 * naming the variable (or the argument's position), its size and the limit, never a value.
 */
export function checkExecSize(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  limits: ExecLimits = systemExecLimits(),
): void {
  const program = JSON.stringify(command);
  let total = Buffer.byteLength(command) + 1;
  const sizes: [string, number][] = [];
  for (const [name, value] of Object.entries(env)) {
    const size = Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
    if (limits.perString !== null && size > limits.perString) {
      throw new LatchkeyError("LK_RUN_ENV_TOO_LARGE", {
        message:
          `Not starting ${program}: ${name} takes ${format(size)} bytes as an environment variable, and this ` +
          `system passes at most ${format(limits.perString)} bytes per variable (name, "=", value and a NUL).`,
        hint:
          `Give it to the program as a file: \`latchkey run --file ${name} -- …\` writes it to a private file ` +
          `and sets ${name}_FILE to that file's path (or --mount NAME for every secret at once).`,
        details: { variable: name, bytes: size, limit: limits.perString },
      });
    }
    sizes.push([name, size]);
    total += size;
  }
  const argv = [command, ...args];
  for (const [index, arg] of argv.entries()) {
    const size = Buffer.byteLength(arg) + 1;
    if (limits.perString !== null && size > limits.perString) {
      throw new LatchkeyError("LK_RUN_ENV_TOO_LARGE", {
        message: `Not starting ${program}: argument ${index} takes ${format(size)} bytes, and this system passes at most ${format(limits.perString)} bytes per argument.`,
        hint: "Pass large data in a file or on stdin instead of the command line.",
        details: { argument: index, bytes: size, limit: limits.perString },
      });
    }
    total += size;
  }
  const strings = argv.length + sizes.length;
  if (total + strings * 8 + MARGIN <= LINUX_MIN_TOTAL) return;
  const limit = limits.total(strings);
  if (limit === null || total + MARGIN <= limit) return;
  const largest = sizes
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, size]) => `${name} (${format(size)} bytes)`);
  throw new LatchkeyError("LK_RUN_ENV_TOO_LARGE", {
    message:
      `Not starting ${program}: its environment and arguments take ${format(total)} bytes, and this system ` +
      `passes at most ${format(limit - MARGIN)}. The largest variables: ${largest.join(", ")}.`,
    hint: "Give the largest secrets to the program as files (`latchkey run --file KEY` or `--mount NAME`), or raise the stack size limit (`ulimit -s`), a quarter of which Linux allows.",
    details: { bytes: total, limit: limit - MARGIN },
  });
}
