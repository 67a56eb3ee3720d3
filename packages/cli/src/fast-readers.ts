// The zod-free readers of the files the hot commands read (`run`, `env get`, `keystore get`, `token`, the
// credential helpers; fast-path.ts; with --offline, `sync/state.json` too). Every file format is declared once,
// as a zod/mini schema in core, and its TypeScript type is inferred from that schema; but loading zod would cost
// these commands more than all the rest of their start-up, so they read their files with these hand-written
// checks instead. Each reader accepts exactly what its schema accepts and reads it to the same value:
// fast-readers.test.ts checks every pair on generated values, and the build refuses a fast bundle with zod in it
// (scripts/build.mjs). Only types come from the schemas' modules here; the rules both sides apply come from
// core's zod-free schemas/rules.ts.
//
// The messages are the readers' own and never quote a value (it may be a secret); their callers add the file,
// and the line or key.
import {
  DECLARATION_KINDS,
  REGISTRY_FIELDS,
  REGISTRY_KINDS,
  SHA256_HEX,
  isEnvVariableName,
  isOrgSlug,
  isProviderArgv,
  isProviderToken,
  isTable,
  parseIsoDateTime,
  vaultIdProblem,
  canonicalVaultId,
  MAX_UNIX_SECONDS,
  type Approval,
  type ApprovalsFile,
  type CiSettings,
  type Checked,
  type LoginRecord,
  type ProviderAnswer,
  type RegistryKind,
  type SyncEntry,
  type SyncState,
  type UserRegistry,
  type VaultDocument,
} from "@latchkey/core";

function fail(
  path: readonly (string | number)[],
  message: string,
): { ok: false; path: typeof path; message: string } {
  return { ok: false, path, message };
}

/**
 * A copy of a table's members, without a `__proto__` member: zod's objects and records leave that one out (it
 * could replace the prototype of the object built from them), and so do these readers.
 */
function members<T>(table: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of Object.keys(table)) if (key !== "__proto__") out[key] = table[key]!;
  return out;
}

/** How a JSON value is named in messages (as json-edit.ts's describeType names a node). */
function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** How a TOML (or JSON) value is named in a registry declaration's messages. */
function describeToml(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return typeof value === "object" ? "a table" : `a ${typeof value}`;
}

/** latchkey.json's `vault`, in its one spelling (core's projectVaultSchema). */
export function readProjectVault(value: unknown): Checked<string> {
  if (typeof value !== "string") return fail([], `"vault" must be a string, not ${describeJson(value)}`);
  const problem = vaultIdProblem(value);
  if (problem !== undefined) return fail([], `"vault" is not a valid vault id: ${problem}`);
  return { ok: true, value: canonicalVaultId(value) };
}

const isVersion = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/** What latchkey.json's `vaultSync` records of the copies any checkout last synced. */
export interface VaultSyncRecord {
  personalVersion?: number;
  /** By organisation slug. */
  orgVersions?: Record<string, number>;
}

/**
 * latchkey.json's `vaultSync` (core's vaultSyncSchema): `personalVersion` and `orgVersions`, the versions of the
 * personal and organisation copies last synced by any checkout, tell every command that the vault lives on a
 * server too (sync/not-paired.ts).
 */
export function readVaultSync(value: unknown): Checked<VaultSyncRecord> {
  // zod's loose object: any object but an array (isTable's stricter rule would refuse what the schema takes).
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return fail([], `"vaultSync" must be an object, not ${describeJson(value)}`);
  const table = value as Record<string, unknown>;
  const { personalVersion, orgVersions } = table;
  const read: VaultSyncRecord & Record<string, unknown> = members(table);
  if (personalVersion !== undefined) {
    if (!isVersion(personalVersion)) return fail(["personalVersion"], "not an integer of 0 or more");
    read.personalVersion = personalVersion;
  }
  if (orgVersions !== undefined) {
    if (!isTable(orgVersions))
      return fail(["orgVersions"], `must be an object, not ${describeJson(orgVersions)}`);
    const versions: Record<string, number> = {};
    for (const [slug, version] of Object.entries(members(orgVersions))) {
      if (!isOrgSlug(slug)) return fail(["orgVersions"], "a key that is not an organisation slug");
      if (!isVersion(version)) return fail(["orgVersions", slug], "not an integer of 0 or more");
      versions[slug] = version;
    }
    read.orgVersions = versions;
  }
  return { ok: true, value: read };
}

/**
 * One registry declaration, by the file that made it (core's userRegistrySchema for config.toml,
 * projectRegistrySchema for latchkey.json). What a URL may be, and what a project may not send where, is the
 * caller's: those are not a matter of shape.
 */
