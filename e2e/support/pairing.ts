// Pairing on the real server for the e2e suites (docs/pairing.md): `latchkey pair` and `latchkey env pair` on a
// machine's own pseudo-terminal, the pairing API called directly with a machine's session (what a program holding
// that session could send, step by step), the server's audit rows read from its SQLite file, and the API clock of
// a server built with the test-only routes (packages/server/test/support/test-routes-main.ts).
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { expect } from "vitest";
import { ok } from "./machines.js";
import { KEYS, startOnTerminal, type Terminal } from "./pty.js";
import { CLI_BIN, latchkey, storedSession, type LatchkeyServer, type Machine } from "./latchkey-server.js";

/** Where `latchkey pair` shows the code (6 characters of the pairing alphabet: no 0, 1, I, L, O). */
export const PAIRING_CODE = /Pairing code: ([2-9A-HJKMNP-Z]{6})/;
/** The 6 digits `latchkey env pair` shows on the approving machine. */
export const APPROVER_DIGITS = /Number:\s+(\d{3} \d{3})/;
/** The 6 digits `latchkey pair` shows on the new machine. */
export const NEW_MACHINE_DIGITS = /same number:\s+(\d{3} \d{3})/;
/** The question `latchkey env pair` asks before it sends the wrapping key. */
export const APPROVE_QUESTION = "Send this machine's wrapping key";

// The pairing suites take `ok` from here as well.
export { ok };

