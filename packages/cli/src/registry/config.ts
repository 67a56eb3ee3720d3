// Registry declarations: the user's `$LATCHKEY_HOME/config.toml` and the project's latchkey.json `registries`.
//
//   [registries."https://npm.example.com/"]
//   tokenEnv = "EXAMPLE_NPM_TOKEN"          # the variable that carries its token
//   provider = ["/usr/local/bin/issuer", "--audience", "npm"]   # an npm credential-provider command, argv
//   kind = "gitlab"                         # config.toml only: a self-managed GitLab that may get GITLAB_TOKEN
//
// A project file is written by whoever wrote the repository, so it may not name where the user's well-known
// tokens go: it cannot declare `kind`, nor point `tokenEnv` at a variable Latchkey hands to a known host, nor name
// a plain-http registry beyond loopback (whatever token goes there would cross the network in clear). Its `tokenEnv`
// and `provider` are used only once the user approves them (sources.ts, provider-client.ts, project/approvals.ts).
import { LatchkeyError, isTable, type LoginRecord } from "@latchkey/core";
import { readConfigToml } from "../config-file.js";
import type { Context } from "../context.js";
import { sameVariable } from "../env-names.js";
import { readLoginRecord, readRegistryEntry } from "../fast-readers.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { lineColumn, parseJsonTree, type JsonMember, type JsonNode } from "../project/json-edit.js";
import { findProject } from "../project/project.js";
import { isLoopbackNerfDart, nerfDart, registryKind } from "./nerf-dart.js";
import type { NerfDart, RegistryConfig } from "./types.js";

/** Environment variables Latchkey gives only to the registries they belong to (see sources.ts). */
export const RESERVED_TOKEN_VARIABLES: readonly string[] = [
  "NPM_TOKEN",
  "GITHUB_TOKEN",
  "GH_TOKEN",
  "GITLAB_TOKEN",
  "CI_JOB_TOKEN",
];

/** Whether a project may send `name` to a registry it names: never a well-known token or Latchkey's own settings. */
function reservedForProjects(name: string, os: Context["platform"]["os"]): boolean {
  return (
    RESERVED_TOKEN_VARIABLES.some((reserved) => sameVariable(reserved, name, os)) ||
    sameVariable(name.slice(0, "LATCHKEY_".length), "LATCHKEY_", os)
  );
}

function configError(file: string, key: string | null, why: string, line?: number): LatchkeyError {
  const at = line === undefined ? file : `${file}:${line}`;
  return new LatchkeyError("LK_CONFIG_INVALID", {
    message: `Invalid registry configuration in ${at}${key === null ? "" : ` at ${key}`}: ${why}.`,
    hint:
      'Each registry is a table keyed by its URL with only tokenEnv (a variable name), provider (an argv array, e.g. ["/path/to/cmd", "--flag"])' +
      " and, in config.toml, kind (npm, github, gitlab or custom).",
    details: { path: file, ...(key === null ? {} : { key }), ...(line === undefined ? {} : { line }) },
  });
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return typeof value === "object" ? "a table" : `a ${typeof value}`;
}

/** The line (1-based) of a member in a registries collection: the registry (field null) or one of its fields. */
type LineOf = (url: string | null, field: string | null) => number | undefined;

/**
 * Validates one `registries` collection; `where` names the collection in messages (`registries` in TOML), `os`
 * decides how variable names compare, and `lineOf` (latchkey.json only) places declarations in the file.
 */
function parseRegistries(
  value: unknown,
  file: string,
  declaredIn: "user" | "project",
  where: string,
  os: Context["platform"]["os"],
  lineOf: LineOf = () => undefined,
): RegistryConfig[] {
  if (value === undefined) return [];
  if (!isTable(value))
    throw configError(
      file,
      where,
      `expected a table of registries, found ${describe(value)}`,
      lineOf(null, null),
    );
  const out: RegistryConfig[] = [];
  const seen = new Map<NerfDart, string>();
  for (const [url, entry] of Object.entries(value)) {
    const key = `${where}.${JSON.stringify(url)}`;
    const fail = (field: string | null, why: string): LatchkeyError =>
      configError(file, field === null ? key : `${key}.${field}`, why, lineOf(url, field));
    let nerf: NerfDart;
    try {
      nerf = nerfDart(url);
    } catch (err) {
      throw fail(null, (err as Error).message.replace(/\.$/, ""));
    }
    const earlier = seen.get(nerf);
    if (earlier !== undefined) throw fail(null, `it names the same registry as ${JSON.stringify(earlier)}`);
    seen.set(nerf, url);
    if (declaredIn === "project" && /^http:/i.test(url.trim()) && !isLoopbackNerfDart(nerf)) {
      throw fail(
        null,
        "a project may not name a plain-http registry beyond this machine, since a token sent there crosses the network unencrypted; declare it in your own config.toml if you mean to",
      );
    }
    const read = readRegistryEntry(entry, declaredIn);
    if (!read.ok) throw fail(read.path.length === 0 ? null : String(read.path[0]), read.message);
    const { kind, tokenEnv, provider } = read.value;
    const config: { -readonly [K in keyof RegistryConfig]: RegistryConfig[K] } = {
      nerfDart: nerf,
      url,
      kind: kind ?? registryKind(nerf),
      declaredIn,
      file,
    };
    if (tokenEnv !== undefined) {
      if (declaredIn === "project" && reservedForProjects(tokenEnv, os)) {
        throw fail(
          "tokenEnv",
          `a project may not send ${tokenEnv} to a registry it names; declare it in your own config.toml if you mean to`,
        );
      }
      config.tokenEnv = tokenEnv;
      const line = lineOf(url, "tokenEnv");
      if (line !== undefined) config.tokenEnvLine = line;
    }
    if (provider !== undefined) {
      const line = lineOf(url, "provider");
      config.provider = { argv: provider, declaredIn, file, ...(line === undefined ? {} : { line }) };
    }
    out.push(config);
  }
  return out;
}

