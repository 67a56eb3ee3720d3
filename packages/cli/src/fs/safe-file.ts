/**
 * Credential files on disk: private modes whatever the umask, atomic replacement, and never through a
 * symbolic link (DESIGN.md, "Client-side state"). Errors name paths, never contents.
 */
import fs, { constants } from "node:fs";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { LatchkeyError, toHex } from "@latchkey/core";
import { nativeRandomBytes } from "../crypto/native.js";

/** Mode of every credential file Latchkey writes. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of every directory Latchkey creates under LATCHKEY_HOME. */
export const PRIVATE_DIR_MODE = 0o700;

const isWindows = process.platform === "win32";
// The promise API is reached through fs.promises at call time: loading node:fs/promises costs ~2 ms of start-up,
// and the hot path (a credential helper reading its token) only reads, synchronously.
const fsp = (): typeof fs.promises => fs.promises;
// Windows defines neither flag; there the lstat checks below are the only guard.
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;
// Without it, opening a FIFO planted at a credential path would block until a writer appears.
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;

/** An lstat-based report on one path, as `latchkey doctor` shows it. */
export interface PrivacyReport {
  path: string;
  kind: "file" | "dir" | "symlink" | "other";
  /** Permission bits (`st_mode & 0o7777`). */
  mode: number;
  uid: number;
  /** Human-readable problems; empty when the path is private. */
  problems: string[];
}

/**
 * Creates `dir` and any missing parents with mode 0700 and makes `dir` itself 0700, whatever the umask.
 * Refuses (LK_FILE_SYMLINK) when `dir`, a directory this call creates, or the existing directory it creates
 * into (for an existing `dir`: its parent) is a symbolic link. Ancestors above that are trusted, so pass a
 * realpath when a symlinked ancestor such as a symlinked home directory must be accepted.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const target = resolve(dir);
  const missing: string[] = [];
  let existing = target;
  let existingStat = await lstatOrNull(existing, "inspect");
  while (existingStat === null) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
    existingStat = await lstatOrNull(existing, "inspect");
  }

  if (missing.length === 0) {
    const parent = dirname(target);
    if (parent !== target && (await lstatOrNull(parent, "inspect"))?.isSymbolicLink()) {
      throw parentSymlinkError(target, parent);
    }
    if (existingStat?.isSymbolicLink()) throw symlinkError(target);
  } else if (existingStat?.isSymbolicLink()) {
    throw parentSymlinkError(target, existing);
  }

  for (const component of missing) {
    try {
      await fsp().mkdir(component, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      // Another process may create the same directory at the same moment; the checks below still apply.
      if (errnoCode(err) !== "EEXIST") throw wrapFsError(err, component, "create directory");
    }
    await makeDirPrivate(component);
  }
  if (missing.length === 0) await makeDirPrivate(target);
}

/**
 * Replaces `path` atomically with `data`: a temp file in the same directory is created exclusively, given
 * `options.mode` (default 0600) by fchmod so the umask cannot widen it, written, fsynced and renamed over
 * `path`, then the directory is fsynced. Refuses (LK_FILE_SYMLINK) when `path` or its directory is a symbolic
 * link, leaving the link's target untouched. The temp file never survives a failure.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: { mode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? PRIVATE_FILE_MODE;
  const target = resolve(path);
  const dir = dirname(target);

  const dirStat = await lstatOrNull(dir, "write");
  if (dirStat === null) {
    throw new LatchkeyError("LK_FILE_IO", {
      message: `Could not write ${target}: its directory ${dir} does not exist.`,
      details: { path: target },
    });
  }
  if (dirStat.isSymbolicLink()) throw parentSymlinkError(target, dir);
  if (!dirStat.isDirectory()) throw notDirectoryError(dir);

  const existing = await lstatOrNull(target, "write");
  if (existing?.isSymbolicLink()) throw symlinkError(target);
  if (existing && !existing.isFile()) throw notRegularFileError(target);

  const temp = join(dir, `.${basename(target)}.tmp-${toHex(nativeRandomBytes(8))}`);
  let renamed = false;
  try {
    await writeExclusive(temp, data, mode, true);
    await fsp().rename(temp, target);
    renamed = true;
    await syncDir(dir);
  } catch (err) {
    if (!renamed)
      await fsp()
        .unlink(temp)
        .catch(() => undefined);
    throw wrapFsError(err, target, renamed ? "flush the directory of" : "write");
  }
}

/**
 * Creates `path` holding `data`, private (0600 by fchmod, whatever the umask), failing if anything already
 * exists there, a symbolic link included (O_CREAT | O_EXCL | O_NOFOLLOW). For short-lived files in a directory
 * this process has just made, which need neither atomic replacement nor fsync. A partial file is removed.
 */
