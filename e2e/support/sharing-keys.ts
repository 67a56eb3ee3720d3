// What the sharing-key suites share: `latchkey env rotate-sharing-key` on a terminal with its prompts answered,
// and the two sides of an account's sharing key — the server's registered key (its SQLite database) and the keys
// in a machine's keystore — named by fingerprint.
import { fromBase64, sharingKeyFingerprint, x25519PublicKey } from "@latchkey/core";
import { KEYS, startOnTerminal, type TerminalResult } from "./pty.js";
import { CLI_BIN, latchkey, type LatchkeyServer, type Machine } from "./latchkey-server.js";
import { readDatabase } from "./teams.js";

/** The word rotate-sharing-key asks for. */
export const ROTATE_WORD = "ROTATE";
/** The text prompt of that word. */
export const ROTATE_PROMPT = "Type ROTATE to replace your sharing key";

/** How a prompt-answering run should answer. */
export interface RotationAnswers {
  /** What to type at the word's prompt (default ROTATE). */
  word?: string;
  password: string;
  /** The CLI script (default the built CLI; a crash build for the crash suite). */
  cli?: string;
  /** Added to the machine's environment. */
  env?: Record<string, string>;
}

/** The ways out of a prompt wait: it showed, or the program ended first. */
function shown(wait: Promise<void>): Promise<boolean> {
  return wait.then(
    () => true,
    () => false,
  );
}

/**
 * Runs `latchkey env rotate-sharing-key` on `m`, on a terminal of its own, typing the word and the password when
 * (and only if) they are asked for; resolves with how it ended and everything it showed.
 */
export async function rotateOnTerminal(m: Machine, answers: RotationAnswers): Promise<TerminalResult> {
  const terminal = startOnTerminal(process.execPath, [answers.cli ?? CLI_BIN, "env", "rotate-sharing-key"], {
    env: { ...m.env, ...answers.env },
    columns: 200,
  });
  if (await shown(terminal.waitFor(ROTATE_PROMPT))) {
    terminal.type(`${answers.word ?? ROTATE_WORD}${KEYS.enter}`);
    if (await shown(terminal.waitFor("Password"))) terminal.type(`${answers.password}${KEYS.enter}`);
  }
  return terminal.exited;
}

/** The fingerprint of the account's registered sharing key, or null when it has none. */
export function serverKeyOf(server: Pick<LatchkeyServer, "dataDir">, userId: string): string | null {
  return readDatabase(server, (db) => {
    const row = db.prepare("SELECT fingerprint FROM user_public_keys WHERE user_id = ?").get(userId);
    return row === undefined ? null : String(row.fingerprint);
  });
}

/** The actions and metadata of the account's sharing-key audit rows, oldest first. */
export function sharingKeyAudit(
  server: Pick<LatchkeyServer, "dataDir">,
  userId: string,
): { action: string; metadata: Record<string, unknown> }[] {
  return readDatabase(server, (db) =>
    db
      .prepare(
        "SELECT action, metadata FROM audit_events WHERE user_id = ? AND action IN ('vault.public_key_set', 'vault.public_key_rotated') ORDER BY created_at, id",
      )
      .all(userId)
      .map((row) => ({
        action: String(row.action),
        metadata: JSON.parse(String(row.metadata)) as Record<string, unknown>,
      })),
  );
}

/** The fingerprint of the sharing key (or the pending one) in `m`'s keystore, or null when there is none. */
export async function localKeyOf(m: Machine, pending = false): Promise<string | null> {
  const got = await latchkey(m, ["keystore", "get", pending ? "sharing-key-pending" : "sharing-key"]);
  if (got.code !== 0) {
    // Only "no such entry" means there is none; anything else is a failure of the read, not an answer.
    if (got.stderr.includes("error LK_SECRET_NOT_FOUND")) return null;
    throw new Error(`keystore get exited ${got.code}: ${got.stderr}`);
  }
  return sharingKeyFingerprint(await x25519PublicKey(fromBase64(got.stdout.trim())));
}