/** `latchkey ARGS` on `m`, on a terminal of its own (200 columns: no prompt wraps). */
export function onTerminal(
  m: Machine,
  args: readonly string[],
  options: { cwd?: string; cli?: string; env?: Record<string, string | undefined> } = {},
): Terminal {
  return startOnTerminal(process.execPath, [options.cli ?? CLI_BIN, ...args], {
    env: { ...m.env, ...options.env },
    columns: 200,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
}

/** The first capture of `pattern` in what `terminal` has shown, or undefined. */
export function shown(terminal: Terminal, pattern: RegExp): string | undefined {
  return pattern.exec(terminal.output())?.[1];
}

/**
 * `latchkey pair --label LABEL` on `m`'s terminal, `password` typed at the step-up prompt, until the code shows.
 * `cli` runs another build of the CLI (the tests' own, with crash points).
 */
export async function startPairing(
  m: Machine,
  password: string,
  options: { label: string; cli?: string; env?: Record<string, string | undefined> },
): Promise<{ terminal: Terminal; code: string }> {
  const terminal = onTerminal(m, ["pair", "--label", options.label], options);
  await terminal.waitFor("Password");
  terminal.type(`${password}${KEYS.enter}`);
  await terminal.waitFor(PAIRING_CODE);
  return { terminal, code: shown(terminal, PAIRING_CODE)! };
}

/**
 * `latchkey -v env pair CODE --yes` on `m`, which must be refused with the catalogue code `errorCode`; resolves
 * with the HTTP status the join was answered with, read from the -v trace (`< STATUS TEXT (POST URL)`), since the
 * CLI never shows the server's own wording of a refusal.
 */
export async function refusedJoin(m: Machine, pairingCode: string, errorCode: string): Promise<number> {
  const result = await latchkey(m, ["-v", "env", "pair", pairingCode, "--yes"]);
  expect(result.stderr, result.stderr).toContain(`error ${errorCode}`);
  expect(result.code).not.toBe(0);
  const status = /^< (\d{3})\b.*\(POST \S+\/api\/v1\/pairings\/join\)$/m.exec(result.stderr)?.[1];
  expect(status, result.stderr).toBeDefined();
  return Number(status);
}

/** One pairing as `latchkey pair --list --json` shows it. */
export interface ListedPairing {
  pairingId: string;
  status: string;
  label: string;
}

/** The account's pairings of the last day, as `m` lists them. */
export async function listPairings(m: Machine): Promise<ListedPairing[]> {
  const listed = ok(await latchkey(m, ["pair", "--list", "--json"]));
  return (JSON.parse(listed.stdout) as { pairings: ListedPairing[] }).pairings;
}

/** The one pairing labelled `label` (throws when there is not exactly one). */
export async function pairingLabelled(m: Machine, label: string): Promise<ListedPairing> {
  const found = (await listPairings(m)).filter((p) => p.label === label);
  if (found.length !== 1) throw new Error(`${found.length} pairings labelled ${JSON.stringify(label)}`);
  return found[0]!;
}

/** `m`'s machine wrapping key (base64) or null; `pending` reads the key of an unfinished rotation or adoption. */
export async function wrappingKeyOf(m: Machine, pending = false): Promise<string | null> {
  const got = await latchkey(m, ["keystore", "get", pending ? "wrapping-key-pending" : "wrapping-key"]);
  return got.code === 0 ? got.stdout.trim() : null;
}

/** Asserts that `m` cannot read the vault of the project at `cwd`: it is not paired for it. */
export async function expectNotPaired(m: Machine, cwd: string): Promise<void> {
  const refused = await latchkey(m, ["env", "pull"], { cwd });
  expect(refused.code).not.toBe(0);
  expect(refused.stderr, refused.stderr).toContain("error LK_VAULT_NOT_PAIRED");
}

/** An answer of the API, its body parsed (null when empty). */
export interface ApiAnswer {
  status: number;
  body: Record<string, unknown> | null;
}

/**
 * A request to the server's `/api/v1` with `token` (a machine's access token, {@link accessToken}): a fresh
 * request id, the body as JSON, `stepUp` in X-Latchkey-Step-Up. The answer's signature is not checked here.
 */
export async function apiRequest(
  server: Pick<LatchkeyServer, "url">,
  token: string,
  request: { method: "GET" | "POST" | "PUT"; path: string; body?: unknown; stepUp?: string },
): Promise<ApiAnswer> {
  const response = await fetch(`${server.url}/api/v1${request.path}`, {
    method: request.method,
    headers: {
      authorization: `Bearer ${token}`,
      "x-latchkey-request-id": randomBytes(16).toString("base64url"),
      ...(request.body === undefined ? {} : { "content-type": "application/json" }),
      ...(request.stepUp === undefined ? {} : { "x-latchkey-step-up": request.stepUp }),
    },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text === "" ? null : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** The access token `m` holds for `server` (its stored session). */
export async function accessToken(m: Machine, server: Pick<LatchkeyServer, "url">): Promise<string> {
  const session = await storedSession(m, server);
  const token = session?.access_token;
  if (typeof token !== "string") throw new Error(`machine ${m.name} has no session for ${server.url}`);
  return token;
}

/** A step-up proof for `scope`, minted by `POST /api/v1/step-up` with the account's password. */
export async function mintProof(
  server: Pick<LatchkeyServer, "url">,
  token: string,
  scope: string,
  password: string,
): Promise<string> {
  const minted = await apiRequest(server, token, {
    method: "POST",
    path: "/step-up",
    body: { scope, password },
  });
  expect(minted.status, JSON.stringify(minted.body)).toBe(200);
  return String(minted.body?.proof);
}

/**
 * Sets the API clock of a server started from the test build (bundleServerWithTestRoutes) `offsetMs` ahead of
 * the real one; 0 puts it back.
 */
export async function setApiClock(server: Pick<LatchkeyServer, "url">, offsetMs: number): Promise<void> {
  const response = await fetch(`${server.url}/__test/clock`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ offsetMs }),
  });
  expect(response.status).toBe(200);
}

/** One row of the server's audit log. */
export interface AuditRow {
  action: string;
  userId: string | null;
  metadata: Record<string, unknown>;
  /** Above 1 only for a coalesced row. */
  count: number;
}

/** Reads the server's SQLite database (its data directory's latchkey.sqlite) while it runs. */
function readDatabase<T>(
  server: Pick<LatchkeyServer, "dataDir" | "databaseUrl">,
  read: (db: DatabaseSync) => T,
): T {
  if (server.databaseUrl !== undefined)
    throw new Error("the pairing suites read the audit log of SQLite only");
  const db = new DatabaseSync(join(server.dataDir, "latchkey.sqlite"), { readOnly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** The audit rows whose action is one of `actions`, oldest first. */
export function auditRows(
  server: Pick<LatchkeyServer, "dataDir" | "databaseUrl">,
  ...actions: string[]
): AuditRow[] {
  const among = actions.map(() => "?").join(", ");
  return readDatabase(server, (db) =>
    db
      .prepare(
        "SELECT action, user_id, metadata, count FROM audit_events " +
          `WHERE action IN (${among}) ORDER BY created_at, id`,
      )
      .all(...actions)
      .map((row) => ({
        action: String(row.action),
        userId: row.user_id === null ? null : String(row.user_id),
        metadata: JSON.parse(String(row.metadata)) as Record<string, unknown>,
        count: Number(row.count),
      })),
  );
}

/** The audit rows of one pairing (those whose metadata names it), by action. */
export function pairingAudit(
  server: Pick<LatchkeyServer, "dataDir" | "databaseUrl">,
  pairingId: string,
): string[] {
  return auditRows(
    server,
    "pairing.create",
    "pairing.join",
    "pairing.reveal",
    "pairing.reveal_mismatch",
    "pairing.approve",
    "pairing.consume",
    "pairing.revoke",
  )
    .filter((row) => row.metadata.pairingId === pairingId)
    .map((row) => row.action);
}

/** The id of the account `email` (as created by `admin create-user`). */
export function userIdOf(server: Pick<LatchkeyServer, "dataDir" | "databaseUrl">, email: string): string {
  return readDatabase(server, (db) => {
    const row = db.prepare("SELECT id FROM users WHERE email = ?").get(email.toLowerCase());
    if (row === undefined) throw new Error(`no account ${email}`);
    return String(row.id);
  });
}