export async function writeNewPrivateFile(path: string, data: Uint8Array | string): Promise<void> {
  const target = resolve(path);
  try {
    await writeExclusive(target, data, PRIVATE_FILE_MODE, false);
  } catch (err) {
    throw wrapFsError(err, target, "write");
  }
}

/**
 * Creates `path` holding `data` with exactly `mode` (fchmod, whatever the umask), failing if anything already
 * exists there, a symbolic link included; fsynced when `sync`. A file this call created is removed when a later
 * step fails; one it could not create is never touched, since it belongs to someone else. Errors pass raw.
 */
async function writeExclusive(
  path: string,
  data: Uint8Array | string,
  mode: number,
  sync: boolean,
): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp().open(
      path,
      constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | O_NOFOLLOW,
      mode,
    );
    await handle.chmod(mode);
    await handle.writeFile(data);
    if (sync) await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (err) {
    if (handle !== undefined) {
      await handle.close().catch(() => undefined);
      await fsp()
        .unlink(path)
        .catch(() => undefined);
    }
    throw err;
  }
}

/**
 * Reads `path` without following a symbolic link (LK_FILE_SYMLINK); null when it does not exist.
 * Anything but a regular file is refused with LK_FILE_IO.
 */
export async function readFileSafe(path: string): Promise<Uint8Array | null> {
  const target = resolve(path);
  if (isWindows) {
    const st = await lstatOrNull(target, "read");
    if (st?.isSymbolicLink()) throw symlinkError(target);
  }
  // Synchronous on purpose: credential files are small, and this is the start-up path of every helper.
  let fd: number;
  try {
    fd = fs.openSync(target, constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return null;
    throw wrapFsError(err, target, "read");
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw notRegularFileError(target);
    return fs.readFileSync(fd);
  } catch (err) {
    throw wrapFsError(err, target, "read");
  } finally {
    fs.closeSync(fd);
  }
}

/** Unlinks `path` (a symbolic link itself, never its target); true when something was removed. */
export async function removeFileSafe(path: string): Promise<boolean> {
  const target = resolve(path);
  try {
    await fsp().unlink(target);
    return true;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return false;
    throw wrapFsError(err, target, "remove");
  }
}

/**
 * Reports whether `path` is private without changing it: files want 0600 and directories 0700 (any group or
 * other bit is a problem), owned by the current user, and not a symbolic link. Null when it does not exist.
 */
export async function checkPrivate(path: string): Promise<PrivacyReport | null> {
  const target = resolve(path);
  const st = await lstatOrNull(target, "inspect");
  if (st === null) return null;

  const kind: PrivacyReport["kind"] = st.isSymbolicLink()
    ? "symlink"
    : st.isFile()
      ? "file"
      : st.isDirectory()
        ? "dir"
        : "other";
  const mode = st.mode & 0o7777;
  const problems: string[] = [];

  if (kind === "symlink") problems.push("is a symbolic link");
  if (kind === "other") problems.push("is not a regular file or directory");
  // Windows synthesizes mode bits from the read-only attribute; they say nothing about other users there.
  if ((kind === "file" || kind === "dir") && !isWindows && (mode & 0o077) !== 0) {
    const want = kind === "file" ? PRIVATE_FILE_MODE : PRIVATE_DIR_MODE;
    problems.push(`mode ${formatMode(mode)} ${describeAccess(mode, kind)} (want ${formatMode(want)})`);
  }
  const myUid = process.getuid?.();
  if (myUid !== undefined && st.uid !== myUid)
    problems.push(`owned by uid ${st.uid}, not you (uid ${myUid})`);

  return { path: target, kind, mode, uid: st.uid, problems };
}

function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

function describeAccess(mode: number, kind: "file" | "dir"): string {
  const verbs: string[] = [];
  if (mode & 0o044) verbs.push("readable");
  if (mode & 0o022) verbs.push("writable");
  if (mode & 0o011) verbs.push(kind === "dir" ? "searchable" : "executable");
  const whom: string[] = [];
  if (mode & 0o070) whom.push("group");
  if (mode & 0o007) whom.push("others");
  return `is ${joinWords(verbs)} by ${joinWords(whom)}`;
}

function joinWords(words: string[]): string {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/**
 * Sets 0700 through a descriptor opened without following links, so a directory swapped for a link is
 * refused rather than the link's target chmodded.
 */
async function makeDirPrivate(dir: string): Promise<void> {
  if (isWindows) {
    const st = await lstatOrNull(dir, "inspect");
    if (st?.isSymbolicLink()) throw symlinkError(dir);
    if (st && !st.isDirectory()) throw notDirectoryError(dir);
    await fsp()
      .chmod(dir, PRIVATE_DIR_MODE)
      .catch((err: unknown) => {
        throw wrapFsError(err, dir, "set permissions on");
      });
    return;
  }
  let handle: FileHandle;
  try {
    handle = await fsp().open(dir, constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    // Linux reports a symlink opened with O_DIRECTORY | O_NOFOLLOW as ENOTDIR rather than ELOOP.
    if (errnoCode(err) === "ENOTDIR") {
      throw (await lstatOrNull(dir, "inspect"))?.isSymbolicLink()
        ? symlinkError(dir)
        : notDirectoryError(dir);
    }
    throw wrapFsError(err, dir, "open directory");
  }
  try {
    await handle.chmod(PRIVATE_DIR_MODE);
  } catch (err) {
    if (errnoCode(err) === "EPERM") {
      throw new LatchkeyError("LK_FILE_PERMISSIONS", {
        message: `Could not make ${dir} private: it is owned by another user.`,
        cause: err,
        details: { path: dir },
      });
    }
    throw wrapFsError(err, dir, "set permissions on");
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  // A directory cannot be opened for fsync on Windows; NTFS journals the rename itself.
  if (isWindows) return;
  const handle = await fsp().open(dir, constants.O_RDONLY | O_DIRECTORY);
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (network mounts, FUSE) reject fsync on a directory; the rename has happened anyway.
    const code = errnoCode(err);
    if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw err;
  } finally {
    await handle.close();
  }
}

async function lstatOrNull(path: string, action: string): Promise<Stats | null> {
  try {
    return await fsp().lstat(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return null;
    throw wrapFsError(err, path, action);
  }
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

/** Node's fs errors carry `syscall`; anything else (a LatchkeyError, a bad argument) passes through as is. */
function wrapFsError(err: unknown, path: string, action: string): unknown {
  if (err instanceof LatchkeyError) return err;
  if (typeof err !== "object" || err === null || !("syscall" in err)) return err;
  const code = errnoCode(err);
  if (code === "ELOOP") return symlinkError(path);
  return new LatchkeyError("LK_FILE_IO", {
    message: `Could not ${action} ${path}${code ? ` (${code})` : ""}.`,
    cause: err,
    details: { path, ...(code ? { errno: code } : {}) },
  });
}

function symlinkError(path: string): LatchkeyError {
  return new LatchkeyError("LK_FILE_SYMLINK", {
    message: `Refusing to use ${path}: it is a symbolic link.`,
    details: { path },
  });
}

function parentSymlinkError(path: string, parent: string): LatchkeyError {
  return new LatchkeyError("LK_FILE_SYMLINK", {
    message: `Refusing to use ${path}: its directory ${parent} is a symbolic link.`,
    details: { path, symlink: parent },
  });
}

function notDirectoryError(path: string): LatchkeyError {
  return new LatchkeyError("LK_FILE_IO", {
    message: `Could not use ${path}: it is not a directory.`,
    details: { path },
  });
}

function notRegularFileError(path: string): LatchkeyError {
  return new LatchkeyError("LK_FILE_IO", {
    message: `Could not use ${path}: it is not a regular file.`,
    details: { path },
  });
}
