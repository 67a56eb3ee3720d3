// Reading and editing .npmrc files for the hand-offs (exec, setup pnpm, setup npmrc). H1's registry/npmrc.ts did
// not exist when this was written; this module keeps to what the hand-offs need.
//
// Reading follows npm's own parser (the `ini` package as @npmcli/config uses it): `key=value` lines, `;` and `#`
// comments (also after an unquoted value), quoted values, `[section]` headers whose keys are not top-level, and
// `${VAR}` expanded from the environment in keys and values. Editing never re-serialises the file: it replaces or
// appends single lines, so comments, order, blank lines and line endings survive byte for byte.
import { existsSync, readFileSync, statSync } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { LatchkeyError, checkSchema, packageJsonSchema } from "@latchkey/core";
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
 * Reads a client's configuration file as text; null when it does not exist. By default a symbolic link is followed,
 * as npm and yarn follow it (a dotfiles manager often links ~/.npmrc, and a repository may commit one): reading
 * discloses nothing. `noFollow` refuses one (LK_FILE_SYMLINK), for a file about to be replaced, which must never
 * happen through a link. Any other failure to read it is LK_NPMRC_INVALID: a file that is there but could not be
 * read must not pass for an absent one.
 */
export async function readConfigText(
  path: string,
  options: { noFollow?: boolean } = {},
): Promise<string | null> {
  let bytes: Uint8Array | null;
  if (options.noFollow === true) {
    bytes = await readFileSafe(path);
  } else {
    const target = await realpath(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ENOTDIR") return null;
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
      message: `${path} is larger than ${MAX_NPMRC_BYTES} bytes; it is not a configuration file Latchkey will read.`,
      details: { path },
    });
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Reads and parses an .npmrc (readConfigText); null when it does not exist. */
export async function readNpmrc(path: string, options: { noFollow?: boolean } = {}): Promise<Npmrc | null> {
  const text = await readConfigText(path, options);
  return text === null ? null : parseNpmrc(text);
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

/** `dir` and every directory above it, nearest first. */
export function selfAndAncestors(dir: string): string[] {
  const out = [resolve(dir)];
  while (dirname(out.at(-1)!) !== out.at(-1)) out.push(dirname(out.at(-1)!));
  return out;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * Whether npm counts `dir` as a workspace of the package at `root` (@npmcli/map-workspaces as npm 11 calls it): a
 * directory with a package.json that one of `root`'s `workspaces` globs names (`!` patterns exclude, a later
 * pattern the exclusion matches lifts it, nothing under node_modules counts). minimatch is the matcher npm's glob
 * uses; it is loaded only when some directory above declares workspaces.
 */
async function isNpmWorkspace(root: string, dir: string): Promise<boolean> {
  let pkg: unknown;
  try {
    pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  } catch {
    return false;
  }
  // npm fails outright on a `workspaces` that is not a list of strings: no project config is loaded then.
  const read = checkSchema(packageJsonSchema, pkg);
  const declared = read.ok ? read.value.workspaces : undefined;
  if (declared === undefined || !isFile(join(dir, "package.json"))) return false;
  const list = Array.isArray(declared) ? declared : declared.packages;
  const { minimatch } = await import("minimatch");
  const patterns: string[] = [];
  let negated: string[] = [];
  for (const entry of list) {
    const bangs = /^!+/.exec(entry)?.[0].length ?? 0;
    const pattern = entry.slice(bangs).replace(/^\.?\/+/, "");
    if (bangs % 2 === 1) negated.push(pattern);
    else {
      negated = negated.filter((n) => !minimatch(pattern, n));
      patterns.push(pattern);
    }
  }
  const path = relative(root, dir).split(sep).join("/");
  const options = { windowsPathsNoEscape: true };
  const matches = (pattern: string): boolean => minimatch(path, pattern.replace(/\/+$/, ""), options);
  return patterns.some(matches) && !negated.some(matches) && !minimatch(path, "**/node_modules/**", options);
}

/**
 * The project directory as npm 11 finds it, its "local prefix" (@npmcli/config's loadLocalPrefix): the nearest of
 * cwd and its ancestors holding a package.json file or a node_modules directory, unless a directory further up has
 * a package.json whose `workspaces` include it: then that workspace root, whose .npmrc npm reads instead (it
 * ignores the package's own, with a warning). cwd itself when there is none.
 */
export async function npmProjectRoot(cwd: string): Promise<string> {
  let prefix: string | null = null;
  for (const dir of selfAndAncestors(cwd)) {
    const hasPackageJson = isFile(join(dir, "package.json"));
    if (prefix === null) {
      if (hasPackageJson || isDirectory(join(dir, "node_modules"))) prefix = dir;
    } else if (hasPackageJson && (await isNpmWorkspace(dir, prefix))) {
      return dir;
    }
  }
  return prefix ?? resolve(cwd);
}

/** The project's .npmrc as npm reads it (it may not exist): the one in npmProjectRoot. */
export async function projectNpmrcPath(ctx: Context): Promise<string> {
  return join(await npmProjectRoot(ctx.cwd), ".npmrc");
}

/**
 * The project .npmrc files pnpm reads, most specific first: its local prefix's (@pnpm/npm-conf findPrefix: out
 * of any node_modules, then the nearest directory holding node_modules, package.json, package.json5, package.yaml
 * or pnpm-workspace.yaml, cwd when that is only `/`) and its workspace root's (the nearest pnpm-workspace.yaml, or
 * NPM_CONFIG_WORKSPACE_DIR). pnpm 10 and 12 read both, the first winning.
 */
export function pnpmProjectNpmrcPaths(ctx: Context): string[] {
  let start = resolve(ctx.cwd);
  while (basename(start) === "node_modules") start = dirname(start);
  const markers = ["node_modules", "package.json", "package.json5", "package.yaml", "pnpm-workspace.yaml"];
  const prefix =
    selfAndAncestors(start).find(
      (dir) => dirname(dir) !== dir && markers.some((m) => existsSync(join(dir, m))),
    ) ?? start;
  const fromEnv = Object.entries(ctx.env).find(([k]) => k.toUpperCase() === "NPM_CONFIG_WORKSPACE_DIR")?.[1];
  const workspace = fromEnv
    ? resolve(ctx.cwd, fromEnv)
    : selfAndAncestors(ctx.cwd).find((dir) => isFile(join(dir, "pnpm-workspace.yaml")));
  const files = [join(prefix, ".npmrc")];
  if (workspace !== undefined && workspace !== prefix) files.push(join(workspace, ".npmrc"));
  return files;
}

/**
 * Every project .npmrc a client may read here, nearest first: yarn 1 reads the one in the working directory and in
 * every directory above it (NpmRegistry.getPossibleConfigLocations), and npm's and pnpm's are among those, unless
 * NPM_CONFIG_WORKSPACE_DIR names pnpm's workspace root elsewhere. The user's own (npm_config_userconfig, ~/.npmrc)
 * is not one of them.
 */
export function projectNpmrcPaths(ctx: Context): string[] {
  const home = ctx.env.HOME ?? ctx.env.USERPROFILE;
  const own = [userNpmrcPath(ctx), home ? join(home, ".npmrc") : null];
  const files = [
    ...selfAndAncestors(ctx.cwd).map((dir) => join(dir, ".npmrc")),
    ...pnpmProjectNpmrcPaths(ctx),
  ];
  return [...new Set(files)].filter((file) => !own.includes(file));
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