export function readRegistryEntry(entry: unknown, declaredIn: "user" | "project"): Checked<UserRegistry> {
  if (!isTable(entry)) return fail([], `expected a table, found ${describeToml(entry)}`);
  const allowed: readonly string[] = REGISTRY_FIELDS[declaredIn];
  for (const field of Object.keys(entry)) {
    if (!allowed.includes(field)) {
      return fail(
        [field],
        field === "kind" && declaredIn === "project"
          ? "`kind` is only accepted in your own config.toml, since it decides which of your tokens the registry may receive"
          : `unknown field ${JSON.stringify(field)} (accepted: ${allowed.join(", ")})`,
      );
    }
  }
  const { kind, tokenEnv, provider } = entry;
  if (kind !== undefined && !(REGISTRY_KINDS as readonly unknown[]).includes(kind))
    return fail(["kind"], `expected one of ${REGISTRY_KINDS.join(", ")}`);
  if (tokenEnv !== undefined && (typeof tokenEnv !== "string" || !isEnvVariableName(tokenEnv)))
    return fail(["tokenEnv"], "expected an environment variable name such as EXAMPLE_NPM_TOKEN");
  if (provider !== undefined && !isProviderArgv(provider))
    return fail(
      ["provider"],
      "expected a non-empty array of non-empty strings: the command and its arguments, run without a shell",
    );
  return {
    ok: true,
    value: {
      ...(tokenEnv === undefined ? {} : { tokenEnv }),
      ...(provider === undefined ? {} : { provider: [...provider] }),
      ...(kind === undefined ? {} : { kind: kind as RegistryKind }),
    },
  };
}

/** config.toml's `[ci]` (core's ciSchema). */
export function readCiSettings(value: unknown): Checked<CiSettings> {
  if (!isTable(value)) return fail([], "expected a table");
  const allow = value.allow_project_credentials;
  if (allow !== undefined && typeof allow !== "boolean")
    return fail(["allow_project_credentials"], "expected true or false");
  return { ok: true, value: members(value) };
}

function isApproval(entry: Record<string, unknown>): entry is Approval {
  return (
    (DECLARATION_KINDS as readonly unknown[]).includes(entry.kind) &&
    typeof entry.sha256 === "string" &&
    SHA256_HEX.test(entry.sha256)
  );
}

/** approvals.json, version 1 or 2 (core's approvalsFileSchema). */
export function readApprovalsFile(doc: unknown): Checked<ApprovalsFile> {
  if (!isTable(doc) || (doc.version !== 1 && doc.version !== 2) || !Array.isArray(doc.approvals))
    return fail([], "expected version 1 or 2 and an approvals array");
  const { approvals } = doc as { approvals: unknown[] };
  for (const [i, entry] of approvals.entries()) {
    if (!isTable(entry) || typeof entry.project !== "string")
      return fail(["approvals", i], "an approval without a project path");
    if (doc.version === 1) {
      if (typeof entry.argvSha256 !== "string" || !SHA256_HEX.test(entry.argvSha256))
        return fail(["approvals", i], "an approval without an argv hash");
    } else if (!isApproval(entry)) {
      return fail(["approvals", i], "an approval without a known kind and a declaration hash");
    }
  }
  return {
    ok: true,
    value: {
      ...members(doc),
      approvals: approvals.map((a) => members(a as Record<string, unknown>)),
    } as ApprovalsFile,
  };
}

/** keystore.json, the marker that secrets live in the OS keychain (core's keystoreStateSchema). */
export function readKeystoreState(value: unknown): Checked<{ backend: "keyring" }> {
  if (!isTable(value) || value.backend !== "keyring") return fail(["backend"], "not the keychain marker");
  return { ok: true, value: { ...members(value), backend: "keyring" } };
}

function isStringTable(value: unknown): value is Record<string, string> {
  return isTable(value) && Object.keys(members(value)).every((key) => typeof value[key] === "string");
}

/** The file store's decrypted body (core's fileStoreBodySchema). */
export function readFileStoreBody(value: unknown): Checked<{ entries: Record<string, string> }> {
  if (!isTable(value) || !isTable(value.entries))
    return fail(["entries"], "its decrypted content has no entries table");
  const { entries } = value;
  if (!isStringTable(entries)) return fail(["entries"], "an entry is not a string");
  return { ok: true, value: { ...members(value), entries: members(entries) } };
}

/** A vault's decrypted document (core's vaultDocumentSchema). */
export function readVaultDocument(value: unknown): Checked<VaultDocument> {
  if (!isTable(value)) return fail([], "not an object");
  const document: VaultDocument = {};
  for (const [environment, entries] of Object.entries(members(value))) {
    if (!isStringTable(entries)) return fail([environment], "not an object of strings");
    document[environment] = members(entries);
  }
  return { ok: true, value: document };
}

const isSafeInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value);

