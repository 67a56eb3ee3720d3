/**
 * `latchkey-server admin backup` and `admin restore` (docs/operations.md, "Backups and restore drills").
 *
 * A backup is up to three files: FILE (the SQLite database as one file, or pg_dump's custom format),
 * FILE.manifest.json (what made it and what it holds) and, only with --include-secret, FILE.secrets.json (the
 * server secret and the escrow key). Every file is 0600 and appears whole or not at all: written to a private temp
 * file beside it, fsynced, then linked into place (or renamed with --force), never through a symbolic link.
 */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { chmod, copyFile, lstat, open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  BACKUP_FORMAT,
  backupManifestSchema,
  backupSecretsSchema,
  checkSchema,
  fromBase64,
  LatchkeyError,
  type BackupManifest,
  type BackupSecrets,
} from "@latchkey/core";
import { sql } from "kysely";
import { isPostgresUrl, openDatabase, SQLITE_FILE } from "./db/index.js";
import { executedMigrations, MIGRATION_TABLE, MIGRATIONS } from "./db/migrations.js";
import { ESCROW_KEY, ESCROW_KEY_ENV, ESCROW_KEY_FILE, ESCROW_KEY_META, escrowKeyFrom } from "./escrow-key.js";
import {
  createPrivateTemp,
  placePrivateFile,
  readPrivateValue,
  SECRET_ENV,
  SECRET_FILE,
  SERVER_SECRET,
  writePrivateFile,
} from "./secret.js";
import { prepareDataDir } from "./server.js";

export type { BackupManifest } from "@latchkey/core";

/** The files of the backup named FILE. */
export function backupFiles(file: string): { dump: string; manifest: string; secrets: string } {
  return { dump: file, manifest: `${file}.manifest.json`, secrets: `${file}.secrets.json` };
}

/** One run of an external program (pg_dump, pg_restore). */
export interface ToolRun {
  command: string;
  args: readonly string[];
  /** Its whole environment. */
  env: Record<string, string>;
}

/**
 * Runs a program to its end: its exit code and what it wrote on stderr. Rejects with an error whose code is
 * ENOENT when the program is not on PATH.
 */
export type RunTool = (run: ToolRun) => Promise<{ exitCode: number | null; stderr: string }>;

/** The real RunTool: node:child_process spawn, stdin and stdout ignored, stderr kept (the last 64 KiB). */
export const spawnTool: RunTool = (run) =>
  new Promise((resolve, reject) => {
    const child = spawn(run.command, [...run.args], { env: run.env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-65_536);
    });
    child.on("error", reject);
    child.on("close", (exitCode) => resolve({ exitCode, stderr }));
  });

/** What backup and restore touch. */
export interface BackupDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** The server's data directory (the SQLite file, the secret files). */
  dataDir: string;
  stderr: { write(text: string): unknown };
  randomBytes: (n: number) => Uint8Array;
  now: () => Date;
  runTool: RunTool;
}

