/**
 * Limits failed sign-in attempts (password or TOTP), counted in the database so the limits hold across every
 * server process on it. Failures are counted per account and address first, so somebody guessing from one
 * place slows down that place and not the account's owner elsewhere:
 *
 * - One account from one address: after `pair.free` failures in the window, each attempt waits a delay after
 *   the pair's last failure that doubles with every further failure, up to `pair.maxDelayMs`.
 * - One account from addresses it has not signed in from ("new" addresses, the whole internet): the same
 *   growing delay after `account.free` such failures, counted over all of them, and at most
 *   `account.newAddresses` of them in the window.
 * - One account from every address: at most `account.ceiling` failures in the window (100: the bound on
 *   guesses). New addresses can take only `account.newAddresses` of them, so an address the account has signed
 *   in from (sign_in_addresses, remembered for `knownForMs`) always has room left, however busy an attacker is
 *   elsewhere: its owner faces only its own pair's delay.
 * - One address over accounts it is not known to: at most `ip` failures in the window (one address trying many
 *   accounts); an account that has signed in from the address is exempt, so a busy shared address does not lock
 *   out the people who sign in from it.
 *
 * An attempt is recorded BEFORE the credential is checked and counted together with every other attempt in the
 * window, in flight or failed; a success removes its row, a refusal removes its row (so hammering a limited
 * account does not extend its delay), a failure keeps it. Concurrent attempts therefore see each other, and no
 * limit lets more credentials be checked than it allows, whatever the number of processes.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.js";
import * as data from "./data.js";

/** The window every count covers, in milliseconds. */
export const WINDOW_MS = 60 * 60 * 1000;

/** A delay that starts after `free` failures at `firstDelayMs` and doubles with each failure after that. */
export interface GrowingDelay {
  free: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** The sign-in limits (see the module comment). */
export interface SignInLimits {
  pair: GrowingDelay;
  account: GrowingDelay & { newAddresses: number; ceiling: number };
  ip: number;
  knownForMs: number;
}

/** The limits a server runs with. */
export const LIMITS: SignInLimits = {
  // 5 free, then 30 s, 1, 2, 4, 8 and 15 minutes: at most 12 guesses an hour from one address.
  pair: { free: 5, firstDelayMs: 30_000, maxDelayMs: 15 * 60_000 },
  // 10 free, then 1 s doubling to a minute: at most 74 an hour from everywhere else (80 is a backstop).
  account: { free: 10, firstDelayMs: 1_000, maxDelayMs: 60_000, newAddresses: 80, ceiling: 100 },
  ip: 300,
  knownForMs: 90 * 24 * 60 * 60 * 1000,
};

/** Failed attempts per account per hour, from every address together. */
export const ACCOUNT_LIMIT = LIMITS.account.ceiling;
/** Failed attempts per client address per hour over accounts it has not signed in to. */
export const IP_LIMIT = LIMITS.ip;

/** What an attempt needs. */
export interface AttemptDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** Replaces some of LIMITS (tests). */
  limits?: Partial<SignInLimits>;
}

/** An attempt allowed to check its credential; exactly one of its methods must be called. */
export interface Attempt {
  allowed: true;
  /** The credential was right: the attempt does not count. */
  succeeded(): Promise<void>;
  /** The credential was wrong: the attempt counts for the window. */
  failed(): Promise<void>;
}

/** Which limit refused an attempt, and how long until an attempt could be allowed again. */
export interface Refusal {
  allowed: false;
  limit: "account_ip" | "account" | "ip";
  retryAfterMs: number;
}

type Row = data.AttemptRow;

