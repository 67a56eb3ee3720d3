// Reading and editing .npmrc files for the hand-offs (exec, setup pnpm, setup npmrc). H1's registry/npmrc.ts did
// not exist when this was written; this module keeps to what the hand-offs need.
//
// Reading follows npm's own parser (the `ini` package as @npmcli/config uses it): `key=value` lines, `;` and `#`
// comments (also after an unquoted value), quoted values, `[section]` headers whose keys are not top-level, and
// `${VAR}` expanded from the environment in keys and values. Editing never re-serialises the file: it replaces or
// appends single lines, so comments, order, blank lines and line endings survive byte for byte.
import { existsSync } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { PRIVATE_FILE_MODE, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";

/** One line of an .npmrc: its raw text, and its key and value when it is a top-level setting. */
export interface NpmrcLine {
  readonly raw: string;
  /** The setting's key (unquoted, not yet env-expanded); undefined for comments, blanks and sections. */
  readonly key?: string;
  /** The setting's value as npm reads it (unquoted, inline comment dropped, not yet env-expanded). */
  readonly value?: string;
}

/** A parsed .npmrc: every line, in order. */
export interface Npmrc {
  readonly lines: readonly NpmrcLine[];
  /** The file's line ending, kept when it is edited. */
  readonly eol: "\n" | "\r\n";
}

const MAX_NPMRC_BYTES = 1024 * 1024;

function isQuoted(value: string): boolean {
  return (
    (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) ||
    (value.length >= 2 && value.startsWith("'") && value.endsWith("'"))
  );
}

/** ini's `unsafe`: unquote a quoted value; otherwise cut at an unescaped `;` or `#` and unescape `\;`, `\#`. */
function unsafe(text: string): string {
  const value = text.trim();
  if (isQuoted(value)) {
    const inner = value.startsWith("'") ? value.slice(1, -1) : value;
    try {
      const parsed: unknown = JSON.parse(inner);
      return typeof parsed === "string" ? parsed : inner;
    } catch {
      return inner;
    }
  }
  let out = "";
  let escaped = false;
  for (const c of value) {
    if (escaped) {
      out += "\\;#".includes(c) ? c : `\\${c}`;
      escaped = false;
    } else if (c === ";" || c === "#") {
      break;
    } else if (c === "\\") {
      escaped = true;
    } else {
      out += c;
    }
  }
  if (escaped) out += "\\";
  return out.trim();
}

/** Parses .npmrc text, keeping every line. */
export function parseNpmrc(text: string): Npmrc {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const rawLines = text.split(/\r?\n/);
  if (rawLines.at(-1) === "") rawLines.pop();
  let inSection = false;
  const lines = rawLines.map((raw): NpmrcLine => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith(";") || trimmed.startsWith("#")) return { raw };
    if (/^\[[^\]]*\]$/.test(trimmed)) {
      inSection = true;
      return { raw };
    }
    if (inSection) return { raw };
    const eq = trimmed.indexOf("=");
    const key = unsafe(eq === -1 ? trimmed : trimmed.slice(0, eq));
    // A key without "=" is `true` to npm; nothing the hand-offs read is a flag.
    const value = eq === -1 ? "true" : unsafe(trimmed.slice(eq + 1));
    return key === "" ? { raw } : { raw, key, value };
  });
  return { lines, eol };
}

/** A `${VAR}` reference as npm's env-replace finds it: an odd number of backslashes before it makes it literal. */
const ENV_REFERENCE = /(?<!\\)(\\*)\$\{([^${}]+)\}/g;

/**
 * The variable names one `${…}` body may stand for. npm reads `${VAR?}` as VAR (empty when unset), pnpm
 * `${VAR-fallback}` and `${VAR:-fallback}`, yarn `${VAR:-}` as well: a check that compared the whole body with a
 * name would let any of these forms through.
 */
function referencedNames(body: string): string[] {
  const names = [body, body.replace(/\?$/, "")];
  const withFallback = /^([^:-]+):?-/.exec(body);
  if (withFallback !== null) names.push(withFallback[1]!);
  return [...new Set(names)];
}

/** The variables `text` refers to as `${VAR}` (or a form with a modifier) and npm, pnpm or yarn would expand. */
export function envReferences(text: string): string[] {
  return [...text.matchAll(ENV_REFERENCE)]
    .filter((m) => m[1]!.length % 2 === 0)
    .flatMap((m) => referencedNames(m[2]!));
}

/**
 * npm's `${VAR}` expansion (@npmcli/config env-replace): `\${VAR}` stays literal, an unset variable stays as
 * written. Returns the expanded text and whether every reference was set.
 */
export function expandEnv(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): { value: string; complete: boolean } {
  let complete = true;
  const value = text.replace(ENV_REFERENCE, (whole, escapes: string, name: string) => {
    if (escapes.length % 2 === 1) return whole.slice((escapes.length + 1) / 2);
    const set = env[name];
    if (set === undefined) {
      complete = false;
      return whole;
    }
    return escapes.slice(escapes.length / 2) + set;
  });
  return { value, complete };
}

/** The top-level settings of a parsed file, later lines winning as in npm, with `${VAR}` expanded. */
export function npmrcSettings(
  npmrc: Npmrc,
  env: Readonly<Record<string, string | undefined>>,
): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of npmrc.lines) {
    if (line.key === undefined || line.value === undefined) continue;
    settings.set(expandEnv(line.key, env).value, expandEnv(line.value, env).value);
  }
  return settings;
}

