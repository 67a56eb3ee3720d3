/**
 * The browser's side of a pairing: it is the new device N of docs/pairing.md, and a machine with the CLI approves
 * it with `latchkey env pair CODE`. The steps are the CLI's `latchkey pair` (packages/cli/src/sync/pair.ts) on
 * core's computations: a P-256 key pair made here with a non-extractable private key, the commitment, the code,
 * the reveal once A joined (checked: the server's answer names this key, the key A joined with and this label),
 * the 6 digits, the consume, and opening what A sealed. The step-up proof the create needs is in the browser's
 * step-up cookie, never in page script. The waiting pairing is kept in a PendingStore, so a reload continues it;
 * anything that stops it before the consume (Cancel, leaving the view, the deadline, a failed check) revokes it
 * on the server, best effort, and forgets it.
 */
import {
  LatchkeyError,
  PAIRING_NONCE_BYTES,
  constantTimeEqual,
  fromBase64,
  generatePairingKeyPair,
  isLatchkeyError,
  normalizePairingCode,
  openPairingKey,
  pairingCommitment,
  pairingComparisonValue,
  pairingKeyFingerprint,
  randomBytes,
  toBase64,
  type PairingConsumeResponse,
  type PairingCreateRequest,
  type PairingCreateResponse,
  type PairingKeys,
  type PairingRevealRequest,
  type PairingStatus,
  type PairingView,
} from "@latchkey/core";
import type { PendingPairing, PendingStore } from "./pending-store.js";

/** The pairing routes as the flow calls them (api.ts gives the dashboard's signed, checked client of them). */
export interface PairingApi {
  /** `POST /pairings`; the `vault:pair` proof travels in the step-up cookie. */
  create(body: PairingCreateRequest): Promise<PairingCreateResponse>;
  view(pairingId: string): Promise<PairingView>;
  reveal(pairingId: string, body: PairingRevealRequest): Promise<PairingView>;
  consume(pairingId: string): Promise<PairingConsumeResponse>;
  revoke(pairingId: string): Promise<PairingView>;
}

/** What the flow needs from outside. */
export interface PairingDeps {
  readonly api: PairingApi;
  readonly store: PendingStore;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Waits `ms`; rejects with LK_CANCELLED when `signal` aborts first. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What the page shows while the pairing runs. */
export type PairingProgress =
  /** Waiting for `latchkey env pair CODE` on another machine. */
  | { step: "waiting"; code: string; label: string; expiresAt: string }
  /** A joined and this browser revealed its key: both sides show `digits`, which the user compares. */
  | { step: "compare"; code: string; label: string; expiresAt: string; digits: string; fingerprint: string }
  /** Approved: the keys are being taken and opened. */
  | { step: "finishing" };

/** How often the page asks for the pairing's state while it waits (the CLI's rhythm). */
export const PAIRING_POLL_MS = 1000;

const relayHint =
  "Someone may be relaying the connection between this browser and your machine: answer no there if it is still asking, and pair again.";

/** LK_PAIRING_FAILED for a pairing found in a state this step cannot go on from. */
export function pairingEnded(status: PairingStatus): LatchkeyError {
  const message =
    status === "revoked"
      ? "The pairing was revoked: declined or cancelled on the other machine, or by a sign-out everywhere."
      : status === "expired"
        ? "The pairing expired: a code lives 5 minutes from its creation."
        : `The pairing is ${status} on the server, which this browser did not expect at this step.`;
  return new LatchkeyError("LK_PAIRING_FAILED", {
    message,
    hint: "Pair this browser again when you are ready to approve it on your machine within 5 minutes.",
    details: { status },
  });
}

function cancelled(): LatchkeyError {
  return new LatchkeyError("LK_CANCELLED", {
    message: "Pairing cancelled: the pairing was revoked, and nothing was handed over.",
    hint: "Pair this browser again when you want to read your vaults here.",
  });
}

/** The digits as people read them aloud: `123 456`. */
export function formatDigits(digits: string): string {
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

/**
 * Starts a pairing for `account` under `label` (the step-up cookie must be set: the create spends it), keeps it
 * in the store, and runs it to the end (see continuePairing).
 */
export async function startPairing(
  deps: PairingDeps,
  account: string,
  label: string,
  onProgress: (progress: PairingProgress) => void,
  signal: AbortSignal,
): Promise<PairingKeys> {
  if (signal.aborted) throw cancelled();
  // A pairing this browser was still waiting on is over: only one at a time.
  await abandon(deps, account);
  const keyPair = await generatePairingKeyPair();
  const nonce = randomBytes(PAIRING_NONCE_BYTES);
  const commitment = await pairingCommitment(keyPair.publicKey, nonce);
  const created = await deps.api.create({ label, commitment: toBase64(commitment) });
  const code = normalizePairingCode(created.code);
  const pending: PendingPairing = {
    account,
    pairingId: created.pairingId,
    code: code ?? created.code,
    expiresAt: created.expiresAt,
    label,
    privateKey: keyPair.privateKey,
    publicKey: keyPair.publicKey,
    nonce,
    approverKey: null,
  };
  if (code === null) {
    await revokeQuietly(deps, pending);
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: "The server answered the new pairing with a code that is not a pairing code; it was revoked.",
    });
  }
  await deps.store.save(pending);
  return continuePairing(deps, pending, onProgress, signal);
}