/** Writes the backup `file`; see the module comment. */
export async function backup(
  file: string,
  options: { force: boolean; includeSecret: boolean },
  deps: BackupDeps,
): Promise<BackupManifest> {
  const files = backupFiles(file);
  if (!options.force) {
    for (const path of [files.dump, files.manifest, ...(options.includeSecret ? [files.secrets] : [])]) {
      if (await exists(path)) throw backupExists(path);
    }
  }
  // Read before anything is written, so a missing secret costs nothing.
  const secrets = options.includeSecret ? await readSecrets(deps) : null;
  const databaseUrl = deps.env.DATABASE_URL || undefined;
  const kind = isPostgresUrl(databaseUrl) ? "postgres" : "sqlite";

  const temp = await createPrivateTemp(files.dump, deps.randomBytes);
  let snapshot: Snapshot;
  try {
    snapshot = isPostgresUrl(databaseUrl)
      ? await dumpPostgres(databaseUrl, temp, deps)
      : await copySqlite(join(deps.dataDir, SQLITE_FILE), temp);
    if (secrets?.escrowKey != null && snapshot.escrowFingerprint !== null) {
      const { fingerprint } = await escrowKeyFrom(fromBase64(secrets.escrowKey));
      if (fingerprint !== snapshot.escrowFingerprint) {
        throw new LatchkeyError("LK_CONFIG_INVALID", {
          message: `The escrow key found here (${ESCROW_KEY_ENV} or ${ESCROW_KEY_FILE} in the data directory) is not the one this database records; nothing was written.`,
          hint: `Run the backup with the server's own ${ESCROW_KEY_ENV} and data directory (--data-dir), so that --include-secret copies the key the server uses.`,
        });
      }
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }

  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    serverVersion: await serverVersion(),
    migrations: snapshot.migrations,
    createdAt: deps.now().toISOString(),
    database: kind,
    includesSecrets: secrets !== null,
  };
  const write = { replace: options.force, randomBytes: deps.randomBytes };
  // The dump last: a backup file that exists always has its manifest (and secrets) beside it.
  try {
    if (secrets !== null && !(await writePrivateFile(files.secrets, json(secrets), write))) {
      throw backupExists(files.secrets);
    }
    if (!(await writePrivateFile(files.manifest, json(manifest), write))) throw backupExists(files.manifest);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  if (!(await placePrivateFile(temp, files.dump, options.force))) throw backupExists(files.dump);

  const what = kind === "sqlite" ? "SQLite database" : "PostgreSQL database (pg_dump custom format)";
  deps.stderr.write(
    `Wrote the ${what} to ${files.dump} (${manifest.migrations.length} migrations) and its manifest to ${files.manifest}, both mode 0600.\n` +
      (secrets !== null
        ? `Wrote the server secret${secrets.escrowKey === null ? "" : " and the escrow key"} to ${files.secrets} (mode 0600): with it, the backup opens every vault with CI pulls enabled and signs sessions — keep it apart from the backup, as safe as the secrets themselves.\n`
        : `The server secret and the escrow key are not in it. A restored server needs them: keep ${SECRET_ENV} and ${ESCROW_KEY_ENV} (or ${SECRET_FILE} and ${ESCROW_KEY_FILE} from the data directory) somewhere safe, or back up with --include-secret.\n`),
  );
  return manifest;
}

/** Restores the backup `file` into the server's database (and, when it has them, the secrets into its data directory). */
export async function restore(
  file: string,
  options: { force: boolean },
  deps: BackupDeps,
): Promise<BackupManifest> {
  const files = backupFiles(file);
  const manifest = await readManifest(files.manifest);
  const databaseUrl = deps.env.DATABASE_URL || undefined;
  const kind = isPostgresUrl(databaseUrl) ? "postgres" : "sqlite";
  if (manifest.database !== kind) {
    throw new LatchkeyError("LK_BACKUP_INVALID", {
      message: `${file} is a backup of a ${manifest.database === "sqlite" ? "SQLite" : "PostgreSQL"} database, and this server uses ${kind === "sqlite" ? "SQLite" : "PostgreSQL"}; nothing was restored.`,
      hint:
        kind === "sqlite"
          ? "Set DATABASE_URL to the PostgreSQL database to restore into."
          : "Unset DATABASE_URL to restore into the data directory's SQLite file (--data-dir).",
    });
  }
  refuseNewer(manifest.migrations, manifest.serverVersion);
  const secrets = manifest.includesSecrets ? await readSecretsFile(files.secrets) : null;

  if (isPostgresUrl(databaseUrl)) await restorePostgres(databaseUrl, file, options.force, deps);
  else await restoreSqlite(file, options.force, deps);

  if (secrets !== null) {
    await prepareDataDir(deps.dataDir);
    const written = await restoreSecrets(secrets, options.force, deps);
    deps.stderr.write(
      `Restored the ${manifest.database === "sqlite" ? "SQLite" : "PostgreSQL"} database from ${file}, and ${written.join(" and ")} into ${deps.dataDir} (mode 0600).\n`,
    );
  } else {
    deps.stderr.write(
      `Restored the ${manifest.database === "sqlite" ? "SQLite" : "PostgreSQL"} database from ${file}. The backup holds no server secret or escrow key: start the restored server with the old ${SECRET_ENV} and ${ESCROW_KEY_ENV} (or put the old ${SECRET_FILE} and ${ESCROW_KEY_FILE} in ${deps.dataDir}, mode 0600). With another secret every session ends; with another escrow key the server refuses to start, since the database records the old key's fingerprint.\n`,
    );
  }
  return manifest;
}

/** What a backup captured, read from the copy itself. */
interface Snapshot {
  migrations: string[];
  /** The escrow key's fingerprint the database records (server_meta), or null when none is. */
  escrowFingerprint: string | null;
}

/**
 * VACUUM INTO rather than SQLite's online backup API (node:sqlite's backup()): VACUUM INTO reads the whole database
 * in one read transaction, so the copy is one consistent point in time; under WAL the server's writers carry on
 * meanwhile. The backup API copies a few pages per step and starts over whenever another connection writes
 * between steps — with servers pushing in other processes it may never finish. The copy is also compact and has
 * no -wal file to carry along.
 */
async function copySqlite(source: string, temp: string): Promise<Snapshot> {
  if (!(await exists(source))) throw noDatabase(source);
  // Opened plainly (no WAL switch, no file made): this is a reader of the server's file, nothing more.
  const db = new DatabaseSync(source);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.prepare("VACUUM INTO ?").run(temp);
  } finally {
    db.close();
  }
  // VACUUM INTO does not fsync what it wrote.
  await syncFile(temp);
  const copy = new DatabaseSync(temp, { readOnly: true });
  try {
    const snapshot = sqliteSnapshot(copy);
    if (snapshot.migrations.length === 0) throw noDatabase(source);
    return snapshot;
  } finally {
    copy.close();
  }
}

