// `--offline` for `run` and `env get`. Both always read the local copy of the vault and never ask the server;
// `--offline` turns that into a promise with a bound: no network request of any kind (the context's fetch is
// replaced by one that refuses, so no later auto-pull or token refresh can slip in), and a copy whose last
// successful push or pull is older than `--max-age` is refused with LK_VAULT_STALE. Read on the hot path: no zod.
import { LatchkeyError, canonicalVaultId, parseIsoDateTime } from "@latchkey/core";
import type { Context } from "../context.js";
import { parseDuration } from "../duration.js";
import { listSyncEntries } from "./state.js";

/** The --max-age that `--offline` alone implies. */
export const DEFAULT_MAX_AGE = "24h";

const UNITS = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
] as const;

/** `--offline` and `--max-age` as given: --max-age alone implies --offline. */
export interface OfflineFlags {
  offline?: boolean;
  maxAge?: string;
}

/** The age limit of an offline read: in milliseconds, and as given (for messages). */
export interface MaxAge {
  readonly ms: number;
  readonly text: string;
}

/**
 * The age limit `flags` ask for, or null when they ask for no offline use. --max-age is a duration as every
 * option takes one (duration.ts: `30m`, `24h`, `7d`); anything else is LK_USAGE.
 */
export function offlineMaxAge(flags: OfflineFlags): MaxAge | null {
  if (flags.offline !== true && flags.maxAge === undefined) return null;
  const text = flags.maxAge ?? DEFAULT_MAX_AGE;
  const ms = parseDuration(text);
  if (ms === null) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--max-age takes a duration such as 30m, 24h or 7d (a whole number, then s, m, h or d), not ${JSON.stringify(text)}.`,
      hint: `Give e.g. --max-age 12h; --offline alone allows ${DEFAULT_MAX_AGE}.`,
    });
  }
  return { ms, text };
}

/** A duration for people: its largest unit that makes it at least 2 (`3 days`, `25 hours`, `90 seconds`). */
export function describeDuration(ms: number): string {
  for (const [name, size] of UNITS) {
    const n = Math.floor(ms / size);
    if (n >= 2) return `${n} ${name}s`;
  }
  const seconds = Math.floor(ms / 1000);
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

/** `ctx` whose fetch refuses every request: what `--offline` runs a command with. */
export function withoutNetwork(ctx: Context): Context {
  return {
    ...ctx,
    fetch: () =>
      Promise.reject(
        new LatchkeyError("LK_INTERNAL", {
          message: "A network request was about to be made under --offline; it was not sent.",
        }),
      ),
  };
}

/**
 * Refuses the local copy of `vaultId` (LK_VAULT_STALE) when this machine has synced the vault and its most recent
 * successful push or pull, with any server or account, is older than `maxAge`, or when no time was recorded
 * for it (a sync by a Latchkey from before the time was kept). A vault this machine never synced is purely local:
 * there is nothing for it to be stale against, and it passes.
 */
export async function checkLocalCopyAge(ctx: Context, vaultId: string, maxAge: MaxAge): Promise<void> {
  const id = canonicalVaultId(vaultId);
  const entries = (await listSyncEntries(ctx.paths.home)).filter((e) => canonicalVaultId(e.vaultId) === id);
  if (entries.length === 0) return;
  const times = entries.flatMap((e) => {
    const at = e.syncedAt === undefined ? null : parseIsoDateTime(e.syncedAt);
    return at === null ? [] : [{ at, text: e.syncedAt! }];
  });
  if (times.length === 0) {
    throw new LatchkeyError("LK_VAULT_STALE", {
      message: `This machine has synced vault ${vaultId} but has no record of when (an older Latchkey synced it), so --offline cannot tell whether its local copy is within --max-age ${maxAge.text}.`,
      details: { vaultId, syncedAt: null, maxAgeSeconds: maxAge.ms / 1000 },
    });
  }
  const last = times.reduce((a, b) => (b.at > a.at ? b : a));
  // A time ahead of the clock (the clock was turned back) counts as now: the copy cannot be older than that.
  const age = Math.max(0, ctx.clock.now() - last.at);
  if (age <= maxAge.ms) return;
  throw new LatchkeyError("LK_VAULT_STALE", {
    message: `The local copy of vault ${vaultId} was last synced ${describeDuration(age)} ago (${last.text}), longer than --max-age ${maxAge.text} allows.`,
    details: {
      vaultId,
      syncedAt: last.text,
      ageSeconds: Math.floor(age / 1000),
      maxAgeSeconds: maxAge.ms / 1000,
    },
  });
}
