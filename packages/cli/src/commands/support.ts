import type { Command } from "commander";

/** Where a command's action leaves its exit code, since commander's action cannot return one. */
export interface RunState {
  exitCode: number;
  /** Set by `run` when its child was killed by a signal: the CLI then dies of the same signal. */
  signal?: NodeJS.Signals;
  /** How the top-level handler prints an error: from the options of the command about to run (cli.ts). */
  errorOutput?: { verbose: number; json: boolean };
}

/** The options every command inherits from the program. */
export interface GlobalOptions {
  verbose: number;
}

/**
 * Reads the program-wide options from inside any subcommand's action. `-v` is accepted before the command and
 * after it (cli.ts gives every command its own), so the counts along the chain add up: `latchkey -v env push -v`
 * is -vv.
 */
export function globalOptions(command: Command): GlobalOptions {
  let verbose = 0;
  for (let c: Command | null = command; c !== null; c = c.parent)
    verbose += c.opts<{ verbose?: number }>().verbose ?? 0;
  return { verbose };
}
