/**
 * The server secret: the root of every key the server derives (token signing, cookie keys — later slices). From
 * LATCHKEY_SERVER_SECRET when set (never written anywhere), otherwise generated once into the data directory with
 * mode 0600 and reused on every start.
 *
 * The file is written the way the CLI's fs/safe-file.ts writes credential files (exclusive temp file, fchmod
 * whatever the umask, fsync, then into place, directory fsync, never through a symbolic link). The server
 * cannot import the CLI (DESIGN.md: imports run cli/server -> core only), so the few steps are repeated here;
 * unlike the CLI's rename, link() never replaces an existing file, so two servers starting on one data
 * directory agree on a single secret.
 */
import { constants, type Stats } from "node:fs";
import { link, lstat, open, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { LatchkeyError } from "@latchkey/core";

/** File name of the generated secret inside the data directory. */
export const SECRET_FILE = "server-secret";
/** Environment variable that supplies the secret instead of the file. */
export const SECRET_ENV = "LATCHKEY_SERVER_SECRET";
/** Shortest secret accepted from the environment: 32 characters (a random 256-bit key in base64url has 43). */
export const MIN_SECRET_LENGTH = 32;

/** Where the secret came from, for the start-up log (never the value). */
export type SecretSource = "env" | "file-created" | "file";

/** What loadServerSecret needs. */
export interface SecretDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** An existing, private data directory. */
  dataDir: string;
  randomBytes: (n: number) => Uint8Array;
}

/**
 * A value the server keeps private in the way the server secret is kept: from an environment variable when set,
 * else from a file in the data directory made once (0600, exclusive, never through a symbolic link). The server
 * secret and the escrow key (escrow-key.ts) are two of these.
 */
export interface PrivateValueSpec {
  /** The file's name inside the data directory. */
  file: string;
  /** The environment variable that supplies the value instead of the file. */
  envName: string;
  /** What the value is, for messages: "the server secret". */
  what: string;
  /** A fresh value, as written to the file. */
  generate(randomBytes: (n: number) => Uint8Array): string;
  /** Why `text` (trimmed) is no good value, or null when it is one. Never quotes the value. */
  problem(text: string): string | null;
  /** The hint of a value from the environment that is no good. */
  envHint: string;
  /** What to do about a file other users could read, after the chmod. */
  exposedHint: string;
}

/** The server secret's spec (admin backup reads it with readPrivateValue). */
export const SERVER_SECRET: PrivateValueSpec = {
  file: SECRET_FILE,
  envName: SECRET_ENV,
  what: "the server secret",
  generate: (randomBytes) => Buffer.from(randomBytes(32)).toString("base64url"),
  problem: (text) =>
    text.length < MIN_SECRET_LENGTH ? `shorter than ${MIN_SECRET_LENGTH} characters` : null,
  envHint: `Use a random value, e.g. \`openssl rand -base64 32\`, or unset ${SECRET_ENV} to let the server generate one in its data directory.`,
  exposedHint: "consider deleting it so the server makes a new one (sessions it signed end)",
};

/** Returns the server secret and where it came from. */
export async function loadServerSecret(deps: SecretDeps): Promise<{ secret: string; source: SecretSource }> {
  const { value, source } = await loadPrivateValue(SERVER_SECRET, deps);
  return { secret: value, source };
}

/** Returns the value `spec` names and where it came from: the environment, or its file (made now if absent). */
export async function loadPrivateValue(
  spec: PrivateValueSpec,
  deps: SecretDeps,
): Promise<{ value: string; source: SecretSource }> {
  const fromEnv = valueFromEnv(spec, deps.env);
  if (fromEnv !== null) return { value: fromEnv, source: "env" };
  const path = join(deps.dataDir, spec.file);
  const existing = await readPrivate(path, spec);
  if (existing !== null) return { value: existing, source: "file" };
  const created = spec.generate(deps.randomBytes);
  const won = await createExclusive(path, created, deps.randomBytes);
  if (won) return { value: created, source: "file-created" };
  // Another process created it between our read and our link: use theirs.
  const theirs = await readPrivate(path, spec);
  if (theirs === null) throw fileError(path, "read", undefined);
  return { value: theirs, source: "file" };
}

/**
 * The value `spec` names from the environment or its file, without making one: null when neither holds it. For
 * commands that must copy the value the server uses, never a new one (admin backup --include-secret).
 */
export async function readPrivateValue(
  spec: PrivateValueSpec,
  deps: Pick<SecretDeps, "env" | "dataDir">,
): Promise<string | null> {
  return valueFromEnv(spec, deps.env) ?? (await readPrivate(join(deps.dataDir, spec.file), spec));
}