async function readUserConfig(ctx: Context): Promise<RegistryConfig[]> {
  const { file, doc } = await readConfigToml(ctx);
  return parseRegistries(doc.registries, file, "user", "registries", ctx.platform.os);
}

function member(node: JsonNode | undefined, key: string): JsonMember | undefined {
  return node?.type === "object" ? node.members.find((m) => m.key === key) : undefined;
}

async function readProjectConfig(ctx: Context): Promise<RegistryConfig[]> {
  const project = await findProject(ctx.cwd);
  if (project === null) return [];
  if (project.config.registries === undefined) return [];
  // Positions only: an approval prompt or refusal names the line a person should look at. findProject has
  // already checked the file is strict JSON with an object at the top.
  const body = project.raw.replace(/^\uFEFF/, "");
  const tree = parseJsonTree(body);
  const registries = member(tree, "registries");
  const lineOf: LineOf = (url, field) => {
    const entry = url === null ? registries : member(registries?.value, url);
    const found = field === null ? entry : member(entry?.value, field);
    return found === undefined ? undefined : lineColumn(body, found.keyStart).line;
  };
  return parseRegistries(
    project.config.registries,
    project.file,
    "project",
    "registries",
    ctx.platform.os,
    lineOf,
  );
}

const cache = new WeakMap<Context, Promise<RegistryConfig[]>>();

/**
 * Every registry declared for this command: the user's config.toml first, then the project's latchkey.json. When
 * both declare one registry the user's declaration is used whole. A missing file declares nothing; a malformed
 * one is LK_CONFIG_INVALID naming the file and key. Read once per context.
 */
export function loadRegistryConfigs(ctx: Context): Promise<RegistryConfig[]> {
  let pending = cache.get(ctx);
  if (pending === undefined) {
    pending = (async () => {
      const [user, project] = await Promise.all([readUserConfig(ctx), readProjectConfig(ctx)]);
      const declared = new Set(user.map((c) => c.nerfDart));
      return [...user, ...project.filter((c) => !declared.has(c.nerfDart))];
    })();
    cache.set(ctx, pending);
  }
  return pending;
}

/** The declaration for one registry, if any. */
export async function findRegistryConfig(ctx: Context, nerf: NerfDart): Promise<RegistryConfig | undefined> {
  return (await loadRegistryConfigs(ctx)).find((c) => c.nerfDart === nerf);
}

async function readLoginRecordsFile(file: string): Promise<Record<NerfDart, LoginRecord>> {
  const bytes = await readFileSafe(file);
  if (bytes === null) return {};
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new LatchkeyError("LK_STORE_CORRUPT", {
      message: `${file} is not valid JSON.`,
      details: { path: file },
    });
  }
  const out: Record<NerfDart, LoginRecord> = {};
  if (!isTable(data)) return out;
  for (const [nerf, entry] of Object.entries(data)) {
    // Only entries that still say what they claim: a hand-edited URL must not move a token to another host.
    const record = readLoginRecord(entry);
    if (!record.ok) continue;
    const { url } = record.value;
    try {
      if (nerfDart(url) === nerf) out[nerf] = { url };
    } catch {
      // skipped: not a registry URL
    }
  }
  return out;
}

/** The registries logged in to, by nerf dart (`$LATCHKEY_HOME/registries.json`). */
export function readLoginRecords(ctx: Context): Promise<Record<NerfDart, LoginRecord>> {
  return readLoginRecordsFile(ctx.paths.registries);
}

/** Records (url) or forgets (null) a registry's login, under a lock against concurrent logins. */
export async function updateLoginRecord(ctx: Context, nerf: NerfDart, url: string | null): Promise<void> {
  const file = ctx.paths.registries;
  // Forgetting what was never recorded must not create LATCHKEY_HOME.
  if (url === null && !(nerf in (await readLoginRecordsFile(file)))) return;
  await ensurePrivateDir(ctx.paths.home);
  await withFileLock(file, async (signal) => {
    const records = await readLoginRecordsFile(file);
    if (url === null) {
      if (!(nerf in records)) return;
      delete records[nerf];
    } else {
      records[nerf] = { url };
    }
    signal.throwIfAborted();
    await writeFileAtomic(file, `${JSON.stringify(records, null, 2)}\n`);
  });
}
