import type { KeystoreResolution } from "./keystore/resolve.js";
import type { InteractiveGrants } from "./oauth/tokens.js";
import type { LatchkeyPaths } from "./paths.js";
import type { SharingKeyRotateStep } from "./sharing/sharing-key.js";
import type { RotateStep } from "./sync/rotate.js";

/** A writable stream as commands see it: text only, with the TTY flag that decides colour and prompts. */
export interface OutputStream {
  write(chunk: string): void;
  readonly isTTY: boolean;
}

/** Standard input as commands see it. */
export interface InputStream {
  readonly isTTY: boolean;
  /** Reads all of stdin (for `--token-stdin`-style input). */
  readAll(): Promise<Uint8Array>;
}

/** Wall clock and timers, replaceable in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Randomness: always a CSPRNG. */
export interface Random {
  bytes(length: number): Uint8Array;
}

/** The result of a child process run to completion. */
export interface SpawnResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a program without a shell; argv must never carry secrets (pass them on stdin or in env). */
export type Spawn = (
  command: string,
  args: readonly string[],
  options?: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number; cwd?: string },
) => Promise<SpawnResult>;

/**
 * Interactive prompts; only used when stdin and stderr are TTYs. Each rejects with LK_CANCELLED (exit 130) when
 * the person cancels (Ctrl-C, Escape) or input ends (Ctrl-D), so a command stops before it changes anything.
 */
export interface Prompts {
  /** A masked prompt; the answer is never echoed. */
  secret(message: string): Promise<string>;
  confirm(message: string, initial?: boolean): Promise<boolean>;
  /**
   * A line of visible text, as typed: for a confirmation that must be typed out (a word such as ROTATE), where a
   * y/n answer is too easy to give by reflex. Absent in hand-built contexts, which then have no way to type one.
   */
  readonly text?: (message: string) => Promise<string>;
}

/** Facts about the running process and machine. */
export interface Platform {
  readonly nodeVersion: string;
  /** The operating system (process.platform). Absent in hand-built contexts, which then follow POSIX rules. */
  readonly os?: NodeJS.Platform;
  readonly uid: number | null;
  /** Files holding the machine id, tried in order. */
  readonly machineIdPaths: readonly string[];
  /**
   * The script Node started (process.argv[1]): the installed `latchkey` command as it was run, an absolute path.
   * Helper configurations name it (setup-git.ts, latchkeyCommandPath).
   */
  readonly cliPath?: string;
  /**
   * This machine's host name, read when asked (a new device's default pairing label). Absent in hand-built
   * contexts.
   */
  readonly hostname?: string;
}

/**
 * Everything a command may touch outside its own memory. Commands receive it, never reach for globals, so tests
 * can replace any part (see test/support/context.ts, whose fakes throw `Unexpected call to X`).
 */
export interface Context {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly paths: LatchkeyPaths;
  readonly stdin: InputStream;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly clock: Clock;
  readonly random: Random;
  readonly fetch: typeof globalThis.fetch;
  readonly spawn: Spawn;
  readonly prompts: Prompts;
  readonly platform: Platform;
  /**
   * Replaces this process with the program at `file` (execve(2)), after flushing this process's output; never
   * returns. Absent where that is not possible (Windows, tests): callers then spawn a child instead.
   */
  readonly replaceProcess?: (
    file: string,
    argv: readonly string[],
    env: Readonly<Record<string, string>>,
  ) => Promise<never>;
  /**
   * Resolves the keystore on first call (probing the keychain costs a D-Bus round trip); later calls reuse it.
   * `prefetch` names the account the command reads first, so the probe can be that read (resolve.ts).
   */
  keystore(prefetch?: string): Promise<KeystoreResolution>;
  /**
   * The logins a person completes (in the browser, or with a device code) for service environments declared with
   * such a grant (oauth/tokens.ts). Absent where none can run: the fast path, whose commands never need one.
   */
  readonly interactiveGrants?: InteractiveGrants;
  /**
   * Called after each durable step of `env rotate-key` and of adopting a paired wrapping key (sync/rotate.ts), and
   * of `env rotate-sharing-key` (sharing/), where the crash tests stop the process.
   * No shipped entry sets it: only the tests' own entry does (test/support/crash-cli.ts), so nothing a user sets
   * can stop a rotation halfway.
   */
  readonly afterRotateStep?: (step: RotateStep | SharingKeyRotateStep) => Promise<void> | void;
  /**
   * Calls `listener` on Ctrl-C (SIGINT) until the returned function is called: for a command that waits on the
   * network and must undo something before it ends (a pairing it started). While a listener is installed, SIGINT
   * no longer ends the process; the listener decides. Prompts handle Ctrl-C themselves (LK_CANCELLED). Absent in
   * hand-built contexts, where no interrupt arrives.
   */
  readonly onInterrupt?: (listener: () => void) => () => void;
}
