/**
 * The rules of accounts: normalized emails, the password policy, Argon2id password hashes (@node-rs/argon2, whose
 * default algorithm is Argon2id) and TOTP enrollment (otpauth, RFC 6238) with the secret sealed at rest under a
 * key derived from the server secret. The SQL is data.ts's; the audit rows go through audit/data.ts.
 */
import { randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import { LatchkeyError } from "@latchkey/core";
import type { Kysely } from "kysely";
import { Secret, TOTP } from "otpauth";
import { insertAudit } from "../audit/data.js";
import type { Database } from "../db/schema.js";
import { normalizeEmail } from "../email.js";
import * as data from "./data.js";
import type { Account } from "./data.js";
import type { IdentityKeys } from "./keys.js";

/** Longest password accepted (Argon2 takes any length; this bounds the work one request can cause). */
export const MAX_PASSWORD_LENGTH = 1024;
/** TOTP parameters: the defaults every authenticator app understands. */
const TOTP_PERIOD = 30;
const TOTP_DIGITS = 6;

export { normalizeEmail };

/**
 * Shortest password a new account may have, in characters (code points). Twelve rules out the short words and
 * patterns guessed first, and a passphrase of a few words passes it easily. Sign-in checks no minimum: accounts
 * made before it keep working.
 */
export const MIN_PASSWORD_LENGTH = 12;

function checkPassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH)
    throw new LatchkeyError("LK_PASSWORD_INVALID");
}

/** Password hashing and checking; injected so that tests can see which work a sign-in does. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** True when `password` matches `hash`; throws on a malformed hash. */
  verify(hash: string, password: string): Promise<boolean>;
}

/** Argon2id with @node-rs/argon2's default parameters. */
export const argon2Hasher: PasswordHasher = {
  hash: (password) => hash(password),
  verify: (stored, password) => verify(stored, password),
};

/** Hashes a password (Argon2id unless another hasher is given). */
export function hashPassword(password: string, hasher: PasswordHasher = argon2Hasher): Promise<string> {
  checkPassword(password);
  return hasher.hash(password);
}

const decoys = new WeakMap<PasswordHasher, Promise<string>>();

/** A hash of a random password nobody knows, made once per hasher with the parameters of real hashes. */
function decoyHash(hasher: PasswordHasher): Promise<string> {
  let decoy = decoys.get(hasher);
  if (decoy === undefined) {
    decoy = hasher.hash(randomBytes(32).toString("base64url"));
    decoys.set(hasher, decoy);
    // A failed hash is not kept: the next sign-in tries again.
    decoy.catch(() => decoys.delete(hasher));
  }
  return decoy;
}

/** Makes the decoy now, so that the first sign-in of an unknown email does not take longer than the others. */
export function prepareDecoy(hasher: PasswordHasher): void {
  void decoyHash(hasher);
}

/**
 * True when `password` matches the account's hash. Without an account, or for one without a password, the
 * password is checked against a decoy hash made by the same hasher and the answer is false: every sign-in does
 * the same work, so how long a wrong password takes does not tell whether the email has an account.
 */
export async function verifyPassword(
  account: Account | undefined,
  password: string,
  hasher: PasswordHasher = argon2Hasher,
): Promise<boolean> {
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) return false;
  const stored = account?.password_hash ?? null;
  try {
    const matches = await hasher.verify(stored ?? (await decoyHash(hasher)), password);
    return matches && stored !== null;
  } catch {
    return false;
  }
}

/** What creating an account needs. */
export interface AccountDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** Default Argon2id. */
  hasher?: PasswordHasher;
}

/** Creates an account; throws LK_EMAIL_INVALID, LK_PASSWORD_INVALID or LK_ACCOUNT_EXISTS. Writes an audit row. */
export async function createAccount(
  deps: AccountDeps,
  input: { email: string; password: string; via: "admin" | "signup" },
): Promise<{ userId: string; email: string }> {
  const email = normalizeEmail(input.email);
  const passwordHash = await hashPassword(input.password, deps.hasher);
  const id = deps.randomId();
  const at = deps.now().toISOString();
  try {
    await deps.db.transaction().execute(async (trx) => {
      if (await data.emailTaken(trx, email)) throw new LatchkeyError("LK_ACCOUNT_EXISTS");
      await data.insertAccount(trx, { id, email, createdAt: at, passwordHash });
      await insertAudit(trx, {
        id: deps.randomId(),
        userId: id,
        action: "account.create",
        vaultId: null,
        version: null,
        createdAt: at,
        metadata: { via: input.via },
      });
    });
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    // Two creations racing: the unique index on email refuses the second.
    if (await data.emailTaken(deps.db, email)) throw new LatchkeyError("LK_ACCOUNT_EXISTS");
    throw err;
  }
  return { userId: id, email };
}

/**
 * Enrolls (or re-enrolls) TOTP for an account: a new random secret, sealed at rest, and the otpauth:// URI the
 * user's authenticator app takes — the only time the secret leaves the server. Throws LK_ACCOUNT_NOT_FOUND.
 */
export async function enrollTotp(
  deps: AccountDeps & { keys: IdentityKeys; issuerName: string },
  emailInput: string,
): Promise<{ uri: string; secret: string }> {
  const email = normalizeEmail(emailInput);
  const account = await data.findAccountByEmail(deps.db, email);
  if (!account) throw new LatchkeyError("LK_ACCOUNT_NOT_FOUND");
  const secret = new Secret({ size: 20 }).base32;
  const at = deps.now().toISOString();
  await deps.db.transaction().execute(async (trx) => {
    await data.setTotpSecret(trx, account.id, deps.keys.sealTotp(account.id, secret));
    await insertAudit(trx, {
      id: deps.randomId(),
      userId: account.id,
      action: "account.totp_enrolled",
      vaultId: null,
      version: null,
      createdAt: at,
      metadata: {},
    });
  });
  return { uri: totpFor(deps.issuerName, email, secret).toString(), secret };
}

function totpFor(issuer: string, label: string, secret: string): TOTP {
  return new TOTP({
    issuer,
    label,
    secret: Secret.fromBase32(secret),
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD,
  });
}

/**
 * Checks a TOTP code for an enrolled account (one step of clock drift either way) and records the step it
 * matched, so the same code cannot be used twice. False for a wrong, reused or malformed code.
 */
export async function verifyTotp(
  deps: { db: Kysely<Database>; keys: IdentityKeys; now: () => Date },
  account: Account,
  code: string,
): Promise<boolean> {
  if (account.totp_enabled !== 1 || account.totp_secret === null) return false;
  const token = code.replace(/\s+/g, "");
  if (!/^\d{6}$/.test(token)) return false;
  const secret = deps.keys.openTotp(account.id, account.totp_secret);
  const timestamp = deps.now().getTime();
  const delta = totpFor("latchkey", account.email, secret).validate({ token, timestamp, window: 1 });
  if (delta === null) return false;
  const step = Math.floor(timestamp / 1000 / TOTP_PERIOD) + delta;
  // Of two requests with the same code, one moves the last step and the other finds it moved.
  return data.advanceTotpStep(deps.db, account.id, step);
}

/** The current TOTP code for a base32 secret (tests and the scripted browser use the same algorithm). */
export function totpCode(secret: string, at: Date): string {
  return totpFor("latchkey", "x", secret).generate({ timestamp: at.getTime() });
}
