// Runs the fast bundle with V8's code cache taken AFTER a run, so it holds the bytecode of every function that
// run called. Node's own compile cache (module.enableCompileCache) is written right after compiling, before
// anything runs, so it holds only the few functions V8 compiles eagerly: every function a command calls was
// compiled again on every start. With this cache, `latchkey token` takes 0.73–0.86 of its time without (bench
// scenario 7). Hence a classic script through node:vm, whose `createCachedData()` can be called after the command.
//
// The cache is code, never data: bytecode and the literals of our own source, nothing a command read or
// computed. It still decides what code runs, so it lives only in a directory of our own that no other user can
// write (privateCacheDir), is read without following symlinks, and is written to a fresh file then renamed.
// A cache V8 does not accept (another V8, other flags, damaged) is ignored and replaced by this run's.
import type { Stats } from "node:fs";
import { userHome } from "../paths.js";

/** A bundle evaluated as a script, and the one call that stores its code cache when this run had none. */
export interface CachedScript<T> {
  readonly exports: T;
  /** What became of the code cache at load: none kept, none there yet, used, or refused by V8. */
  readonly cache: "off" | "missing" | "accepted" | "rejected";
  /** Writes the code cache if this run had none or V8 refused it; later calls do nothing. Never throws. */
  readonly save: () => void;
}

/** Where the cache of one bundle, for one kind of command, is kept. */
export interface CacheLocation {
  readonly dir: string;
  /** File name prefix shared by every version of this cache, so an old one can be pruned when a new one is saved. */
  readonly prefix: string;
  /** The rest of the name: whatever must change when the bundle, Node or the architecture does. */
  readonly key: string;
}

/** A cache of another build is deleted once it is older than this (see writeCache). */
export const PRUNE_AFTER_MS = 24 * 60 * 60 * 1000;

const fs = () => process.getBuiltinModule("node:fs");
const path = () => process.getBuiltinModule("node:path");

function safeStat(file: string): Stats | null {
  try {
    return fs().lstatSync(file);
  } catch {
    return null;
  }
}

/**
 * Why `dir` may not hold code caches, or null when it may: it must be a real directory (not a symlink) owned by
 * us, and its parent one owned by us or root, neither writable by group or others. A directory someone else
 * can write would let them choose the code we run.
 */
export function cacheDirProblem(dir: string): string | null {
  const uid = process.getuid?.();
  for (const [candidate, owners] of [
    [dir, [uid]],
    [path().dirname(dir), [uid, 0]],
  ] as const) {
    const stats = safeStat(candidate);
    if (stats === null) return `${candidate} does not exist`;
    if (stats.isSymbolicLink()) return `${candidate} is a symbolic link`;
    if (!stats.isDirectory()) return `${candidate} is not a directory`;
    if (uid !== undefined && !owners.includes(stats.uid)) return `${candidate} belongs to another user`;
    if (uid !== undefined && (stats.mode & 0o022) !== 0) return `${candidate} is writable by group or others`;
  }
  return null;
}

/** `dir`, made 0700 when missing, when it may hold code caches (cacheDirProblem); null otherwise. */
export function privateCacheDir(dir: string): string | null {
  try {
    fs().mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return null;
  }
  return cacheDirProblem(dir) === null ? dir : null;
}

/**
 * Where code caches go: `$XDG_CACHE_HOME/latchkey`, by default `~/.cache/latchkey` (`%LOCALAPPDATA%\latchkey`
 * on Windows); null when NODE_DISABLE_COMPILE_CACHE is set (Node's own switch for its cache) or no home is known.
 * The home is the one LATCHKEY_HOME defaults under (paths.ts), so `doctor` never reports one and denies the other.
 */
export function codeCacheBase(env: Readonly<Record<string, string | undefined>>): string | null {
  if (env.NODE_DISABLE_COMPILE_CACHE) return null;
  const base =
    process.platform === "win32"
      ? env.LOCALAPPDATA
      : env.XDG_CACHE_HOME?.startsWith("/")
        ? env.XDG_CACHE_HOME
        : homeOrUndefined(env);
  return base ? path().join(base, "latchkey") : null;
}

function homeOrUndefined(env: Readonly<Record<string, string | undefined>>): string | undefined {
  try {
    const home = userHome(env);
    return home === "" ? undefined : `${home}/.cache`;
  } catch {
    // os.homedir() throws when neither HOME nor the password database names one.
    return undefined;
  }
}

/** Node's own compile cache (module.enableCompileCache), for the full CLI: a directory inside the code cache. */
export function compileCacheDir(cacheDir: string): string {
  return `${cacheDir}/node`;
}

/**
 * Turns on Node's compile cache in compileCacheDir(cacheDir). Node makes its directories with the umask's mode
 * (0755 under the usual 022), which `doctor` would rightly flag inside a private directory: made 0700 instead.
 */
export function enableCompileCache(cacheDir: string): void {
  const previous = process.umask(0o077);
  try {
    process.getBuiltinModule("node:module").enableCompileCache?.(compileCacheDir(cacheDir));
  } finally {
    process.umask(previous);
  }
}

