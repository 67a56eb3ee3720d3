// The one interface every platform adapter implements (docs/platforms.md), and what they share: the push plan, the
// one retry loop for 429 and 5xx answers, and the mapping of a platform's refusals onto the error catalogue.
// Adapters send through the CLI's one HTTP client (http/client.ts), so redirects are never followed with a
// platform credential and `-v` traces redact it; every request marks its bodies secret, since they carry values.
import { LatchkeyError, type PlatformName } from "@latchkey/core";
import type { Context } from "../context.js";
import { request, type HttpRequest } from "../http/client.js";

/** What one push writes: every vault name with its value, and the platform names to delete. */
export interface ApplyPlan {
  /** Name → value, written whether the platform has the name or not (platforms store values write-only). */
  readonly upsert: Readonly<Record<string, string>>;
  /** Names to delete from the platform; empty unless the push prunes. */
  readonly remove: readonly string[];
}

/** One name the platform did not take, and why (never the value). */
export interface FailedName {
  readonly name: string;
  readonly reason: string;
}

/**
 * What a push did. A partial failure is a result, not an exception: `written` and `removed` are exactly the names the
 * platform confirmed, `failed` those it refused or that were never sent because an earlier request failed.
 */
export interface ApplyResult {
  readonly written: readonly string[];
  readonly removed: readonly string[];
  readonly failed: readonly FailedName[];
}

/** What a pull read: the values, and the names whose values the platform holds but never gives back. */
export interface PulledValues {
  readonly values: Record<string, string>;
  /**
   * Names the target holds without returning their values (Railway's sealed variables, Coolify's "shown once",
   * Vercel's sensitive ones): not imported, and named to the user so a missing name is not a surprise.
   */
  readonly withheld: readonly string[];
}

/** A platform adapter: one connection's target, with its credential, behind the same calls for every platform. */
export interface PlatformAdapter {
  readonly platform: PlatformName;
  /** The names the target holds now, or null where the platform's API cannot list them. */
  listNames(): Promise<readonly string[] | null>;
  /** Writes `plan.upsert` and deletes `plan.remove`; throws only when nothing could be said about any name. */
  apply(plan: ApplyPlan): Promise<ApplyResult>;
  /** The target's names and values, or null where the platform keeps every value write-only. */
  readonly pull: (() => Promise<PulledValues>) | null;
}

/** What an adapter is built from. The credential is separate from the configuration and never leaves the adapter. */
export interface AdapterInput<Config> {
  readonly ctx: Context;
  readonly config: Config;
  readonly credential: string;
  /** -v level for the request traces (credentials and bodies redacted). */
  readonly verbose?: number;
}

/** A push shown before it is applied: names only. */
export interface PushPlan {
  readonly added: readonly string[];
  /** Names the platform holds already; their values are written again (the platform cannot say whether they differ). */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  /** Whether the platform could list its names; when not, `added` is every vault name and nothing can be pruned. */
  readonly listed: boolean;
}

/**
 * The plan for pushing `values` to a target holding `current` (null: unknown). Without `prune` nothing is removed;
 * with it, exactly the names the target has and the vault does not.
 */
export function planPush(
  current: readonly string[] | null,
  values: Readonly<Record<string, string>>,
  prune: boolean,
): PushPlan {
  const names = Object.keys(values).sort();
  if (current === null) return { added: names, changed: [], removed: [], listed: false };
  const present = new Set(current);
  return {
    added: names.filter((name) => !present.has(name)),
    changed: names.filter((name) => present.has(name)),
    removed: prune ? [...present].filter((name) => !Object.hasOwn(values, name)).sort() : [],
    listed: true,
  };
}

/** The {@link ApplyPlan} for a {@link PushPlan}. */
export function applyPlanFor(plan: PushPlan, values: Readonly<Record<string, string>>): ApplyPlan {
  const upsert: Record<string, string> = {};
  for (const name of [...plan.added, ...plan.changed].sort()) upsert[name] = values[name]!;
  return { upsert, remove: plan.removed };
}

// ---- requests ----

