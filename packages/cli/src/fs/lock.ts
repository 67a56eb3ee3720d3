/**
 * Inter-process locking for files under LATCHKEY_HOME, on proper-lockfile's mkdir-based lock
 * (`${target}.lock`), with our own deadline-bounded retry loop and a stale-lock takeover that two waiters
 * cannot both win.
 */
import fs from "node:fs";
import { resolve } from "node:path";
import { LatchkeyError } from "@latchkey/core";
import { importExternal } from "../external.js";
import type { lock as LockFn } from "proper-lockfile";

/** How long `withFileLock` waits for a contended lock unless told otherwise. */
export const DEFAULT_LOCK_TIMEOUT_MS = 15_000;
/**
 * A lock whose directory has not been touched for this long belongs to a dead (or hopelessly stalled)
 * process and is taken over. Holders touch it every LOCK_UPDATE_MS, so a live holder must stall for about
 * four seconds before it loses the lock; a crashed one is replaced within five.
 */
export const LOCK_STALE_MS = 5_000;
/** How often a holder refreshes its lock's mtime (proper-lockfile's minimum). */
export const LOCK_UPDATE_MS = 1_000;

// Waiters poll; jittered exponential backoff keeps 32 contending processes from waking in lockstep while
// capping the delay, so a freed lock is picked up within about 150 ms.
const MIN_RETRY_MS = 5;
const MAX_RETRY_MS = 100;

/** Options for `withFileLock`. */
export interface FileLockOptions {
  /** Give up with LK_LOCK_TIMEOUT after this long; default 15 s. 0 means a single attempt. */
  timeoutMs?: number;
}

/**
 * Runs `fn` while holding an inter-process lock on `target` (the lock is the directory `${target}.lock`;
 * `target` itself need not exist, but its directory must). Waits up to `timeoutMs`, then fails with
 * LK_LOCK_TIMEOUT naming `target`. The lock is always released when `fn` settles.
 *
 * If the lock is lost while held (this process stalled past LOCK_STALE_MS, or the lock directory was
 * removed), `signal` aborts so `fn` can stop before committing, and `withFileLock` rejects with
 * LK_LOCK_TIMEOUT once `fn` settles, even when `fn` succeeded: its work may have overlapped another holder's.
 */
export async function withFileLock<T>(
  target: string,
  fn: (signal: AbortSignal) => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const file = resolve(target);
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const controller = new AbortController();
  let lost: LatchkeyError | undefined;
  let releasing = false;

  const release = await acquire(file, timeoutMs, (cause) => {
    // proper-lockfile may report a compromise from a timer that fires while we are already releasing.
    if (releasing || lost) return;
    lost = new LatchkeyError("LK_LOCK_TIMEOUT", {
      message:
        `Lost the lock on ${file} while holding it: it was not refreshed within ${LOCK_STALE_MS} ms ` +
        "or was removed by another process.",
      hint: "Run the command again; if this repeats, look for a stalled latchkey process or a slow disk.",
      cause,
      details: { path: file },
    });
    controller.abort(lost);
  });

  let result: T;
  try {
    result = await fn(controller.signal);
  } finally {
    releasing = true;
    // A failed unlink leaves a lock directory that stops being refreshed and is taken over after
    // LOCK_STALE_MS, so it must not turn a completed operation into a failure.
    await release().catch(() => undefined);
  }
  if (lost) throw lost;
  return result;
}

// node:crypto and node:timers/promises are not imported here: this module sits on every command's start-up path,
// and both cost loading time that read-only commands would pay for nothing.
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A random integer in [min, max) for retry jitter; the slight modulo bias does not matter for spreading waiters. */
function jitter(min: number, max: number): number {
  const [value = 0] = globalThis.crypto.getRandomValues(new Uint32Array(1));
  return min + (value % Math.max(1, max - min));
}

let lockModule: Promise<typeof LockFn> | undefined;

// proper-lockfile loads graceful-fs, which patches fs at load time and costs several milliseconds of start-up:
// commands that only read (`run`, `get`, the helper protocols) never take a lock, so they never pay for it.
function loadLock(): Promise<typeof LockFn> {
  lockModule ??= importExternal("proper-lockfile").then((module) => {
    // A CommonJS module: Node's loader exposes its named exports, the bundler's chunk only its default export.
    const loaded = module as { lock?: typeof LockFn; default?: { lock: typeof LockFn } };
    const lock = loaded.lock ?? loaded.default?.lock;
    if (!lock) throw new Error("proper-lockfile did not provide lock()");
    return lock;
  });
  return lockModule;
}