/** codeCacheBase, created when missing, or null when it is off or not ours alone. */
export function codeCacheDir(env: Readonly<Record<string, string | undefined>>): string | null {
  const dir = codeCacheBase(env);
  return dir === null ? null : privateCacheDir(dir);
}

/** What `doctor` says of the code cache. */
export interface CodeCacheStatus {
  readonly path: string | null;
  readonly state: "in-use" | "not-created-yet" | "off" | "refused";
  readonly reason: string | null;
}

/** The code cache's state for `doctor`; looks only, creates nothing. */
export function describeCodeCache(env: Readonly<Record<string, string | undefined>>): CodeCacheStatus {
  const dir = codeCacheBase(env);
  if (dir === null) {
    const reason = env.NODE_DISABLE_COMPILE_CACHE
      ? "NODE_DISABLE_COMPILE_CACHE is set"
      : "no home directory is known";
    return { path: null, state: "off", reason };
  }
  if (safeStat(dir) === null) return { path: dir, state: "not-created-yet", reason: null };
  const problem = cacheDirProblem(dir);
  return problem === null
    ? { path: dir, state: "in-use", reason: null }
    : { path: dir, state: "refused", reason: problem };
}

/**
 * Which code cache a command line uses: each fast command has its own, holding the functions it runs, and every
 * other command shares one (they run only the fast path's parser before the full CLI takes over). A cheap
 * look at the first words: fast-path.ts decides for real, and a fast kind's cache is only saved when it did
 * (fast-path.test.ts checks the two agree).
 */
export function codeCacheKind(words: readonly string[]): string {
  const [first, second] = words;
  if (first === "run" || first === "token" || first === "git-credential" || first === "credential-provider") {
    return first;
  }
  if (first === "env" && (second === "get" || second === "run")) return `env-${second}`;
  if (first === "keystore" && second === "get") return "keystore-get";
  return "other";
}

function readCache(file: string): Buffer | undefined {
  const { openSync, fstatSync, readFileSync, closeSync, constants } = fs();
  let fd: number | undefined;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    const stats = fstatSync(fd);
    if (!stats.isFile() || (process.getuid !== undefined && stats.uid !== process.getuid())) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeCache(location: CacheLocation, data: Uint8Array): void {
  const { openSync, writeSync, closeSync, renameSync, readdirSync, unlinkSync, constants } = fs();
  const target = path().join(location.dir, `${location.prefix}${location.key}`);
  const temporary = `${target}.${process.pid}.${Date.now()}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0),
      0o600,
    );
    for (let offset = 0; offset < data.length;) offset += writeSync(fd, data, offset);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, target);
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // Nothing was created.
    }
    return;
  }
  // Caches of earlier builds of the bundle (or of Node) are dead weight, unless another installed version still
  // uses its own (a global one and a project's, say): only those written over a day ago go, or two versions
  // taking turns would delete each other's on every call.
  try {
    const before = Date.now() - PRUNE_AFTER_MS;
    for (const name of readdirSync(location.dir)) {
      if (
        name.startsWith(location.prefix) &&
        name !== `${location.prefix}${location.key}` &&
        !name.endsWith(".tmp") &&
        (safeStat(path().join(location.dir, name))?.mtimeMs ?? Infinity) < before
      ) {
        unlinkSync(path().join(location.dir, name));
      }
    }
  } catch {
    // Pruning is housekeeping; a failure costs disk space, nothing else.
  }
}

/**
 * Evaluates the CommonJS bundle at `bundlePath` as a script and returns its exports. With a `cache` location,
 * V8's code cache is read from there, and `save()` stores this run's when there was none or it was refused.
 */
export function loadCachedScript<T>(
  bundlePath: string,
  cache: CacheLocation | null,
  importExternal: (specifier: string) => Promise<unknown>,
): CachedScript<T> {
  const { Script } = process.getBuiltinModule("node:vm");
  // latin1: a plain copy into a one-byte string, where UTF-8 must be decoded. The bundle is ASCII (build.mjs).
  const source = fs().readFileSync(bundlePath, "latin1");
  const cachedData =
    cache === null ? undefined : readCache(path().join(cache.dir, `${cache.prefix}${cache.key}`));
  // CommonJS's wrapper, less require (build.mjs checks the bundle never calls it), plus the import() that a
  // script cannot have (external.ts).
  const script = new Script(`(function (exports, module, __latchkeyImportExternal) {${source}\n})`, {
    filename: bundlePath,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  const module = { exports: {} as T };
  const wrapper = script.runInThisContext() as (
    exports: T,
    module: { exports: T },
    importExternal: (specifier: string) => Promise<unknown>,
  ) => void;
  wrapper(module.exports, module, importExternal);
  let pending = cache !== null && (cachedData === undefined || script.cachedDataRejected === true);
  return {
    exports: module.exports,
    cache:
      cache === null
        ? "off"
        : cachedData === undefined
          ? "missing"
          : script.cachedDataRejected === true
            ? "rejected"
            : "accepted",
    save: () => {
      if (!pending || cache === null) return;
      pending = false;
      try {
        writeCache(cache, script.createCachedData());
      } catch {
        // A cache is an optimisation: without one the next run compiles as this one did.
      }
    },
  };
}
