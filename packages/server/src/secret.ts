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
import { link, lstat, open, unlink } from "node:fs/promises";
import { join } from "node:path";
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

const SERVER_SECRET: PrivateValueSpec = {
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
  const fromEnv = deps.env[spec.envName];
  if (fromEnv !== undefined && fromEnv !== "") {
    const problem = spec.problem(fromEnv.trim());
    if (problem !== null) {
      throw new LatchkeyError("LK_CONFIG_INVALID", {
        message: `${spec.envName} is ${problem}.`,
        hint: spec.envHint,
      });
    }
    return { value: fromEnv.trim(), source: "env" };
  }
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
  const temp = `${path}.tmp-${Buffer.from(randomBytes(8)).toString("hex")}`;
  try {
    const handle = await open(
      temp,
      constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${value}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, path);
    } catch (err) {
      if (errnoCode(err) === "EEXIST") return false;
      throw err;
    }
    await syncDir(join(path, ".."));
    return true;
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    throw fileError(path, "create", err);
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
