/**
 * `latchkey run --file KEY` and `--mount NAME`: secrets handed to the program as files rather than environment
 * variables, for values larger than an environment can carry (Linux: 128 KiB per variable) and programs that
 * read a file. The files live in a directory of their own, 0700, under $XDG_RUNTIME_DIR (a per-user tmpfs,
 * emptied at logout) when it is private, else the temp directory; each file is created 0600 with O_EXCL |
 * O_NOFOLLOW. Regular files, not FIFOs: a program that reads its file twice, or checks it with stat first,
 * keeps working. The directory is removed when the program ends, when this process exits any other way it
 * can run code in (a thrown error, process.exit), and otherwise (SIGKILL of this process) by the next
 * `run --file/--mount` of the same user, once the process that made it is gone.
 */
import fs from "node:fs";
import { isAbsolute, join } from "node:path";
import { LatchkeyError, formatDotenv, formatJson } from "@latchkey/core";
import type { Context } from "../context.js";
import { ensurePrivateDir, writeNewPrivateFile } from "../fs/safe-file.js";

/** The variable that holds the path of the `--mount` file. */
export const MOUNT_VARIABLE = "LATCHKEY_SECRETS_FILE";

/** The variable that holds the path of KEY's `--file` file. */
export const fileVariable = (key: string): string => `${key}_FILE`;

const DIR_PREFIX = "latchkey-run-";
const DIR_NAME = /^latchkey-run-(\d+)-[A-Za-z0-9]{6}$/;
const MOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What goes into files. */
export interface SecretFilesRequest {
  /** KEY and value: each written to a file named KEY, its path in KEY_FILE. Keys are validated names. */
  readonly files: readonly (readonly [string, string])[];
  /** Every secret in one file called `name`: JSON when the name ends in .json, else dotenv. */
  readonly mount?: { readonly name: string; readonly entries: readonly (readonly [string, string])[] };
}

/** Files written for one program. */
export interface SecretFiles {
  /** Variables for the program's environment: the files' paths. */
  readonly env: Readonly<Record<string, string>>;
  /** Removes the directory and its files; later calls do nothing. */
  remove(): void;
}

/** Checks a `--mount` name: a plain file name, no directory. */
export function validateMountName(name: string): string {
  if (!MOUNT_NAME.test(name) || name.includes("..")) {
    throw new LatchkeyError("LK_USAGE", {
      message: `${JSON.stringify(name)} is not a valid --mount file name.`,
      hint: "Give a plain file name such as secrets.env or config.json (letters, digits, '.', '_', '-'); Latchkey picks the directory and puts the file's path in LATCHKEY_SECRETS_FILE.",
    });
  }
  return name;
}

/** The directory the files' own directory goes in: a private $XDG_RUNTIME_DIR, else the temp directory. */
function baseDirectory(env: Context["env"]): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && isAbsolute(runtime)) {
    const st = fs.lstatSync(runtime, { throwIfNoEntry: false });
    const uid = process.getuid?.();
    if (st?.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o077) === 0) return runtime;
  }
  const tmp = env.TMPDIR;
  // The realpath: ensurePrivateDir refuses a directory whose parent is a symbolic link (macOS's /tmp is one).
  return fs.realpathSync(
    tmp !== undefined && isAbsolute(tmp) ? tmp : process.getBuiltinModule("node:os").tmpdir(),
  );
}

/** Removes directories left by a `run` that was killed before it could, once its process is gone. */
function sweepLeftovers(base: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const pid = DIR_NAME.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || isAlive(Number(pid))) continue;
    const path = join(base, name);
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (!st?.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    try {
      fs.rmSync(path, { recursive: true, force: true });
    } catch {
      // Someone else's problem now; this run goes on.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process of another user has that id now; it is not ours to judge.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Writes the requested files into a new private directory; the caller removes it when the program ends. */
export async function writeSecretFiles(ctx: Context, request: SecretFilesRequest): Promise<SecretFiles> {
  const mountName = request.mount === undefined ? undefined : validateMountName(request.mount.name);
  if (mountName !== undefined && request.files.some(([key]) => key === mountName)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--mount ${mountName} has the name of a --file secret.`,
      hint: "Give the --mount file another name.",
    });
  }
  const base = baseDirectory(ctx.env);
  sweepLeftovers(base);
  let dir: string;
  try {
    dir = fs.mkdtempSync(join(base, `${DIR_PREFIX}${process.pid}-`));
  } catch (error) {
    throw new LatchkeyError("LK_FILE_IO", {
      message: `Could not create a private directory for the secret files in ${base}.`,
      cause: error,
      details: { path: base },
    });
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.removeListener("exit", remove);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Synchronous, so it also runs on process.exit() and after an uncaught error.
  process.on("exit", remove);
  try {
    await ensurePrivateDir(dir);
    const env: Record<string, string> = {};
    for (const [key, value] of request.files) {
      const path = join(dir, key);
      await writeNewPrivateFile(path, value);
      env[fileVariable(key)] = path;
    }
    if (request.mount !== undefined && mountName !== undefined) {
      const path = join(dir, mountName);
      const render = mountName.endsWith(".json") ? formatJson : formatDotenv;
      await writeNewPrivateFile(path, render(request.mount.entries));
      env[MOUNT_VARIABLE] = path;
    }
    return { env, remove };
  } catch (error) {
    remove();
    throw error;
  }
}