/** Hextets of an IPv6 address, or null when `text` is not one (node:net's isIPv6 has already been applied). */
function ipv6Hextets(text: string): number[] | null {
  let address = text.split("%")[0]!;
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two hextets.
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (tail !== null) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    address = `${address.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = address.split("::") as [string, string | undefined];
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((h) => parseInt(h, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const hextets = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return hextets.length === 8 && hextets.every((h) => Number.isInteger(h) && h >= 0 && h <= 0xffff)
    ? hextets
    : null;
}

/**
 * The address the limits count for a client IP. One IPv6 subscriber is handed a whole /64 (RFC 6177), so counting
 * each /128 would give a single guesser 2^64 fresh addresses: IPv6 counts by its /64. An IPv4-mapped IPv6 address
 * is the IPv4 address it maps. Anything else is counted as given.
 */
export function limitAddress(ip: string): string {
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const hextets = ipv6Hextets(ip);
  if (hextets === null) return ip;
  if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) {
    return [hextets[6]! >> 8, hextets[6]! & 0xff, hextets[7]! >> 8, hextets[7]! & 0xff].join(".");
  }
  return `${hextets
    .slice(0, 4)
    .map((h) => h.toString(16))
    .join(":")}::/64`;
}

/** How long after the last of `earlier` failures the next attempt must wait under `rule`; 0: it may go now. */
function waitAfter(earlier: readonly Row[], rule: GrowingDelay, now: number): number {
  if (earlier.length < rule.free) return 0;
  const delay = Math.min(rule.firstDelayMs * 2 ** (earlier.length - rule.free), rule.maxDelayMs);
  return Math.max(0, Math.max(...earlier.map((r) => r.at)) + delay - now);
}

/** How long until the oldest of `rows` leaves the window. */
function untilOldestLeaves(rows: readonly Row[], now: number): number {
  return Math.max(1, Math.min(...rows.map((r) => r.at)) + WINDOW_MS - now);
}

/** Starts an attempt for `account` (a normalized email) from `client` (an IP), or says which limit refuses it. */
export async function beginAttempt(
  deps: AttemptDeps,
  account: string,
  client: string,
): Promise<Attempt | Refusal> {
  const ip = limitAddress(client);
  const limits = { ...LIMITS, ...deps.limits };
  const now = deps.now().getTime();
  const since = now - WINDOW_MS;
  const known = await data.isKnownAddress(deps.db, account, ip, now - limits.knownForMs);
  const id = deps.randomId();
  await data.insertAttempt(deps.db, account, { id, address: ip, known, at: now });
  const remove = (): Promise<void> => data.deleteAttempt(deps.db, id);
  const refuse = async (limit: Refusal["limit"], retryAfterMs: number): Promise<Refusal> => {
    await remove();
    return { allowed: false, limit, retryAfterMs };
  };

  const rows = await data.listAttempts(deps.db, account, since);
  const others = rows.filter((r) => r.id !== id);

  const pairWait = waitAfter(
    others.filter((r) => r.address === ip),
    limits.pair,
    now,
  );
  if (pairWait > 0) return refuse("account_ip", pairWait);

  const fromNew = rows.filter((r) => !r.known);
  if (!known) {
    if (fromNew.length > limits.account.newAddresses) {
      return refuse("account", untilOldestLeaves(fromNew, now));
    }
    const accountWait = waitAfter(
      others.filter((r) => !r.known),
      limits.account,
      now,
    );
    if (accountWait > 0) return refuse("account", accountWait);
  }
  // New addresses count for at most their own ceiling: attempts past it are being refused right now, and must
  // not crowd out an address the account knows.
  const fromKnown = rows.filter((r) => r.known);
  if (fromKnown.length + Math.min(fromNew.length, limits.account.newAddresses) > limits.account.ceiling) {
    return refuse("account", untilOldestLeaves(rows, now));
  }

  if (!known) {
    const fromAddress = await data.unknownAttemptTimes(deps.db, ip, since);
    if (fromAddress.length > limits.ip) {
      return refuse(
        "ip",
        untilOldestLeaves(
          fromAddress.map((at) => ({ id: "", address: ip, known: false, at })),
          now,
        ),
      );
    }
  }
  return { allowed: true, succeeded: remove, failed: () => Promise.resolve() };
}

/**
 * Remembers that `account` signed in from `ip` (every factor passed): attempts from there skip the limits meant
 * for strangers (see the module comment).
 */
export async function rememberAddress(
  deps: Pick<AttemptDeps, "db" | "now">,
  account: string,
  ip: string,
): Promise<void> {
  await data.upsertAddress(deps.db, account, limitAddress(ip), deps.now().getTime());
}

/** Removes attempts older than the window and addresses not used for too long (the limits ignore them anyway). */
export async function purgeAttempts(deps: Pick<AttemptDeps, "db" | "now" | "limits">): Promise<void> {
  const now = deps.now().getTime();
  await data.purgeSignInRows(deps.db, now - WINDOW_MS, now - (deps.limits?.knownForMs ?? LIMITS.knownForMs));
}
