// A pseudo-terminal for the suites that need a person at a keyboard: prompts, raw-mode keys (Ctrl-C, Ctrl-D),
// what a program does when stdin, stdout and stderr are all a TTY. util-linux `script` provides it (bsdutils is
// essential on Debian, so every machine that runs these suites has it); the program's exit code comes back as
// script's own (`-e`).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import type { PartCheck } from "./prerequisites.js";

/** Keys as a terminal sends them in raw mode. */
export const KEYS = {
  enter: "\r",
  ctrlC: "\u0003",
  ctrlD: "\u0004",
  escape: "\u001b",
  up: "\u001b[A",
  down: "\u001b[B",
} as const;

/** Whether `script` is on PATH, for requirePart(). */
export function terminalCheck(): PartCheck {
  const found = (process.env.PATH ?? "")
    .split(":")
    .some((dir) => dir !== "" && existsSync(join(dir, "script")));
  return found ? { ok: true } : { ok: false, reason: "no `script` (util-linux) on PATH" };
}

/** Options of {@link startOnTerminal}. */
export interface TerminalOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The terminal's size; a new pseudo-terminal is 0 columns wide, which makes prompts wrap after every character. */
  columns?: number;
  rows?: number;
}

/** How a program on the terminal ended, and everything it showed (see {@link Terminal.output}). */
export interface TerminalResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** A program running on its own pseudo-terminal. */
export interface Terminal {
  /**
   * Everything shown on the terminal so far, stdout and stderr together (one terminal) and typed characters the
   * terminal echoed, with escape sequences and carriage returns removed.
   */
  output(): string;
  /** Resolves once output() contains `text`; rejects, with the output, if the program ends first. */
  waitFor(text: string | RegExp): Promise<void>;
  /** Types `keys` at the terminal (see {@link KEYS}). */
  type(keys: string): void;
  /** Resolves when the program has ended. */
  readonly exited: Promise<TerminalResult>;
}

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/** Starts `command args` on a new pseudo-terminal that is its stdin, stdout, stderr and controlling terminal. */
export function startOnTerminal(
  command: string,
  args: readonly string[],
  options: TerminalOptions = {},
): Terminal {
  const line = `stty cols ${options.columns ?? 100} rows ${options.rows ?? 30}; exec ${[command, ...args]
    .map(quote)
    .join(" ")}`;
  const child = spawn("script", ["-qfec", line, "/dev/null"], {
    env: { ...(options.env ?? process.env), SHELL: "/bin/sh" },
    cwd: options.cwd,
    stdio: ["pipe", "pipe", "pipe"],
    // Never left behind by a test that failed waiting: past vitest's time limit, the program is killed.
    timeout: 60_000,
  });
  // script reads its stdin until the program ends; it is closed only then, as a person's keyboard would be.
  child.stdin.on("error", () => undefined);
  let raw = "";
  const waiters = new Set<() => void>();
  const output = () => stripVTControlCharacters(raw).replaceAll("\r", "");
  const onData = (chunk: string) => {
    raw += chunk;
    for (const check of [...waiters]) check();
  };
  child.stdout.setEncoding("utf8").on("data", onData);
  // script's own complaints (it could not start the program) are part of what the test needs to see.
  child.stderr.setEncoding("utf8").on("data", onData);
  let ended = false;
  const exited = new Promise<TerminalResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      ended = true;
      child.stdin.end();
      for (const check of [...waiters]) check();
      resolve({ code, signal, output: output() });
    });
  });
  return {
    output,
    type: (keys) => {
      child.stdin.write(keys);
    },
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          const seen = output();
          if (typeof text === "string" ? seen.includes(text) : text.test(seen)) {
            waiters.delete(check);
            resolve();
          } else if (ended) {
            waiters.delete(check);
            reject(new Error(`the program ended before showing ${String(text)}:\n${seen}`));
          }
        };
        waiters.add(check);
        check();
      }),
    exited,
  };
}

/**
 * Runs `command args` on a new pseudo-terminal, answers the question it asks (once `question` shows) with
 * `answer`, and resolves with how it ended: a person approving or declining at a prompt.
 */
export async function answerOnTerminal(
  command: string,
  args: readonly string[],
  options: TerminalOptions & { question: string | RegExp; answer: string },
): Promise<TerminalResult> {
  const terminal = startOnTerminal(command, args, { columns: 200, ...options });
  await terminal.waitFor(options.question);
  terminal.type(options.answer);
  return terminal.exited;
}