/**
 * Reads an .npmrc; null when it does not exist. By default a symbolic link is followed, as npm follows it (a
 * dotfiles manager often links ~/.npmrc): reading discloses nothing. `noFollow` refuses one (LK_FILE_SYMLINK), for
 * a file about to be replaced, which must never happen through a link.
 */
export async function readNpmrc(path: string, options: { noFollow?: boolean } = {}): Promise<Npmrc | null> {
  let bytes: Uint8Array | null;
  if (options.noFollow === true) {
    bytes = await readFileSafe(path);
  } else {
    const target = await realpath(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw new LatchkeyError("LK_NPMRC_INVALID", {
        message: `Could not read ${path} (${error.code ?? "error"}).`,
        cause: error,
        details: { path },
      });
    });
    bytes = target === null ? null : await readFileSafe(target);
  }
  if (bytes === null) return null;
  if (bytes.length > MAX_NPMRC_BYTES) {
    throw new LatchkeyError("LK_NPMRC_INVALID", {
      message: `${path} is larger than ${MAX_NPMRC_BYTES} bytes; it is not an .npmrc Latchkey will read.`,
      details: { path },
    });
  }
  return parseNpmrc(Buffer.from(bytes).toString("utf8"));
}

/**
 * The user's .npmrc as npm finds it: `npm_config_userconfig` (any case) when set, else `~/.npmrc`. Null when no
 * home directory is known.
 */
export function userNpmrcPath(ctx: Context): string | null {
  for (const [name, value] of Object.entries(ctx.env)) {
    if (name.toLowerCase() === "npm_config_userconfig" && value) return resolve(ctx.cwd, value);
  }
  const home = ctx.env.HOME ?? ctx.env.USERPROFILE;
  return home ? join(home, ".npmrc") : null;
}

/**
 * The project directory as npm finds it (its "local prefix"): the nearest of cwd and its ancestors that holds a
 * package.json or a node_modules directory, else cwd itself.
 */
export function npmProjectRoot(cwd: string): string {
  const start = resolve(cwd);
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) || existsSync(join(dir, "node_modules"))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

/** The project's .npmrc path (it may not exist). */
export function projectNpmrcPath(ctx: Context): string {
  return join(npmProjectRoot(ctx.cwd), ".npmrc");
}

/** Renders a setting as a line npm reads back unchanged; refuses values the format cannot carry. */
export function npmrcLine(key: string, value: string): string {
  const padded = (text: string): boolean => /^\s|\s$/.test(text);
  if (/[\r\n\0]/.test(key + value) || key.includes("=") || padded(key) || padded(value)) {
    throw new LatchkeyError("LK_NPMRC_INVALID", {
      message: `The .npmrc setting ${JSON.stringify(key)} cannot be written: it would not read back as written.`,
      hint: "This is a bug in Latchkey if the value came from it; otherwise choose a value without line breaks.",
    });
  }
  // Quoted, ini would JSON-decode the value; bare, a `;` or `#` would start a comment. Neither may appear here.
  if (/[;#"']/.test(key + value)) {
    throw new LatchkeyError("LK_NPMRC_INVALID", {
      message: `The .npmrc setting ${JSON.stringify(key)} cannot be written: its value holds a character (; # " ') that .npmrc would read differently.`,
      hint: "Use a path or name without those characters.",
    });
  }
  return `${key}=${value}`;
}

/** What an edit did to one key. */
export type NpmrcChange = "added" | "updated" | "unchanged";

/**
 * Sets top-level keys in an .npmrc in place: the first line with the key is replaced (later duplicates, which
 * npm would let win, are removed), a missing key is appended before the first `[section]` or at the end. Every
 * other line is kept byte for byte. Runs under a lock and replaces the file atomically (temp file + rename, never
 * through a symbolic link); a file whose content would not change is not rewritten. New files get `mode`
 * (default 0600); an existing file keeps its mode.
 */
export async function updateNpmrc(
  path: string,
  entries: ReadonlyMap<string, string>,
  options: { mode?: number } = {},
): Promise<Map<string, NpmrcChange>> {
  const target = resolve(path);
  const lines = new Map([...entries].map(([key, value]) => [key, npmrcLine(key, value)]));
  return withFileLock(target, async (signal) => {
    const before = await readNpmrc(target, { noFollow: true });
    const npmrc = before ?? { lines: [], eol: "\n" as const };
    const changes = new Map<string, NpmrcChange>();
    const out: string[] = [];
    const seen = new Set<string>();
    for (const line of npmrc.lines) {
      const wanted = line.key === undefined ? undefined : lines.get(line.key);
      if (line.key === undefined || wanted === undefined) {
        out.push(line.raw);
        continue;
      }
      if (seen.has(line.key)) {
        changes.set(line.key, "updated");
        continue;
      }
      seen.add(line.key);
      changes.set(line.key, line.raw === wanted ? "unchanged" : "updated");
      out.push(wanted);
    }
    const missing = [...lines].filter(([key]) => !seen.has(key));
    const section = out.findIndex((raw) => /^\s*\[[^\]]*\]\s*$/.test(raw));
    const at = section === -1 ? out.length : section;
    out.splice(at, 0, ...missing.map(([, line]) => line));
    for (const [key] of missing) changes.set(key, "added");

    // Nothing changed: the file is left alone, even a last line without its newline.
    if ([...changes.values()].every((change) => change === "unchanged")) return changes;
    const text = `${out.join(npmrc.eol)}${npmrc.eol}`;
    const mode = before === null ? (options.mode ?? PRIVATE_FILE_MODE) : (await stat(target)).mode & 0o777;
    signal.throwIfAborted();
    await writeFileAtomic(target, text, { mode });
    return changes;
  });
}
