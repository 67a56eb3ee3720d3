/**
 * Limits failed sign-in attempts (password or TOTP) per account and per client IP over a sliding hour, counted in
 * the database so the limits hold across every server process on it.
 *
 * An attempt is recorded BEFORE the credential is checked and counted together with every other attempt in the
 * window, in flight or failed; a success removes its row, a refusal removes its row (so hammering a limited
 * account does not extend its lockout), a failure keeps it. Concurrent attempts therefore see each other, and at
 * most ACCOUNT_LIMIT credentials of one account are ever checked per hour, whatever the number of processes.
 */
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";

/** Failed attempts per account per hour (issue 6: at most 100). */
export const ACCOUNT_LIMIT = 100;
/** Failed attempts per client IP per hour: room for a few busy accounts behind one NAT. */
export const IP_LIMIT = 300;
/** The window, in milliseconds. */
export const WINDOW_MS = 60 * 60 * 1000;

/** What an attempt needs. */
export interface AttemptDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  limits?: { account: number; ip: number };
}

/** An attempt allowed to check its credential; exactly one of its methods must be called. */
export interface Attempt {
  allowed: true;
  /** The credential was right: the attempt does not count. */
  succeeded(): Promise<void>;
  /** The credential was wrong: the attempt counts for an hour. */
  failed(): Promise<void>;
}

/** Starts an attempt for `account` (a normalized email) from `ip`, or says which limit refuses it. */
export async function beginAttempt(
  deps: AttemptDeps,
  account: string,
  ip: string,
): Promise<Attempt | { allowed: false; limit: "account" | "ip" }> {
  const limits = deps.limits ?? { account: ACCOUNT_LIMIT, ip: IP_LIMIT };
  const at = deps.now().getTime();
  const rows = [
    { id: deps.randomId(), subject: `account:${account}`, at },
    { id: deps.randomId(), subject: `ip:${ip}`, at },
  ];
  const ids = rows.map((r) => r.id);
  await deps.db.insertInto("auth_attempts").values(rows).execute();
  const counts = await deps.db
    .selectFrom("auth_attempts")
    .select(["subject", (eb) => eb.fn.countAll<number | string>().as("n")])
    .where(
      "subject",
      "in",
      rows.map((r) => r.subject),
    )
    .where("at", ">", at - WINDOW_MS)
    .groupBy("subject")
    .execute();
  const count = (subject: string): number => Number(counts.find((c) => c.subject === subject)?.n ?? 0);
  const remove = async (): Promise<void> => {
    await deps.db.deleteFrom("auth_attempts").where("id", "in", ids).execute();
  };
  if (count(rows[0]!.subject) > limits.account) {
    await remove();
    return { allowed: false, limit: "account" };
  }
  if (count(rows[1]!.subject) > limits.ip) {
    await remove();
    return { allowed: false, limit: "ip" };
  }
  return { allowed: true, succeeded: remove, failed: () => Promise.resolve() };
}

/** Removes attempts older than the window (called now and then; the counts ignore them anyway). */
export async function purgeAttempts(deps: Pick<AttemptDeps, "db" | "now">): Promise<void> {
  await deps.db
    .deleteFrom("auth_attempts")
    .where("at", "<=", deps.now().getTime() - WINDOW_MS)
    .execute();
}