async function acquire(
  file: string,
  timeoutMs: number,
  onCompromised: (err: Error) => void,
): Promise<() => Promise<void>> {
  const deadline = Date.now() + Math.max(0, timeoutMs);
  let delay = MIN_RETRY_MS;
  const lock = await loadLock();
  for (;;) {
    try {
      return await lock(file, {
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_UPDATE_MS,
        retries: 0,
        fs: lockFs(),
        onCompromised,
      });
    } catch (err) {
      if (!isContention(err)) {
        throw new LatchkeyError("LK_FILE_IO", {
          message: `Could not lock ${file} (${errnoCode(err) ?? "error"}).`,
          cause: err,
          details: { path: file },
        });
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LatchkeyError("LK_LOCK_TIMEOUT", {
          message: `Timed out after ${timeoutMs} ms waiting for the lock on ${file}.`,
          details: { path: file, timeoutMs },
        });
      }
      await sleep(Math.min(remaining, jitter(Math.ceil(delay / 2), Math.ceil((delay * 3) / 2) + 1)));
      delay = Math.min(MAX_RETRY_MS, delay * 2);
    }
  }
}

type Callback = (err: NodeJS.ErrnoException | null) => void;

/**
 * The fs proper-lockfile runs on, one per attempt. proper-lockfile removes a stale lock with a bare rmdir
 * after a separate stat, so two waiters that both saw it stale can each rmdir and mkdir, the second deleting
 * the first one's fresh lock, and both proceed (moxystudio/node-proper-lockfile#121). Until this attempt
 * has created the lock, its rmdir is therefore routed through `removeStaleLock`, which re-checks staleness
 * under a second mkdir guard; afterwards rmdir is the real one (release, cleanup).
 */
function lockFs(): Record<string, unknown> {
  let created = false;
  return {
    mkdir: (path: string, callback: Callback) => {
      fs.mkdir(path, (err) => {
        if (!err) created = true;
        callback(err);
      });
    },
    rmdir: (path: string, callback: Callback) => {
      if (created) {
        fs.rmdir(path, callback);
        return;
      }
      removeStaleLock(path).then(
        () => callback(null),
        (err: NodeJS.ErrnoException) => callback(err),
      );
    },
    // proper-lockfile's exit handler removes held locks synchronously.
    rmdirSync: fs.rmdirSync,
    stat: fs.stat,
    utimes: fs.utimes,
    realpath: fs.realpath,
  };
}

/**
 * Removes `lockPath` only if it is still stale while this process holds `${lockPath}.steal`, so at most one
 * waiter at a time judges and removes it. A guard left by a process killed mid-takeover is itself removed
 * once older than LOCK_STALE_MS. Fails with ELOCKED when someone else is taking over or the lock is fresh.
 */
async function removeStaleLock(lockPath: string): Promise<void> {
  const guard = `${lockPath}.steal`;
  try {
    await fs.promises.mkdir(guard);
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw err;
    const guardStat = await fs.promises.stat(guard).catch(() => null);
    if (guardStat && isStale(guardStat.mtimeMs)) await fs.promises.rmdir(guard).catch(() => undefined);
    throw lockedError(lockPath);
  }
  try {
    const current = await fs.promises.stat(lockPath).catch((err: unknown) => {
      if (errnoCode(err) === "ENOENT") return null;
      throw err;
    });
    if (current && !isStale(current.mtimeMs)) throw lockedError(lockPath);
    if (current) {
      await fs.promises.rmdir(lockPath).catch((err: unknown) => {
        if (errnoCode(err) !== "ENOENT") throw err;
      });
    }
  } finally {
    await fs.promises.rmdir(guard).catch(() => undefined);
  }
}

/**
 * ELOCKED is a held lock. ENOENT from anything but mkdir means our freshly made lock directory vanished before
 * proper-lockfile could stamp it (another process judged it stale): contention too, not a missing directory.
 */
function isContention(err: unknown): boolean {
  const code = errnoCode(err);
  if (code === "ELOCKED") return true;
  const syscall = typeof err === "object" && err !== null && "syscall" in err ? err.syscall : undefined;
  return code === "ENOENT" && syscall !== undefined && syscall !== "mkdir";
}

function isStale(mtimeMs: number): boolean {
  return mtimeMs < Date.now() - LOCK_STALE_MS;
}

function lockedError(lockPath: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`Lock ${lockPath} is held`), { code: "ELOCKED" });
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}