/**
 * Continues the pairing `account` was waiting on when the page was loaded again, or null when there is none
 * (or it expired, and is forgotten).
 */
export async function resumePairing(
  deps: PairingDeps,
  account: string,
  onProgress: (progress: PairingProgress) => void,
  signal: AbortSignal,
): Promise<PairingKeys | null> {
  const pending = await deps.store.load(account);
  if (pending === null) return null;
  if (Date.parse(pending.expiresAt) <= deps.now()) {
    await deps.store.remove(account);
    return null;
  }
  return continuePairing(deps, pending, onProgress, signal);
}

/** Revokes and forgets the pairing `account` is waiting on, if any (Cancel, forget this browser). */
export async function abandon(deps: PairingDeps, account: string): Promise<void> {
  const pending = await deps.store.load(account);
  if (pending === null) return;
  await revokeQuietly(deps, pending);
  await deps.store.remove(account);
}

async function revokeQuietly(deps: PairingDeps, pending: PendingPairing): Promise<void> {
  try {
    await deps.api.revoke(pending.pairingId);
  } catch {
    // Best effort: the pairing expires on the server anyway, and the other machine stops at that.
  }
}

function sameKey(a: string | null, b: Uint8Array | null): boolean {
  return a !== null && b !== null && constantTimeEqual(fromBase64(a), b);
}

/**
 * Runs `pending` from whatever state the server has it in to the end: waits for A to join, reveals this
 * browser's key, shows the digits, waits for the approval, consumes and opens the sealed keys. The record is
 * forgotten once consumed; anything that stops the pairing before revokes it (unless it is over already).
 */
async function continuePairing(
  deps: PairingDeps,
  start: PendingPairing,
  onProgress: (progress: PairingProgress) => void,
  signal: AbortSignal,
): Promise<PairingKeys> {
  const state = { pending: start };
  let consumed: PairingConsumeResponse;
  try {
    consumed = await untilConsumed(deps, state, onProgress, signal);
  } catch (error) {
    const over =
      isLatchkeyError(error, "LK_PAIRING_NOT_FOUND") ||
      (isLatchkeyError(error, "LK_PAIRING_FAILED") &&
        ["revoked", "expired", "consumed"].includes(String(error.details?.status)));
    if (!over) await revokeQuietly(deps, state.pending);
    await deps.store.remove(state.pending.account);
    throw error;
  }
  const { pending } = state;
  await deps.store.remove(pending.account);
  if (pending.approverKey === null) throw pairingEnded("approved");
  try {
    return await openPairingKey(
      { privateKey: pending.privateKey, publicKey: pending.publicKey },
      {
        label: pending.label,
        code: pending.code,
        newDeviceKey: pending.publicKey,
        approverKey: pending.approverKey,
      },
      fromBase64(consumed.sealedKey),
    );
  } catch (error) {
    throw new LatchkeyError("LK_PAIRING_FAILED", {
      message: "The sealed keys the server handed over do not open with this pairing's keys.",
      hint: relayHint,
      cause: error,
    });
  }
}

/** Polls, reveals and shows the digits until A approved, then consumes; `state.pending` follows the record. */
async function untilConsumed(
  deps: PairingDeps,
  state: { pending: PendingPairing },
  onProgress: (progress: PairingProgress) => void,
  signal: AbortSignal,
): Promise<PairingConsumeResponse> {
  const { code, label, expiresAt, pairingId } = state.pending;
  // The server expires the pairing at its expiry; this bound only stops a server that never does.
  const deadline = Date.parse(expiresAt) + 60_000;
  for (;;) {
    if (signal.aborted) throw cancelled();
    if (deps.now() > deadline) throw pairingEnded("expired");
    let view = await deps.api.view(pairingId);
    if (view.status === "joined") {
      if (view.approverKey === null) throw pairingEnded(view.status);
      // Kept before the reveal: after a reload the digits are computed with the key A joined with.
      state.pending = { ...state.pending, approverKey: fromBase64(view.approverKey) };
      await deps.store.save(state.pending);
      view = await deps.api.reveal(pairingId, {
        publicKey: toBase64(state.pending.publicKey),
        nonce: toBase64(state.pending.nonce),
      });
    }
    const { publicKey, approverKey, nonce } = state.pending;
    if (view.status === "pending") {
      onProgress({ step: "waiting", code, label, expiresAt });
    } else if (view.status === "revealed") {
      if (
        approverKey === null ||
        !sameKey(view.newDeviceKey, publicKey) ||
        !sameKey(view.approverKey, approverKey) ||
        view.label !== label
      ) {
        throw new LatchkeyError("LK_PAIRING_FAILED", {
          message: "The server's answer names other keys or another label than this pairing's.",
          hint: relayHint,
        });
      }
      const digits = await pairingComparisonValue({ code, newDeviceKey: publicKey, approverKey, nonce });
      const fingerprint = await pairingKeyFingerprint(publicKey);
      onProgress({ step: "compare", code, label, expiresAt, digits, fingerprint });
    } else if (view.status === "approved") {
      onProgress({ step: "finishing" });
      // Not raced with Cancel: once the server hands the keys over it deletes them.
      return deps.api.consume(pairingId);
    } else {
      throw pairingEnded(view.status);
    }
    await deps.sleep(PAIRING_POLL_MS, signal);
  }
}