function valueFromEnv(spec: PrivateValueSpec, env: SecretDeps["env"]): string | null {
  const fromEnv = env[spec.envName];
  if (fromEnv === undefined || fromEnv === "") return null;
  const problem = spec.problem(fromEnv.trim());
  if (problem !== null) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `${spec.envName} is ${problem}.`,
      hint: spec.envHint,
    });
  }
  return fromEnv.trim();
}

async function readPrivate(path: string, spec: PrivateValueSpec): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return null;
    if (errnoCode(err) === "ELOOP") throw symlinkError(path);
    throw fileError(path, "read", err);
  }
  try {
    const st: Stats = await handle.stat();
    if (!st.isFile()) throw fileError(path, "read", undefined, "it is not a regular file");
    if ((st.mode & 0o077) !== 0) {
      throw new LatchkeyError("LK_FILE_PERMISSIONS", {
        message: `Refusing to use ${path}: mode ${(st.mode & 0o777).toString(8)} lets other users read ${spec.what}.`,
        hint: `Run \`chmod 600 ${path}\` — and since others could read it, ${spec.exposedHint}.`,
        details: { path },
      });
    }
    const text = (await handle.readFile("utf8")).trim();
    if (text === "" || spec.problem(text) !== null) {
      throw fileError(path, "use", undefined, "it is truncated, empty or not what the server wrote");
    }
    return text;
  } finally {
    await handle.close();
  }
}

async function createExclusive(
  path: string,
  value: string,
  randomBytes: (n: number) => Uint8Array,
): Promise<boolean> {
  try {
    return await writePrivateFile(path, `${value}\n`, { replace: false, randomBytes });
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    throw fileError(path, "create", err);
  }
}

/**
 * Writes `data` to `path` as a private file, whole or not at all: an exclusive 0600 temp file beside it (whatever
 * the umask), fsynced, then moved into place ({@link placePrivateFile}). False when `path` exists and `replace`
 * is not set; nothing is written then.
 */
export async function writePrivateFile(
  path: string,
  data: string | Uint8Array,
  options: { replace: boolean; randomBytes: (n: number) => Uint8Array },
): Promise<boolean> {
  const temp = await createPrivateTemp(path, options.randomBytes);
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  return placePrivateFile(temp, path, options.replace);
}

/** Creates an empty 0600 file beside `path` under a fresh name (exclusive, never through a link); returns that name. */
export async function createPrivateTemp(
  path: string,
  randomBytes: (n: number) => Uint8Array,
): Promise<string> {
  const temp = `${path}.tmp-${Buffer.from(randomBytes(8)).toString("hex")}`;
  const handle = await open(
    temp,
    constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await handle.chmod(0o600);
  } finally {
    await handle.close();
  }
  return temp;
}

/**
 * Moves the finished file `temp` (written and fsynced, beside `path`) to `path`, then fsyncs the directory. Without
 * `replace`, link() puts it there only if nothing is: false when `path` exists. With it, rename() replaces what
 * is there — a symbolic link itself, never its target. `temp` is gone afterwards either way.
 */
export async function placePrivateFile(temp: string, path: string, replace: boolean): Promise<boolean> {
  try {
    if (replace) {
      await rename(temp, path);
    } else {
      try {
        await link(temp, path);
      } catch (err) {
        if (errnoCode(err) === "EEXIST") return false;
        throw err;
      }
    }
    await syncDir(dirname(path));
    return true;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a data directory that is a symbolic link or not a directory (the secret must not land elsewhere, and
 * making it private must not chmod a link's target). With `allowMissing`, a directory that does not exist yet
 * passes.
 */
export async function checkDataDir(dir: string, options: { allowMissing?: boolean } = {}): Promise<void> {
  let st: Stats;
  try {
    st = await lstat(dir);
  } catch (err) {
    if (options.allowMissing && errnoCode(err) === "ENOENT") return;
    throw fileError(dir, "inspect", err);
  }
  if (st.isSymbolicLink()) throw symlinkError(dir);
  if (!st.isDirectory()) throw fileError(dir, "use", undefined, "it is not a directory");
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function symlinkError(path: string): LatchkeyError {
  return new LatchkeyError("LK_FILE_SYMLINK", {
    message: `Refusing to use ${path}: it is a symbolic link.`,
    details: { path },
  });
}

function fileError(path: string, action: string, cause: unknown, why?: string): LatchkeyError {
  const code = errnoCode(cause);
  return new LatchkeyError("LK_FILE_IO", {
    message: `Could not ${action} ${path}${why ? `: ${why}` : code ? ` (${code})` : ""}.`,
    hint: "Check that the data directory (--data-dir) is on a writable disk with free space, owned by the user running latchkey-server.",
    ...(cause === undefined ? {} : { cause }),
    details: { path },
  });
}