function sqliteSnapshot(db: DatabaseSync): Snapshot {
  const hasTable = (name: string): boolean =>
    db.prepare("select 1 from sqlite_master where type = 'table' and name = ?").get(name) !== undefined;
  const migrations = hasTable(MIGRATION_TABLE)
    ? (db.prepare(`select name from ${MIGRATION_TABLE} order by name`).all() as Array<{ name: string }>).map(
        (r) => r.name,
      )
    : [];
  const row = hasTable("server_meta")
    ? (db.prepare("select value from server_meta where key = ?").get(ESCROW_KEY_META) as
        { value: string } | undefined)
    : undefined;
  return { migrations, escrowFingerprint: row?.value ?? null };
}

async function dumpPostgres(url: string, temp: string, deps: BackupDeps): Promise<Snapshot> {
  const database = await openDatabase({ dataDir: deps.dataDir, databaseUrl: url });
  let snapshot: Snapshot;
  try {
    const migrations = await executedMigrations(database.db);
    if (migrations.length === 0) throw noDatabase("DATABASE_URL");
    const row = await database.db
      .selectFrom("server_meta")
      .select("value")
      .where("key", "=", ESCROW_KEY_META)
      .executeTakeFirst();
    snapshot = { migrations, escrowFingerprint: row?.value ?? null };
  } finally {
    await database.close();
  }
  // pg_dump writes into the private temp file made for it (it opens an existing file without changing its mode).
  await runPgTool(deps, url, "pg_dump", [
    "--format=custom",
    "--no-owner",
    "--no-privileges",
    `--file=${temp}`,
  ]);
  return snapshot;
}