/** One entry of `sync/state.json` (core's syncEntrySchema): a `syncedAt` that is no date-time reads as absent. */
function readSyncEntry(value: unknown, at: number): Checked<SyncEntry> {
  if (!isTable(value)) return fail(["entries", at], "not an object");
  const { server, userId, vaultId, highestVersion, syncedVersion, syncedAt, org, highestKeyVersion } = value;
  if (typeof server !== "string" || typeof userId !== "string" || typeof vaultId !== "string")
    return fail(["entries", at], "no server, user or vault");
  if (org !== undefined && typeof org !== "string")
    return fail(["entries", at], "an organisation that is not a string");
  if (
    !isSafeInteger(highestVersion) ||
    !isSafeInteger(syncedVersion) ||
    (highestKeyVersion !== undefined && !isSafeInteger(highestKeyVersion))
  )
    return fail(["entries", at], "a version that is not an integer");
  const entry: SyncEntry = { ...members(value), server, userId, vaultId, highestVersion, syncedVersion };
  if (typeof syncedAt === "string" && parseIsoDateTime(syncedAt) !== null) entry.syncedAt = syncedAt;
  else delete entry.syncedAt;
  return { ok: true, value: entry };
}

/**
 * `sync/state.json` (core's syncStateSchema): what `run --offline` reads for a vault's last sync, and the sync
 * commands for their anti-rollback record.
 */
export function readSyncState(value: unknown): Checked<SyncState> {
  if (!isTable(value) || value.format !== 1) return fail(["format"], "not format 1");
  if (!Array.isArray(value.entries)) return fail(["entries"], "no entries array");
  const entries: SyncEntry[] = [];
  for (const [at, item] of (value.entries as unknown[]).entries()) {
    const entry = readSyncEntry(item, at);
    if (!entry.ok) return entry;
    entries.push(entry.value);
  }
  return { ok: true, value: { ...members(value), format: 1, entries } };
}

/** One entry of registries.json (core's loginRecordSchema). */
export function readLoginRecord(value: unknown): Checked<LoginRecord> {
  if (!isTable(value) || typeof value.url !== "string") return fail(["url"], "no URL");
  return { ok: true, value: { ...members(value), url: value.url } };
}

function providerToken(value: unknown, name: string): Checked<string> {
  if (typeof value !== "string" || value === "")
    return fail([name], `printed no ${name} (a non-empty string)`);
  if (!isProviderToken(value))
    return fail([name], `printed a ${name} that is too long or contains control characters`);
  return { ok: true, value };
}

function onlyMembers(record: Record<string, unknown>, allowed: readonly string[]): Checked<null> {
  const extra = Object.keys(record).filter((k) => !allowed.includes(k)).length;
  if (extra > 0) return fail([], `printed ${extra} member(s) besides ${allowed.join(", ")}`);
  return { ok: true, value: null };
}

/** The npm RFC draft's shape: `_authToken` and unix-seconds `expiresAt`; its basic-auth forms are refused. */
function readNpmRfcAnswer(record: Record<string, unknown>): Checked<ProviderAnswer> {
  const only = onlyMembers(record, ["_authToken", "_auth", "username", "_password", "expiresAt"]);
  if (!only.ok) return only;
  if ("_auth" in record || "username" in record || "_password" in record) {
    // Every hand-off (npm's _authToken, pnpm's tokenHelper, `latchkey token`) passes a bearer token.
    return fail(
      [],
      "printed basic-auth credentials (_auth, or username and _password); Latchkey passes registries bearer tokens only (_authToken)",
    );
  }
  const token = providerToken(record._authToken, "_authToken");
  if (!token.ok) return token;
  const { expiresAt } = record;
  if (expiresAt === undefined || expiresAt === null)
    return { ok: true, value: { token: token.value, expiresAt: null } };
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt) || expiresAt < 0)
    return fail(["expiresAt"], "printed an expiresAt that is not a unix time in seconds");
  if (expiresAt >= MAX_UNIX_SECONDS)
    return fail(["expiresAt"], "printed an expiresAt too large for unix seconds (milliseconds by mistake?)");
  return {
    ok: true,
    value: { token: token.value, expiresAt: new Date(Math.floor(expiresAt * 1000)).toISOString() },
  };
}

/**
 * A credential provider's answer, parsed from its JSON (core's providerAnswerSchema): Latchkey's
 * `{"token", "expiresAt": ISO-8601 | null}` or the npm RFC draft's `{"_authToken", "expiresAt": unix seconds}`.
 */
export function readProviderAnswer(value: unknown): Checked<ProviderAnswer> {
  if (!isTable(value)) return fail([], "printed JSON that is not an object");
  if (!("token" in value) && ["_authToken", "_auth", "username", "_password"].some((k) => k in value))
    return readNpmRfcAnswer(value);
  const only = onlyMembers(value, ["token", "expiresAt"]);
  if (!only.ok) return only;
  const token = providerToken(value.token, "token");
  if (!token.ok) return token;
  if (!("expiresAt" in value))
    return fail(["expiresAt"], "printed no expiresAt (an ISO-8601 date-time, or null)");
  const { expiresAt } = value;
  if (expiresAt !== null && (typeof expiresAt !== "string" || parseIsoDateTime(expiresAt) === null))
    return fail(
      ["expiresAt"],
      "printed an expiresAt that is neither null nor an ISO-8601 date-time with a time zone",
    );
  return { ok: true, value: { token: token.value, expiresAt } };
}
