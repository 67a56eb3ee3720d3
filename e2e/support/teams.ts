// Organisations with the real server process and the built CLI (docs/teams.md): one machine per user, each
// signed in to its own account; the commands that ask for a password (a sharing key's first registration, the
// step-up of `org add`, `org set-role`, `org remove` and `org delete`) or a typed word (`org delete`) run on a
// pseudo-terminal of their own, with the prompt answered; the rest run as a script would. The server's SQLite
// file is read for what the CLI never shows: the organisation copies' blobs and wrapped keys, audit rows, the
// outbox.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { expect } from "vitest";
import {
  fromBase64,
  openEnvelope,
  orgVaultKeyContext,
  syncBlobContext,
  unwrapKeyFromSender,
  utf8Decode,
  x25519PublicKey,
} from "@latchkey/core";
import { KEYS, startOnTerminal, type TerminalResult } from "./pty.js";
import {
  CLI_BIN,
  createUser,
  latchkey,
  loginCli,
  newMachine,
  type Credentials,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./latchkey-server.js";

/** A user of the suite: their account and their machine. */
export interface Member extends Credentials {
  readonly m: Machine;
}

/** Asserts that a command succeeded, showing its output otherwise; returns it. */
export function ok(result: ProcessResult): ProcessResult {
  expect(result.code, `exit ${result.code ?? result.signal}: ${result.stderr}`).toBe(0);
  return result;
}

/** Asserts that a command failed with `code` (on stderr); returns it. */
export function refused(result: ProcessResult, code: string): ProcessResult {
  expect(result.code, `expected ${code}, got exit 0: ${result.stdout}`).not.toBe(0);
  expect(result.stderr).toContain(`error ${code}`);
  return result;
}

/** Creates the account of `email` on `server` and signs a new machine of it in. */
export async function newMember(
  server: LatchkeyServer,
  root: string,
  name: string,
  email: string,
): Promise<Member> {
  const password = `${name} password for the teams e2e`;
  await createUser(server, email, password);
  const m = await newMachine(root, name);
  ok(await loginCli(m, server, { email, password }));
  return { email, password, m };
}

/** Options of {@link onTerminal}. */
export interface TerminalRun {
  cwd?: string;
  /** Typed at a prompt that asks for a line of text (`org delete`'s slug). */
  typed?: string;
}

/**
 * `latchkey ARGS` as `member` on a terminal of their own: their password typed at the password prompt and
 * `typed` at a text prompt, each once, if they are asked.
 */
export async function onTerminal(
  member: Member,
  args: readonly string[],
  options: TerminalRun = {},
): Promise<TerminalResult> {
  const terminal = startOnTerminal(process.execPath, [CLI_BIN, ...args], {
    env: member.m.env,
    columns: 200,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const answer = async (prompt: string | RegExp, keys: string): Promise<void> => {
    try {
      await terminal.waitFor(prompt);
    } catch {
      return; // it ended without asking
    }
    terminal.type(`${keys}${KEYS.enter}`);
  };
  await Promise.all([
    answer("Password", member.password),
    ...(options.typed === undefined ? [] : [answer(/Type \S+ to delete it/, options.typed)]),
  ]);
  return terminal.exited;
}

/**
 * `latchkey org add ORG EMAIL [--role ROLE]` as `by`, on their terminal (the add's step-up asks for the
 * password); asserts that it succeeded.
 */
export async function addMember(by: Member, org: string, email: string, role?: string): Promise<void> {
  const added = await onTerminal(by, [
    "org",
    "add",
    org,
    email,
    ...(role === undefined ? [] : ["--role", role]),
  ]);
  expect(added.code, added.output).toBe(0);
}

/** Registers `member`'s sharing key (their first organisation command, on a terminal). */
export async function registerSharingKey(member: Member): Promise<void> {
  const listed = await onTerminal(member, ["org", "list"]);
  expect(listed.code, listed.output).toBe(0);
  expect(listed.output).toContain("registering this machine's");
}

/**
 * `by` pins `member`'s sharing key for `org` (`latchkey org trust`) with the fingerprint `member`'s own machine
 * shows (`org members --json`): the out-of-band comparison, done by the test.
 */
export async function trustMemberKey(by: Member, member: Member, org: string): Promise<string> {
  const listed = await latchkey(member.m, ["org", "members", org, "--json"]);
  expect(listed.code, listed.stderr).toBe(0);
  const fingerprint = (JSON.parse(listed.stdout) as { thisMachineFingerprint: string })
    .thisMachineFingerprint;
  const trusted = await latchkey(by.m, ["org", "trust", org, member.email, fingerprint]);
  expect(trusted.code, trusted.stderr).toBe(0);
  return fingerprint;
}

/** The JSON document a `--json` command printed among a terminal's other lines (prompts, status). */
export function jsonOnTerminal<T>(output: string): T {
  const lines = output.split("\n");
  const start = lines.indexOf("{");
  const end = lines.lastIndexOf("}");
  if (start === -1 || end < start) throw new Error(`no JSON document in:\n${output}`);
  return JSON.parse(lines.slice(start, end + 1).join("\n")) as T;
}

/**
 * A checkout `dir` under `root` of the project `name` (its package.json names it: the vault's name on the
 * server), with `latchkey.json` when given.
 */
export async function projectDir(
  root: string,
  dir: string,
  name: string,
  latchkeyJson?: string,
): Promise<string> {
  const path = join(root, "projects", dir);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, "package.json"), JSON.stringify({ name, private: true }));
  if (latchkeyJson !== undefined) await writeFile(join(path, "latchkey.json"), latchkeyJson);
  return path;
}

/** The project's latchkey.json, for another member's checkout of it. */
export function latchkeyJsonOf(dir: string): Promise<string> {
  return readFile(join(dir, "latchkey.json"), "utf8");
}

/** The default environment of `member`'s vault in `dir`, as JSON. */
export async function secretsOf(member: Member, dir: string, environment = "default"): Promise<unknown> {
  const exported = ok(
    await latchkey(member.m, ["env", "export", "-e", environment, "--format", "json"], { cwd: dir }),
  );
  return JSON.parse(exported.stdout);
}

/** Reads the server's SQLite database while it runs. */
export function readDatabase<T>(server: Pick<LatchkeyServer, "dataDir">, read: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(join(server.dataDir, "latchkey.sqlite"), { readOnly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** The account id of `email`. */
export function userIdOf(server: Pick<LatchkeyServer, "dataDir">, email: string): string {
  return readDatabase(server, (db) =>
    String(db.prepare("SELECT id FROM users WHERE email = ?").get(email)!.id),
  );
}

/** The organisation copy of `vaultId` as the server holds it: version and blob. */
export function orgCopyOf(
  server: Pick<LatchkeyServer, "dataDir">,
  slug: string,
  vaultId: string,
): { version: number; encryptedBlob: string } {
  return readDatabase(server, (db) => {
    const row = db
      .prepare(
        "SELECT h.version, h.encrypted_blob FROM org_vault_heads h JOIN orgs o ON o.id = h.org_id WHERE o.slug = ? AND h.vault_id = ?",
      )
      .get(slug, vaultId);
    if (row === undefined) throw new Error(`no copy of ${vaultId} in ${slug}`);
    return { version: Number(row.version), encryptedBlob: String(row.encrypted_blob) };
  });
}

/** A member's wrapped key of an organisation copy, with the sharer's key and the key version it was wrapped for. */
export interface OrgKeyRow {
  readonly wrappedKey: string;
  /** The sharer's public key (base64), as the server recorded it. */
  readonly wrappedByKey: string;
  readonly keyVersion: number;
}

/** The key the server holds for `userId` of `slug`'s copy of `vaultId`, or null. */
export function orgKeyOf(
  server: Pick<LatchkeyServer, "dataDir">,
  slug: string,
  vaultId: string,
  userId: string,
): OrgKeyRow | null {
  return readDatabase(server, (db) => {
    const row = db
      .prepare(
        "SELECT k.wrapped_key, k.wrapped_by_key, k.key_version FROM vault_org_keys k JOIN orgs o ON o.id = k.org_id WHERE o.slug = ? AND k.vault_id = ? AND k.user_id = ?",
      )
      .get(slug, vaultId, userId);
    return row === undefined
      ? null
      : {
          wrappedKey: String(row.wrapped_key),
          wrappedByKey: String(row.wrapped_by_key),
          keyVersion: Number(row.key_version),
        };
  });
}

/** The wrapped key the server holds for `userId` of `slug`'s copy of `vaultId`, or null. */
export function wrappedKeyOf(
  server: Pick<LatchkeyServer, "dataDir">,
  slug: string,
  vaultId: string,
  userId: string,
): string | null {
  return orgKeyOf(server, slug, vaultId, userId)?.wrappedKey ?? null;
}

/** `member`'s sharing key pair, read from their machine's keystore. */
export async function sharingKeyPair(
  member: Member,
): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
  const got = ok(await latchkey(member.m, ["keystore", "get", "sharing-key"]));
  const privateKey = fromBase64(got.stdout.trim());
  return { privateKey, publicKey: await x25519PublicKey(privateKey) };
}

/**
 * Opens a member's wrapped key of `slug`'s copy of `vaultId` with their key pair, from the sharer's key the row
 * names, as the member's CLI does: what a member (or a removed one) holds.
 */
export function unwrapFor(
  row: OrgKeyRow,
  pair: { privateKey: Uint8Array; publicKey: Uint8Array },
  vaultId: string,
  slug: string,
): Promise<Uint8Array> {
  return unwrapKeyFromSender(
    row.wrappedKey,
    pair.privateKey,
    pair.publicKey,
    fromBase64(row.wrappedByKey),
    orgVaultKeyContext(vaultId, slug, row.keyVersion),
  );
}

/**
 * Decrypts an organisation copy's blob with `vaultKey` as version `version` of `slug`'s copy; throws when the key
 * does not open it.
 */
export async function openCopy(
  vaultKey: Uint8Array,
  copy: { version: number; encryptedBlob: string },
  vaultId: string,
  slug: string,
): Promise<Record<string, Record<string, string>>> {
  const plaintext = await openEnvelope(
    vaultKey,
    fromBase64(copy.encryptedBlob),
    syncBlobContext(vaultId, copy.version, slug),
  );
  return JSON.parse(utf8Decode(plaintext)) as Record<string, Record<string, string>>;
}