async function restoreSqlite(file: string, force: boolean, deps: BackupDeps): Promise<void> {
  await prepareDataDir(deps.dataDir);
  const target = join(deps.dataDir, SQLITE_FILE);
  // The copy is checked where it will live (same file system, so the final rename is atomic), before anything
  // of the target is touched.
  const temp = await createPrivateTemp(target, deps.randomBytes);
  try {
    // copyFile gives the copy the backup file's mode; the data directory is 0700, and it is 0600 again at once.
    await copyFile(file, temp);
    await chmod(temp, 0o600);
    await syncFile(temp);
    const copy = new DatabaseSync(temp);
    try {
      let verdict: string;
      let migrations: string[];
      try {
        const check = copy.prepare("PRAGMA integrity_check").all() as Array<{ integrity_check: string }>;
        verdict = check.map((row) => row.integrity_check).join("; ");
        migrations = sqliteSnapshot(copy).migrations;
      } catch (err) {
        // SQLite refuses some damage outright (SQLITE_CORRUPT, SQLITE_NOTADB) instead of reporting it.
        verdict = err instanceof Error ? err.message : String(err);
        migrations = [];
      }
      if (verdict !== "ok") {
        throw new LatchkeyError("LK_BACKUP_INVALID", {
          message: `${file} fails SQLite's integrity check (${verdict.slice(0, 200)}); nothing was restored.`,
          hint: "Restore an earlier backup; keep this one for inspection.",
        });
      }
      if (migrations.length === 0) {
        throw new LatchkeyError("LK_BACKUP_INVALID", {
          message: `${file} holds no Latchkey database (no migration has run on it); nothing was restored.`,
        });
      }
      // The file, not the manifest, is what the server will run on.
      refuseNewer(migrations, "a newer release");
    } finally {
      copy.close();
    }
    if (await exists(target)) await clearTarget(target, force);
    await placePrivateFile(temp, target, true);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Makes way for the restored file: refuses a database with any table in it unless `force`, and one that another
 * process has open in any case. Closing the last connection checkpoints the WAL into the file and deletes it; a
 * -wal still there after our close means another connection (a running server) holds the database. Any -wal or
 * -shm left is removed before the new file moves in: SQLite would otherwise replay the old WAL onto it.
 */
async function clearTarget(target: string, force: boolean): Promise<void> {
  const db = new DatabaseSync(target);
  let tables: number;
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    tables = (db.prepare("select count(*) as n from sqlite_master").get() as { n: number }).n;
  } finally {
    db.close();
  }
  if (tables > 0 && !force) throw notEmpty(`${target} already holds a database`);
  if (await exists(`${target}-wal`)) {
    throw new LatchkeyError("LK_RESTORE_IN_USE", {
      message: `${target} is open in another process (its -wal file stays after this process closed it); nothing was restored.`,
    });
  }
  for (const extra of [`${target}-wal`, `${target}-shm`, `${target}-journal`]) {
    await unlink(extra).catch((err: unknown) => {
      if (errnoCode(err) !== "ENOENT") throw err;
    });
  }
}

async function restorePostgres(url: string, file: string, force: boolean, deps: BackupDeps): Promise<void> {
  const database = await openDatabase({ dataDir: deps.dataDir, databaseUrl: url });
  try {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
      where table_schema = current_schema()`.execute(database.db);
    if ((rows[0]?.n ?? 0) > 0 && !force) throw notEmpty("The database DATABASE_URL names already has tables");
  } finally {
    await database.close();
  }
  // One transaction: a restore that fails half-way leaves the database as it was.
  await runPgTool(deps, url, "pg_restore", [
    "--no-owner",
    "--no-privileges",
    "--single-transaction",
    "--exit-on-error",
    ...(force ? ["--clean", "--if-exists"] : []),
    `--dbname=${pgConnection(url).PGDATABASE}`,
    file,
  ]);
}

/** Runs a PostgreSQL client tool on the database `url` names; the password travels in its environment, never argv. */
async function runPgTool(deps: BackupDeps, url: string, command: string, args: string[]): Promise<void> {
  const connection = pgConnection(url);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(deps.env)) if (value !== undefined) env[name] = value;
  delete env.DATABASE_URL;
  Object.assign(env, connection);
  let result;
  try {
    result = await deps.runTool({ command, args, env });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") {
      throw new LatchkeyError("LK_BACKUP_TOOL_FAILED", {
        message: `${command} is not on PATH; nothing was ${command === "pg_dump" ? "backed up" : "restored"}.`,
        hint: `Install PostgreSQL's client tools (e.g. the postgresql-client package) no older than the server, or run it by hand as docs/operations.md ("Backups and restore drills") shows.`,
        cause: err,
      });
    }
    throw err;
  }
  if (result.exitCode !== 0) {
    const password = connection.PGPASSWORD;
    let last = result.stderr.trim().split("\n").at(-1) ?? "";
    if (password) last = last.split(password).join("***");
    throw new LatchkeyError("LK_BACKUP_TOOL_FAILED", {
      message: `${command} failed (exit code ${String(result.exitCode)}): ${last}`,
      hint: "Check that DATABASE_URL's database is reachable and that pg_dump/pg_restore are no older than the PostgreSQL server.",
    });
  }
}

/** libpq's environment for `url`: how pg_dump and pg_restore find the database without the URL in argv. */
function pgConnection(url: string): Record<string, string> & { PGDATABASE: string } {
  const parsed = new URL(url);
  const env: Record<string, string> & { PGDATABASE: string } = {
    PGDATABASE: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || decodeURIComponent(parsed.username),
  };
  const host = parsed.searchParams.get("host") ?? parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host) env.PGHOST = decodeURIComponent(host);
  if (parsed.port) env.PGPORT = parsed.port;
  if (parsed.username) env.PGUSER = decodeURIComponent(parsed.username);
  if (parsed.password) env.PGPASSWORD = decodeURIComponent(parsed.password);
  for (const [param, name] of [
    ["sslmode", "PGSSLMODE"],
    ["sslrootcert", "PGSSLROOTCERT"],
    ["sslcert", "PGSSLCERT"],
    ["sslkey", "PGSSLKEY"],
  ] as const) {
    const value = parsed.searchParams.get(param);
    if (value !== null) env[name] = value;
  }
  return env;
}

