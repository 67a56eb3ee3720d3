/**
 * latchkey.json, the committed file that ties a project to its vault (DESIGN.md, "Project identity"). The vault
 * id lives in the file and is never derived from the path, so a project that is moved, renamed or cloned
 * elsewhere keeps its vault.
 */
import fs from "node:fs";
import { dirname, join, resolve } from "node:path";
import { LatchkeyError, isTable, randomId, validateVaultId } from "@latchkey/core";
import { readProjectVault } from "../fast-readers.js";
import { withFileLock } from "../fs/lock.js";
import { readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { userHome } from "../paths.js";
import {
  JsonPathError,
  JsonSyntaxError,
  describeType,
  lineColumn,
  parseJsonTree,
  setJsonValue,
} from "./json-edit.js";
import type { JsonNode } from "./json-edit.js";

/** The project file's name. */
export const PROJECT_FILE = "latchkey.json";
/** Mode of a newly created latchkey.json: it holds no secret and is committed, so it is readable like source. */
export const PROJECT_FILE_MODE = 0o644;
/** Larger files are refused unread: latchkey.json is a few hundred bytes, and it is read on every command. */
export const MAX_PROJECT_FILE_BYTES = 1024 * 1024;

const BOM = "\uFEFF";

/**
 * The fields of latchkey.json that Latchkey reads (core's projectFileSchema). Only `vault` is checked here, since
 * every command needs it; each other part is checked by the command that uses it.
 */
export interface ProjectConfig {
  /** The project's vault id, validated and in its one spelling (lower case); undefined until first use adds one. */
  vault: string | undefined;
  /** The raw `envSchema` value, for core's `parseEnvSchema` to validate. */
  envSchema: unknown;
  /** The raw `profile` value. */
  profile: unknown;
  /** The raw `name` value. */
  name: unknown;
  /** The raw `org` value: the organisation whose copy the sync commands use by default. */
  org: unknown;
  /** The raw `vaultSync` value, owned by the sync client. */
  vaultSync: unknown;
  /** The raw `registries` value, for registry/config.ts. */
  registries: unknown;
}

/** A latchkey.json that was found and parsed. */
export interface Project {
  /** The directory holding the file. */
  root: string;
  /** The file's absolute path. */
  file: string;
  config: ProjectConfig;
  /** The file's text exactly as read (a byte order mark included). */
  raw: string;
}

/** A project from `loadOrCreateProject`, with what the call changed on disk (for a status line). */
export interface LoadedProject extends Project {
  /** "created": a new latchkey.json; "added-vault": a vault id was added to an existing one; null: nothing. */
  change: "created" | "added-vault" | null;
}

/** Options for `loadOrCreateProject`. */
export interface LoadProjectOptions {
  /** Create latchkey.json, or add a vault id to one that lacks it, when needed. */
  create: boolean;
  /** Generates a new vault id; default core's `randomId` (UUID v4). */
  random?: () => string;
  /** The user's home directory (default `userHome()`, i.e. `os.homedir()`); see `projectRootFor`. */
  home?: string;
}

/**
 * Finds the nearest latchkey.json in `cwd` or an ancestor, up to the filesystem root, and parses it; null when
 * there is none. A malformed file is an error (LK_PROJECT_INVALID) rather than skipped, so a broken file never
 * silently hands the command to an outer project's vault.
 */
export async function findProject(cwd: string): Promise<Project | null> {
  let dir = resolve(cwd);
  for (;;) {
    const file = join(dir, PROJECT_FILE);
    const raw = await readProjectFile(file);
    if (raw !== null) return { root: dir, file, config: parseProject(raw, file), raw };
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * Finds the project for `cwd` (see `findProject`). With `create`, makes sure it has a vault id: a missing
 * latchkey.json is created in `projectRootFor(cwd)` as `{ "vault": "<uuid>" }`, and a file without `vault` gets
 * one inserted as its first member with every other byte kept. Both happen under a lock with a re-read, so
 * concurrent first uses, in any number of processes, agree on one id. Without `create`, returns null when there
 * is no file and never writes.
 */
export async function loadOrCreateProject(
  cwd: string,
  options: LoadProjectOptions & { create: true },
): Promise<LoadedProject>;
export async function loadOrCreateProject(
  cwd: string,
  options: LoadProjectOptions,
): Promise<LoadedProject | null>;
export async function loadOrCreateProject(
  cwd: string,
  options: LoadProjectOptions,
): Promise<LoadedProject | null> {
  const found = await findProject(cwd);
  if (found !== null && (found.config.vault !== undefined || !options.create)) {
    return { ...found, change: null };
  }
  if (!options.create) return null;
  const file = found?.file ?? join(projectRootFor(cwd, options.home), PROJECT_FILE);
  return ensureVault(file, options.random ?? randomId);
}

/**
 * The directory where first use creates latchkey.json for `cwd`: the nearest of `cwd` and its ancestors that
 * holds `.git` (a directory, or a file in worktrees and submodules) or `package.json`, since the file belongs at
 * the project root, beside what is committed with it, where `findProject` finds it from every subdirectory.
 * Without such a marker it is `cwd` itself: guessing a parent could put the file in a directory that is not the
 * user's project and silently share one vault among unrelated directories below it. For the same reason the
 * home directory (a dotfiles repository keeps `.git` there) and the filesystem root never count as project
 * roots, and the search stops at the home directory when `cwd` is inside it.
 */
export function projectRootFor(cwd: string, home: string = userHome()): string {
  const start = resolve(cwd);
  const homeDir = realpathOr(home);
  let dir = start;
  for (;;) {
    const parent = dirname(dir);
    if (dir === homeDir || parent === dir) return start;
    if (exists(join(dir, ".git")) || exists(join(dir, "package.json"))) return dir;
    dir = parent;
  }
}

/**
 * The vault id for this invocation: `LATCHKEY_VAULT_ID` when set (validated; an empty value is an error, not
 * "unset", so a CI variable that expanded to nothing cannot fall back to another vault), else the project's.
 * Throws LK_PROJECT_NOT_FOUND when neither names one.
 */
export function resolveVaultId(
  env: Readonly<Record<string, string | undefined>>,
  project: Pick<Project, "config" | "file"> | null,
): string {
  const override = env.LATCHKEY_VAULT_ID;
  if (override !== undefined) return validateVaultId(override, "LATCHKEY_VAULT_ID");
  const id = project?.config.vault;
  if (id !== undefined) return id;
  throw new LatchkeyError("LK_PROJECT_NOT_FOUND", {
    message:
      project === null
        ? `No ${PROJECT_FILE} was found in this directory or any parent, and LATCHKEY_VAULT_ID is not set.`
        : `${project.file} has no "vault" yet, and LATCHKEY_VAULT_ID is not set.`,
    ...(project === null ? {} : { details: { path: project.file } }),
  });
}

/**
 * Sets the value at `path` in the latchkey.json at `file` (e.g. `["vaultSync", "personalVersion"]`), replacing
 * just an existing value's text or inserting a missing key as the last member (creating missing intermediate
 * objects), with the rest of the file kept byte for byte. Locked and atomic like `loadOrCreateProject`. The file
 * must exist and be valid (LK_FILE_IO, LK_PROJECT_INVALID), an intermediate value must be an object
 * (LK_PROJECT_INVALID), and a new `vault` must be a valid id (LK_VAULT_ID_INVALID); on any error the file is
 * left untouched. Returns the project as written.
 */
export async function updateProjectField(
  file: string,
  path: readonly string[],
  value: unknown,
): Promise<Project> {
  const target = resolve(file);
  if (path.length === 1 && path[0] === "vault") {
    validateVaultId(value as string, `the new value for ${PROJECT_FILE} at ${target}`);
  }
  return withFileLock(target, async (signal) => {
    const raw = await readProjectFile(target);
    if (raw === null) {
      throw new LatchkeyError("LK_FILE_IO", {
        message: `Could not update ${target}: it does not exist.`,
        details: { path: target },
      });
    }
    parseProject(raw, target);
    const next = editProject(raw, target, path, value, "last");
    const config = parseProject(next, target);
    if (next !== raw) await writeProject(target, next, signal);
    return { root: dirname(target), file: target, config, raw: next };
  });
}

/**
 * Parses latchkey.json text (a leading byte order mark is allowed). Throws LK_PROJECT_INVALID, naming
 * `file:line:column`, when it is not strict JSON (comments, trailing commas and duplicate keys included), not an
 * object, or its `vault` is not a string holding a valid vault id.
 */
export function parseProject(raw: string, file: string): ProjectConfig {
  const body = stripBom(raw);
  let tree: JsonNode;
  try {
    tree = parseJsonTree(body);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw invalidProject(file, body, err.offset, err.message, err);
    throw err;
  }
  if (tree.type !== "object") {
    throw invalidProject(
      file,
      body,
      tree.start,
      `the top level must be an object, not ${describeType(tree)}`,
    );
  }
  // The tree has an object at the top, and JSON.parse reads the text the tree accepted alike.
  const data: unknown = JSON.parse(body);
  const field = (key: string): unknown => (isTable(data) && Object.hasOwn(data, key) ? data[key] : undefined);

  let vault: string | undefined;
  const vaultMember = tree.members.find((m) => m.key === "vault");
  if (vaultMember !== undefined) {
    const id = readProjectVault(field("vault"));
    if (!id.ok) throw invalidProject(file, body, vaultMember.value.start, id.message);
    vault = id.value;
  }
  return {
    vault,
    envSchema: field("envSchema"),
    profile: field("profile"),
    name: field("name"),
    org: field("org"),
    vaultSync: field("vaultSync"),
    registries: field("registries"),
  };
}

async function ensureVault(file: string, random: () => string): Promise<LoadedProject> {
  const root = dirname(file);
  return withFileLock(file, async (signal) => {
    // Re-read under the lock: another process may have created the file or added the id since findProject.
    const raw = await readProjectFile(file);
    if (raw === null) {
      const id = validateVaultId(random(), "the generated vault id");
      const created = `{\n  "vault": ${JSON.stringify(id)}\n}\n`;
      signal.throwIfAborted();
      await writeFileAtomic(file, created, { mode: PROJECT_FILE_MODE });
      return { root, file, config: parseProject(created, file), raw: created, change: "created" };
    }
    const config = parseProject(raw, file);
    if (config.vault !== undefined) return { root, file, config, raw, change: null };
    const id = validateVaultId(random(), "the generated vault id");
    const next = editProject(raw, file, ["vault"], id, "first");
    const updated = parseProject(next, file);
    await writeProject(file, next, signal);
    return { root, file, config: updated, raw: next, change: "added-vault" };
  });
}

function editProject(
  raw: string,
  file: string,
  path: readonly string[],
  value: unknown,
  position: "first" | "last",
): string {
  const bom = raw.startsWith(BOM) ? BOM : "";
  const body = raw.slice(bom.length);
  try {
    return bom + setJsonValue(body, path, value, { position });
  } catch (err) {
    if (err instanceof JsonPathError || err instanceof JsonSyntaxError) {
      throw invalidProject(file, body, err.offset, err.message, err);
    }
    throw err;
  }
}

/** Replaces the file atomically, keeping its permission bits: they are the user's choice, not ours. */
async function writeProject(file: string, text: string, signal: AbortSignal): Promise<void> {
  const mode = await fs.promises.lstat(file).then(
    (st) => st.mode & 0o777,
    () => PROJECT_FILE_MODE,
  );
  // A lost lock means another process may be writing too; its write wins rather than both interleaving.
  signal.throwIfAborted();
  await writeFileAtomic(file, text, { mode });
}

async function readProjectFile(file: string): Promise<string | null> {
  const bytes = await readFileSafe(file);
  if (bytes === null) return null;
  if (bytes.length > MAX_PROJECT_FILE_BYTES) {
    throw new LatchkeyError("LK_PROJECT_INVALID", {
      message: `Invalid ${PROJECT_FILE} at ${file}: it is ${bytes.length} bytes, more than the ${MAX_PROJECT_FILE_BYTES} allowed.`,
      details: { path: file },
    });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (err) {
    throw new LatchkeyError("LK_PROJECT_INVALID", {
      message: `Invalid ${PROJECT_FILE} at ${file}: it is not valid UTF-8 text.`,
      cause: err,
      details: { path: file },
    });
  }
}

function invalidProject(
  file: string,
  body: string,
  offset: number,
  reason: string,
  cause?: unknown,
): LatchkeyError {
  const { line, column } = lineColumn(body, offset);
  return new LatchkeyError("LK_PROJECT_INVALID", {
    message: `Invalid ${PROJECT_FILE} at ${file}:${line}:${column}: ${reason}.`,
    ...(cause === undefined ? {} : { cause }),
    details: { path: file, line, column },
  });
}

function stripBom(raw: string): string {
  return raw.startsWith(BOM) ? raw.slice(BOM.length) : raw;
}

// Synchronous: the walk up to the project root runs on every `run` and `env get`, and node:fs/promises
// alone costs ~2 ms to load.
function exists(path: string): boolean {
  try {
    return fs.lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

function realpathOr(path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return resolve(path);
  }
}
