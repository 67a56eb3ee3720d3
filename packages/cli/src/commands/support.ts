import type { Command } from "commander";

/** Where a command's action leaves its exit code, since commander's action cannot return one. */
export interface RunState {
  exitCode: number;
  /** Set by `run` when its child was killed by a signal: the CLI then dies of the same signal. */
  signal?: NodeJS.Signals;
}

/** The options every command inherits from the program. */
export interface GlobalOptions {
  verbose: number;
}

/** Reads the program-wide options from inside any subcommand's action. */
export function globalOptions(command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{ verbose?: number }>();
  return { verbose: opts.verbose ?? 0 };
}