/** How many times a request is sent at most when the platform answers 429 or 5xx. */
export const MAX_ATTEMPTS = 4;
const BASE_DELAY_MS = 500;
/** The longest wait Latchkey accepts from a Retry-After; a longer one ends the push instead of hanging it. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The delay a Retry-After header asks for (seconds or an HTTP date), or null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function retryable(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** One request to a platform, as {@link platformRequest} sends it. */
export interface PlatformRequest extends Omit<HttpRequest, "unreachable" | "secretBodies" | "verbose"> {
  readonly platform: PlatformName;
  /**
   * Whether an answer that is neither 429 nor 5xx is throttling all the same, and retried like one: AWS answers
   * throttling with HTTP 400 and the error's type in the body. It must read a clone, leaving the answer readable.
   */
  readonly throttled?: (response: Response) => Promise<boolean>;
}

/**
 * Sends a platform request through the CLI's HTTP client, retrying a 429 or 5xx answer (or one the request's
 * `throttled` recognises) up to {@link MAX_ATTEMPTS} times: after the Retry-After it names, else after an
 * exponential backoff with jitter. A host that cannot be reached is LK_PLATFORM_UNREACHABLE, a 401 or 403
 * LK_PLATFORM_UNAUTHORIZED, and a 429 or 5xx still there after the last attempt LK_PLATFORM_RATE_LIMITED; any
 * other answer is returned for the adapter to read.
 */
export async function platformRequest(
  ctx: Context,
  verbose: number,
  req: PlatformRequest,
): Promise<Response> {
  const { platform, throttled, ...rest } = req;
  for (let attempt = 1; ; attempt++) {
    const response = await request(ctx, {
      ...rest,
      verbose,
      secretBodies: true,
      timeoutMs: rest.timeoutMs ?? 30_000,
      unreachable: (cause, timedOut) =>
        new LatchkeyError("LK_PLATFORM_UNREACHABLE", {
          message: `${platform}: the API at ${new URL(String(req.url)).origin} ${timedOut ? "did not answer in time" : "could not be reached"}.`,
          cause,
        }),
    });
    if (response.status === 401 || response.status === 403) {
      await response.arrayBuffer().catch(() => undefined);
      throw new LatchkeyError("LK_PLATFORM_UNAUTHORIZED", {
        message: `${platform} refused the connection's credential (HTTP ${response.status}).`,
        details: { platform, status: response.status },
      });
    }
    if (!retryable(response.status) && !(throttled !== undefined && (await throttled(response))))
      return response;
    await response.arrayBuffer().catch(() => undefined);
    const asked = retryAfterMs(response.headers.get("retry-after"), ctx.clock.now());
    if (attempt >= MAX_ATTEMPTS || (asked !== null && asked > MAX_RETRY_AFTER_MS)) {
      throw new LatchkeyError("LK_PLATFORM_RATE_LIMITED", {
        message: `${platform} answered HTTP ${response.status} ${attempt} times; Latchkey stopped retrying.`,
        details: { platform, status: response.status, attempts: attempt },
      });
    }
    const jitter = (ctx.random.bytes(1)[0]! / 255) * BASE_DELAY_MS;
    await ctx.clock.sleep(asked ?? BASE_DELAY_MS * 2 ** (attempt - 1) + jitter);
  }
}

/** LK_PLATFORM_FAILED for an answer the adapter cannot accept; the status only, never the body (it may echo values). */
export function unexpectedAnswer(platform: PlatformName, what: string, status: number): LatchkeyError {
  return new LatchkeyError("LK_PLATFORM_FAILED", {
    message: `${platform}: ${what} answered HTTP ${status}, which Latchkey does not accept.`,
    details: { platform, status },
  });
}

/** Reads a JSON answer against a core schema, or LK_PLATFORM_FAILED naming what was asked. */
export async function readAnswer<T>(
  platform: PlatformName,
  what: string,
  response: Response,
  parse: (value: unknown) => { ok: true; value: T } | { ok: false },
): Promise<T> {
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    json = undefined;
  }
  const checked = parse(json);
  if (!checked.ok)
    throw new LatchkeyError("LK_PLATFORM_FAILED", {
      message: `${platform}: the answer to ${what} is not the documented shape.`,
      details: { platform, status: response.status },
    });
  return checked.value;
}

/** A failure that names why, for each of `names`: the names a failed request was carrying. */
export function failedAll(names: Iterable<string>, reason: string): FailedName[] {
  return [...names].map((name) => ({ name, reason }));
}

/** The reason a thrown error gives for the names it stopped, without any value: its code and message. */
export function reasonOf(error: unknown): string {
  if (error instanceof LatchkeyError) return `${error.code}: ${error.message}`;
  return "the request failed";
}

/** A base URL without a trailing slash, so paths can be appended. */
export function trimBase(url: string): string {
  return url.replace(/\/+$/, "");
}
