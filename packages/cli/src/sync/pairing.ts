// The pieces both ends of a pairing use (docs/pairing.md): the pairing routes through callApi, waiting for the
// other machine's step (a poll, a spinner on a terminal, Ctrl-C and a deadline), a best-effort revocation, and
// the words and numbers people see. pair.ts runs the two flows on top.
import {
  API_PREFIX,
  LatchkeyError,
  MAX_PAIRING_LABEL_LENGTH,
  PAIRING_LABEL_UNPRINTABLE,
  PAIRINGS_PATH,
  PAIRING_TTL_SECONDS,
  checkSchema,
  pairingConsumeResponseSchema,
  pairingCreateResponseSchema,
  pairingLabelSchema,
  pairingListResponseSchema,
  pairingRevokeAllResponseSchema,
  pairingViewSchema,
  type PairingApproveRequest,
  type PairingConsumeResponse,
  type PairingCreateRequest,
  type PairingCreateResponse,
  type PairingJoinRequest,
  type PairingRevealRequest,
  type PairingStatus,
  type PairingSummary,
  type PairingView,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { parseDuration } from "../duration.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions, type ApiResult } from "../server/api.js";

/** How often a waiting machine asks for the pairing's state. */
export const PAIRING_POLL_MS = 1000;
/** How long a revocation after Ctrl-C, a timeout or a failed check may take before the command gives up on it. */
export const PAIRING_REVOKE_TIMEOUT_MS = 5000;
/** `latchkey pair --timeout` when not given: the life of a pairing code. */
export const DEFAULT_PAIRING_TIMEOUT = "5m";
/** The label of a machine whose host name leaves nothing printable. */
export const FALLBACK_PAIRING_LABEL = "new machine";

// callApi takes paths under API_PREFIX; the contract names the full one.
if (!PAIRINGS_PATH.startsWith(`${API_PREFIX}/`)) throw new Error("PAIRINGS_PATH is not under API_PREFIX");
const BASE = PAIRINGS_PATH.slice(API_PREFIX.length);
const one = (pairingId: string, action?: string): string =>
  `${BASE}/${encodeURIComponent(pairingId)}${action === undefined ? "" : `/${action}`}`;

function usage(message: string, hint: string): LatchkeyError {
  return new LatchkeyError("LK_USAGE", { message, hint });
}

/**
 * The label a new machine pairs under when `--label` is not given: its host name without control characters,
 * cut to {@link MAX_PAIRING_LABEL_LENGTH} characters (never inside a surrogate pair), trimmed;
 * {@link FALLBACK_PAIRING_LABEL} when nothing is left.
 */
export function defaultPairingLabel(hostname: string | undefined): string {
  let label = "";
  for (const char of (hostname ?? "").replace(PAIRING_LABEL_UNPRINTABLE, "").trim()) {
    if (label.length + char.length > MAX_PAIRING_LABEL_LENGTH) break;
    label += char;
  }
  label = label.trim();
  return label === "" ? FALLBACK_PAIRING_LABEL : label;
}

/** `--label` as given, trimmed; LK_USAGE when the server would refuse it. Never cut: the user chose it. */
export function pairingLabelOption(given: string): string {
  const label = given.trim();
  if (!checkSchema(pairingLabelSchema, label).ok) {
    throw usage(
      `--label takes 1 to ${MAX_PAIRING_LABEL_LENGTH} characters without control characters (got ${given.length} characters).`,
      "Give a short name the other machine will show, e.g. --label 'work laptop'.",
    );
  }
  return label;
}

/** `--timeout` in milliseconds: a duration (`90s`, `2m`) no longer than a pairing code lives. */
export function pairingTimeout(given: string | undefined): number {
  const text = given ?? DEFAULT_PAIRING_TIMEOUT;
  const ms = parseDuration(text);
  const hint = `Give e.g. --timeout 2m; a code lives ${PAIRING_TTL_SECONDS / 60} minutes, the default.`;
  if (ms === null) {
    throw usage(
      `--timeout takes a duration such as 90s or 2m (a whole number, then s or m), not ${JSON.stringify(text)}.`,
      hint,
    );
  }
  if (ms > PAIRING_TTL_SECONDS * 1000) {
    throw usage(
      `--timeout ${text} is longer than a pairing code lives (${PAIRING_TTL_SECONDS / 60} minutes), so it could never be reached.`,
      hint,
    );
  }
  return ms;
}

/** The 6 digits as people read them aloud: `123 456`. */
export function formatComparisonValue(digits: string): string {
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/** Minutes and seconds left, for the spinner: `4:05`. */
export function formatRemaining(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** `pair --list` for people: one line per pairing, newest first, as the server lists them. */
export function formatPairingList(pairings: readonly PairingSummary[]): string {
  if (pairings.length === 0) return "No pending pairings, and none in the last 24 hours.";
  const width = Math.max(...pairings.map((p) => p.status.length));
  return pairings
    .map((p) => `${p.createdAt}  ${p.status.padEnd(width)}  ${JSON.stringify(p.label)}  ${p.pairingId}`)
    .join("\n");
}

/** Why a pairing that reached `status` cannot go on, in words. */
function endedMessage(status: PairingStatus): string {
  switch (status) {
    case "revoked":
      return "The pairing was revoked: declined or cancelled on the other machine, or by `latchkey pair --revoke-all`.";
    case "expired":
      return `The pairing expired: a code lives ${PAIRING_TTL_SECONDS / 60} minutes from its creation.`;
    default:
      return `The pairing is ${status} on the server, which this machine did not expect at this step.`;
  }
}

/** LK_PAIRING_FAILED for a pairing found in a state this step cannot go on from. */
export function pairingEnded(status: PairingStatus): LatchkeyError {
  return new LatchkeyError("LK_PAIRING_FAILED", { message: endedMessage(status), details: { status } });
}

/** `POST /pairings` with a `vault:pair` proof. */
export function createPairing(
  ctx: Context,
  body: PairingCreateRequest,
  stepUpProof: string,
  options: ApiOptions,
): Promise<ApiResult<PairingCreateResponse>> {
  return callApi(
    ctx,
    { method: "POST", path: BASE, body, answer: pairingCreateResponseSchema, stepUpProof },
    options,
  );
}

/** `POST /pairings/join`. */
export function joinPairing(
  ctx: Context,
  body: PairingJoinRequest,
  options: ApiOptions,
): Promise<ApiResult<PairingView>> {
  return callApi(ctx, { method: "POST", path: `${BASE}/join`, body, answer: pairingViewSchema }, options);
}

/** `GET /pairings/:id`. */
export async function viewPairing(
  ctx: Context,
  pairingId: string,
  options: ApiOptions,
): Promise<PairingView> {
  return (await callApi(ctx, { method: "GET", path: one(pairingId), answer: pairingViewSchema }, options))
    .data;
}

/** `POST /pairings/:id/reveal`. */
export async function revealPairing(
  ctx: Context,
  pairingId: string,
  body: PairingRevealRequest,
  options: ApiOptions,
): Promise<PairingView> {
  return (
    await callApi(
      ctx,
      { method: "POST", path: one(pairingId, "reveal"), body, answer: pairingViewSchema },
      options,
    )
  ).data;
}

/** `POST /pairings/:id/approve`. */
export async function approvePairingRequest(
  ctx: Context,
  pairingId: string,
  body: PairingApproveRequest,
  options: ApiOptions,
): Promise<PairingView> {
  return (
    await callApi(
      ctx,
      { method: "POST", path: one(pairingId, "approve"), body, answer: pairingViewSchema },
      options,
    )
  ).data;
}

/** `POST /pairings/:id/consume`: the sealed key, once. */
export async function consumePairing(
  ctx: Context,
  pairingId: string,
  options: ApiOptions,
): Promise<PairingConsumeResponse> {
  return (
    await callApi(
      ctx,
      { method: "POST", path: one(pairingId, "consume"), answer: pairingConsumeResponseSchema },
      options,
    )
  ).data;
}

/** `GET /pairings`: the account's pending pairings and those of the last day, newest first. */
export function listPairings(ctx: Context, options: ApiOptions) {
  return callApi(ctx, { method: "GET", path: BASE, answer: pairingListResponseSchema }, options);
}

/** `POST /pairings/revoke-all`: how many unfinished pairings were revoked. */
export function revokeAllPairings(ctx: Context, options: ApiOptions) {
  return callApi(
    ctx,
    { method: "POST", path: `${BASE}/revoke-all`, answer: pairingRevokeAllResponseSchema },
    options,
  );
}

/**
 * Revokes a pairing this machine gave up on, without ever failing the command a second time: within
 * {@link PAIRING_REVOKE_TIMEOUT_MS}, says on stderr whether it worked. The pairing dies at its expiry anyway.
 */
export async function revokeQuietly(
  ctx: Context,
  pairingId: string,
  expiresAt: string,
  options: ApiOptions,
): Promise<boolean> {
  const revoked = callApi(
    ctx,
    { method: "POST", path: one(pairingId, "revoke"), answer: pairingViewSchema },
    options,
  ).then(
    () => true,
    () => false,
  );
  const late = ctx.clock.sleep(PAIRING_REVOKE_TIMEOUT_MS).then(() => false);
  const done = await Promise.race([revoked, late]);
  printStatus(
    ctx,
    done
      ? "The pairing was revoked on the server."
      : `Could not revoke the pairing on the server; it expires by itself at ${expiresAt}.`,
  );
  return done;
}

/** Ctrl-C while a pairing is open: `signal` aborts on the first one; `release` stops listening. */
export interface InterruptWatch {
  readonly signal: AbortSignal;
  release(): void;
}

/**
 * Listens for Ctrl-C from now on. After the first one SIGINT is Node's again, so a second Ctrl-C during the
 * revocation that follows ends the process at once.
 */
export function watchInterrupts(ctx: Context): InterruptWatch {
  const controller = new AbortController();
  let stop: (() => void) | undefined;
  const release = (): void => {
    stop?.();
    stop = undefined;
  };
  stop = ctx.onInterrupt?.(() => {
    release();
    controller.abort();
  });
  return { signal: controller.signal, release };
}

/** LK_CANCELLED for Ctrl-C while waiting on the other machine. */
export function interrupted(): LatchkeyError {
  return new LatchkeyError("LK_CANCELLED", {
    message: "Interrupted (Ctrl-C) while waiting for the other machine.",
    hint: "Start again with `latchkey pair` on the new machine when both are ready.",
  });
}

/** `promise`, or LK_CANCELLED as soon as `signal` aborts (the promise is left to settle unobserved). */
export function unlessInterrupted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(interrupted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(interrupted());
    // Removed once the promise settles: a wait makes hundreds of these calls on one signal.
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICKS_PER_POLL = 4;

/** What {@link waitForPairing} waits for. */
export interface PairingWait {
  pairingId: string;
  /** States in which to keep waiting. */
  waiting: readonly PairingStatus[];
  /** States that end the wait; any other is {@link pairingEnded}. */
  until: readonly PairingStatus[];
  /** Shown while waiting: on a terminal beside a spinner and the time left, elsewhere once. */
  message: string;
  /** When to give up (ms since the epoch, ctx.clock). */
  deadline: number;
  /** The error at the deadline. */
  timedOut: () => LatchkeyError;
  interrupts: InterruptWatch;
  options: ApiOptions;
}

/**
 * Polls the pairing every {@link PAIRING_POLL_MS} until its state is one of `until`, and returns that view. A
 * spinner with the time left turns on stderr when it is a terminal (cleared before returning); elsewhere the
 * message is printed once. Ctrl-C is LK_CANCELLED at once, even during a request.
 */
export async function waitForPairing(ctx: Context, wait: PairingWait): Promise<PairingView> {
  const spinning = ctx.stderr.isTTY && ctx.env.TERM !== "dumb";
  let frame = 0;
  const draw = (): void => {
    if (!spinning) return;
    const left = formatRemaining(wait.deadline - ctx.clock.now());
    ctx.stderr.write(`\r\u001b[K${FRAMES[frame++ % FRAMES.length]} ${wait.message} (${left} left)`);
  };
  if (!spinning) printStatus(ctx, `${wait.message}…`);
  try {
    for (;;) {
      draw();
      const view = await unlessInterrupted(
        viewPairing(ctx, wait.pairingId, wait.options),
        wait.interrupts.signal,
      );
      if (wait.until.includes(view.status)) return view;
      if (!wait.waiting.includes(view.status)) throw pairingEnded(view.status);
      if (ctx.clock.now() >= wait.deadline) throw wait.timedOut();
      for (let tick = 0; tick < TICKS_PER_POLL; tick++) {
        draw();
        await unlessInterrupted(ctx.clock.sleep(PAIRING_POLL_MS / TICKS_PER_POLL), wait.interrupts.signal);
      }
    }
  } finally {
    if (spinning) ctx.stderr.write("\r\u001b[K");
  }
}