async function readSecrets(deps: BackupDeps): Promise<BackupSecrets> {
  const serverSecret = await readPrivateValue(SERVER_SECRET, deps);
  if (serverSecret === null) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `--include-secret found no server secret: ${SECRET_ENV} is unset and ${join(deps.dataDir, SECRET_FILE)} does not exist; nothing was written.`,
      hint: `Run the backup with the server's own data directory (--data-dir) or its ${SECRET_ENV}.`,
    });
  }
  return { serverSecret, escrowKey: await readPrivateValue(ESCROW_KEY, deps) };
}

async function restoreSecrets(secrets: BackupSecrets, force: boolean, deps: BackupDeps): Promise<string[]> {
  const entries: Array<[string, string, string]> = [[SECRET_FILE, secrets.serverSecret, "the server secret"]];
  if (secrets.escrowKey !== null) entries.push([ESCROW_KEY_FILE, secrets.escrowKey, "the escrow key"]);
  const written: string[] = [];
  for (const [name, value, what] of entries) {
    const path = join(deps.dataDir, name);
    let current: string | null = null;
    try {
      current = (await readFile(path, "utf8")).trim();
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
    if (current === value) continue;
    if (current !== null && !force) {
      throw notEmpty(`${path} holds another value than the backup's ${what} (the database was restored)`);
    }
    await writePrivateFile(path, `${value}\n`, { replace: true, randomBytes: deps.randomBytes });
    written.push(what);
  }
  return written.length === 0 ? ["the same secrets as already there"] : written;
}

async function readSecretsFile(path: string): Promise<BackupSecrets> {
  const checked = checkSchema(backupSecretsSchema, await readJson(path, "its secrets file"));
  if (!checked.ok)
    throw invalid(
      `${path} is not a secrets file admin backup wrote (${checked.path.join(".") || "top"}: ${checked.message})`,
    );
  return checked.value;
}

async function readManifest(path: string): Promise<BackupManifest> {
  const checked = checkSchema(backupManifestSchema, await readJson(path, "its manifest"));
  if (!checked.ok) {
    throw invalid(
      `${path} is not a manifest admin backup wrote (${checked.path.join(".") || "top"}: ${checked.message}; this server reads format ${BACKUP_FORMAT})`,
    );
  }
  return checked.value;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw invalid(`could not read ${what} ${path} (${errnoCode(err) ?? "error"})`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed;
  } catch {
    throw invalid(`${what} ${path} is not JSON`);
  }
}

/** Refuses a database that has run migrations this server does not know: made by a newer release. */
function refuseNewer(migrations: readonly string[], madeBy: string): void {
  const unknown = migrations.filter((name) => !(name in MIGRATIONS));
  if (unknown.length > 0) {
    throw new LatchkeyError("LK_BACKUP_TOO_NEW", {
      message: `The backup's database has run migrations this server does not know (${unknown.join(", ")}): it was made by ${madeBy === "a newer release" ? madeBy : `latchkey-server ${madeBy}`}; nothing was restored.`,
    });
  }
}

async function serverVersion(): Promise<string> {
  // packages/server/package.json: one level up from src/ in the sources and from dist/ in the build.
  try {
    const text = await readFile(new URL("../package.json", import.meta.url), "utf8");
    const parsed: unknown = JSON.parse(text);
    const version =
      typeof parsed === "object" && parsed !== null && "version" in parsed ? parsed.version : null;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return false;
    throw err;
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function backupExists(path: string): LatchkeyError {
  return new LatchkeyError("LK_BACKUP_EXISTS", {
    message: `${path} already exists; nothing was written.`,
    details: { path },
  });
}

function notEmpty(what: string): LatchkeyError {
  return new LatchkeyError("LK_RESTORE_NOT_EMPTY", { message: `${what}; nothing was restored.` });
}

function invalid(why: string): LatchkeyError {
  return new LatchkeyError("LK_BACKUP_INVALID", {
    message: `Not a usable backup: ${why}; nothing was restored.`,
  });
}

function noDatabase(where: string): LatchkeyError {
  return new LatchkeyError("LK_CONFIG_INVALID", {
    message: `There is no Latchkey database at ${where} (no migration has run there); nothing was written.`,
    hint: "Run the backup with the server's own --data-dir and DATABASE_URL.",
  });
}
