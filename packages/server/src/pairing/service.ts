/**
 * The pairing service (docs/pairing.md): the rules of create, join, reveal, approve, consume, revoke and the
 * views, with dependencies narrowed to what it uses. Callers (routes.ts) have validated the bodies and
 * authenticated the session; every outcome a client must tell apart is a value here, not an exception. Each
 * state move is one conditional UPDATE (data.ts) in a transaction with its audit row; when it moves nothing, the
 * row is read in the same transaction to say why. Roles are sessions: the grant that created a pairing reveals
 * and consumes it, the grant that joined it approves it, and any other session of the user does not see it.
 */
import {
  checkPairingPublicKey,
  fromBase64,
  generatePairingCode,
  normalizePairingCode,
  PAIRING_TTL_SECONDS,
  pairingCodeHash,
  pairingCommitmentMatches,
  toHex,
  type PairingStatus,
  type PairingSummary,
  type PairingView,
} from "@latchkey/core";
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { countAction, uncountAction, type AccountLimit } from "../api/account-limits.js";
import { insertActorAudit } from "../audit/data.js";
import { Abort, abortableTransaction } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import * as data from "./data.js";

/** What the service needs. */
export interface PairingServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  /** Ids of pairings and audit rows. */
  randomId: () => string;
  /** The CSPRNG pairing codes are drawn from (tests pass a fixed one to force a collision). */
  randomBytes?: (length: number) => Uint8Array;
}

/** Who is asking: the user, the session (OAuth grant) of the bearer token, and the client's address. */
export interface PairingActor {
  userId: string;
  grantId: string;
  ip: string;
}

/**
 * The step-up proof a create spends. The route verified it (scope `vault:pair`, this user and session); the
 * service records its jti in the create's transaction, so a create that fails does not burn it.
 */
export interface StepUpSpend {
  /** How the proof was obtained (`password` or `password+totp`), for the audit row. */
  method: string;
  /** Records the proof as used in `trx`; false when it already was (then nothing is created). */
  record(trx: Kysely<Database>): Promise<boolean>;
}

/** Unfinished, unexpired pairings one user may have at once. */
export const MAX_UNFINISHED_PAIRINGS = 10;
/** Wrong codes one user may send per window before join answers 429. */
export const JOIN_FAILURE_LIMIT = 10;
/** The window of {@link JOIN_FAILURE_LIMIT}. */
export const JOIN_WINDOW_MS = 15 * 60 * 1000;
/** Wrong codes, counted per account (api/account-limits.ts). */
const JOIN_LIMIT: AccountLimit = {
  action: "pairing.join",
  limit: JOIN_FAILURE_LIMIT,
  windowMs: JOIN_WINDOW_MS,
};
/** How long finished pairings stay listed (and stored). */
export const PAIRING_LIST_MS = 24 * 60 * 60 * 1000;
/** Most pairings the list answers. */
export const MAX_LISTED_PAIRINGS = 100;
/** Codes drawn before create gives up: a collision needs one of the user's ≤10 pending codes out of 31^6. */
const CODE_TRIES = 8;

/** Why a move was refused although the pairing is the caller's. */
export type FailReason =
  /** The pairing is past its expiry. */
  | "expired"
  /** The step belongs to the pairing's other session. */
  | "other-session"
  /** A join from the session that created the pairing: approving needs another machine. */
  | "own-session"
  /** The revealed key or nonce does not match the commitment (or is no P-256 key): the pairing is revoked. */
  | "mismatch"
  /** The pairing is in another state than the step needs. */
  | "state";

/** A refused move: 404 when the pairing is not the caller's to see, else 409 naming its state. */
export type MoveFailure =
  { kind: "not-found" } | { kind: "failed"; reason: FailReason; status: PairingStatus };

/** Result of create. */
export type CreateOutcome =
  | { kind: "created"; pairingId: string; code: string; expiresAt: string }
  | { kind: "step-up-required" }
  | { kind: "too-many"; retryAfterSeconds: number };

/** Result of join. */
export type JoinOutcome =
  | { kind: "ok"; view: PairingView }
  | { kind: "invalid-key" }
  | { kind: "rate-limited"; retryAfterSeconds: number }
  | MoveFailure;

/** Result of reveal, approve and revoke. */
export type MoveOutcome = { kind: "ok"; view: PairingView } | MoveFailure;

/** Result of consume. */
export type ConsumeOutcome = { kind: "consumed"; pairingId: string; sealedKey: string } | MoveFailure;

/** Builds the service. */
export function createPairingService(deps: PairingServiceDeps) {
  const { db } = deps;

  const transaction = <T>(body: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
    abortableTransaction(db, body);

  const audit = (
    trx: Kysely<Database>,
    at: string,
    actor: PairingActor,
    action: string,
    metadata: Record<string, unknown>,
    coalesceKey?: string,
  ): Promise<void> =>
    insertActorAudit(trx, {
      id: deps.randomId(),
      actor,
      action,
      createdAt: at,
      metadata,
      ...(coalesceKey === undefined ? {} : { coalesceKey }),
    });

  /**
   * Why `move` (a step of `role`'s session on pairing `id`) moved nothing: the pairing is absent, another user's or
   * none of the caller's session's business (all three: not found), past its expiry, the other session's step, or
   * in another state.
   */
  async function whyNot(
    trx: Kysely<Database>,
    id: string,
    actor: PairingActor,
    role: "creator" | "approver" | "either",
    now: string,
  ): Promise<MoveFailure> {
    const row = await data.findPairing(trx, id, actor.userId);
    const mine = row === undefined ? null : roleOf(row, actor.grantId);
    if (row === undefined || mine === null) return { kind: "not-found" };
    const status = effectiveStatus(row, now);
    if (status === "expired") return { kind: "failed", reason: "expired", status };
    if (role !== "either" && mine !== role) return { kind: "failed", reason: "other-session", status };
    return { kind: "failed", reason: "state", status };
  }

  /**
   * Starts a pairing for the actor's session: a fresh code, unique among the user's pending pairings, stored as its
   * hash; the step-up proof is recorded in the same transaction.
   */
  async function create(
    actor: PairingActor,
    request: { label: string; commitment: string },
    stepUp: StepUpSpend,
  ): Promise<CreateOutcome> {
    const now = deps.now();
    const at = now.toISOString();
    const expiresAt = new Date(now.getTime() + PAIRING_TTL_SECONDS * 1000).toISOString();
    // Housekeeping first, outside the create's transaction: pairings past their expiry lose their sealed key and
    // free their code; those a day past it are forgotten.
    await data.sweepExpired(db, at, new Date(now.getTime() - PAIRING_LIST_MS).toISOString());
    return transaction(async (trx): Promise<CreateOutcome> => {
      if ((await data.countUnfinished(trx, actor.userId, at)) >= MAX_UNFINISHED_PAIRINGS) {
        return { kind: "too-many", retryAfterSeconds: PAIRING_TTL_SECONDS };
      }
      if (!(await stepUp.record(trx))) return { kind: "step-up-required" };
      const pairingId = deps.randomId();
      for (let tries = 0; tries < CODE_TRIES; tries++) {
        const code = generatePairingCode(deps.randomBytes);
        const codeHash = toHex(await pairingCodeHash(code));
        const inserted = await data.insertPairing(trx, {
          id: pairingId,
          user_id: actor.userId,
          code_hash: codeHash,
          label: request.label,
          commitment: request.commitment,
          status: "pending",
          creator_grant: actor.grantId,
          approver_grant: null,
          approver_key: null,
          new_device_key: null,
          nonce: null,
          sealed_key: null,
          created_at: at,
          expires_at: expiresAt,
          updated_at: at,
        });
        if (!inserted) continue;
        await audit(trx, at, actor, "pairing.create", {
          pairingId,
          codeHash,
          label: request.label,
          stepUpMethod: stepUp.method,
        });
        return { kind: "created", pairingId, code, expiresAt };
      }
      // Rolls the proof's record back with everything else: the client may try again with it.
      throw new Error(`no free pairing code after ${CODE_TRIES} draws`);
    });
  }

  /**
   * The approving machine joins the user's pending pairing with this code. Wrong codes count against the user's
   * window before the code is looked up, so concurrent guesses cannot all pass one check; a code that names one
   * of the user's pairings does not count.
   */
  async function join(actor: PairingActor, typedCode: string, approverKey: string): Promise<JoinOutcome> {
    const code = normalizePairingCode(typedCode);
    // Not a code at all (the alphabet and length are public): nothing to look up, nothing guessed.
    if (code === null) return { kind: "not-found" };
    try {
      await checkPairingPublicKey(fromBase64(approverKey));
    } catch {
      return { kind: "invalid-key" };
    }
    const codeHash = toHex(await pairingCodeHash(code));
    const now = deps.now();
    const at = now.toISOString();
    try {
      return await db.transaction().execute(async (trx): Promise<JoinOutcome> => {
        const counted = await countAction(trx, actor.userId, JOIN_LIMIT, now);
        if (!counted.allowed) {
          throw new Abort<JoinOutcome>({
            kind: "rate-limited",
            retryAfterSeconds: counted.retryAfterSeconds,
          });
        }
        const joined = await data.joinPairing(trx, {
          userId: actor.userId,
          codeHash,
          grantId: actor.grantId,
          approverKey,
          now: at,
        });
        if (joined !== undefined) {
          await uncountAction(trx, actor.userId, JOIN_LIMIT);
          await audit(trx, at, actor, "pairing.join", { pairingId: joined.id });
          return { kind: "ok", view: viewOf(joined, at) };
        }
        const found = await data.findPairingByCode(trx, actor.userId, codeHash);
        if (found === undefined) {
          await audit(
            trx,
            at,
            actor,
            "pairing.join_refused",
            { reason: "wrong_code" },
            refusalKey(actor, "wrong_code", now),
          );
          return { kind: "not-found" };
        }
        await uncountAction(trx, actor.userId, JOIN_LIMIT);
        const status = effectiveStatus(found, at);
        if (status === "expired") return { kind: "failed", reason: "expired", status };
        if (status === "pending" && found.creator_grant === actor.grantId) {
          return { kind: "failed", reason: "own-session", status };
        }
        return { kind: "failed", reason: "state", status };
      });
    } catch (err) {
      if (!(err instanceof Abort)) throw err;
      // The refused attempt was rolled back with its count (hammering does not extend the window); its audit
      // row is coalesced per user and window, so it cannot grow the log without bound either.
      await audit(
        db,
        at,
        actor,
        "pairing.join_refused",
        { reason: "rate_limited" },
        refusalKey(actor, "rate_limited", now),
      );
      return err.outcome as JoinOutcome;
    }
  }

  /**
   * The new device opens its commitment. A key or nonce that does not match it (or a key that is no P-256 point)
   * revokes the pairing: somebody may be relaying, and the approving machine must never see a key to seal to.
   */
  async function reveal(
    actor: PairingActor,
    id: string,
    request: { publicKey: string; nonce: string },
  ): Promise<MoveOutcome> {
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<MoveOutcome> => {
      const row = await data.findPairing(trx, id, actor.userId);
      if (row === undefined || row.creator_grant !== actor.grantId)
        return whyNot(trx, id, actor, "creator", at);
      // The commitment never changes once created, so checking it against this read is checking it, whatever
      // the state: the move below still requires `joined`.
      const move = {
        id,
        userId: actor.userId,
        role: "creator",
        grantId: actor.grantId,
        from: "joined",
        now: at,
      } as const;
      const problem = await revealProblem(row.commitment, request.publicKey, request.nonce);
      if (problem !== null) {
        const revoked = await data.movePairing(trx, { ...move, to: "revoked", set: { sealed_key: null } });
        if (revoked === undefined) return whyNot(trx, id, actor, "creator", at);
        await audit(trx, at, actor, "pairing.reveal_mismatch", { pairingId: id, check: problem });
        return { kind: "failed", reason: "mismatch", status: "revoked" };
      }
      const revealed = await data.movePairing(trx, {
        ...move,
        to: "revealed",
        set: { new_device_key: request.publicKey, nonce: request.nonce },
      });
      if (revealed === undefined) return whyNot(trx, id, actor, "creator", at);
      await audit(trx, at, actor, "pairing.reveal", { pairingId: id });
      return { kind: "ok", view: viewOf(revealed, at) };
    });
  }

  /** The approving machine sends the sealed wrapping key: revealed → approved, from the session that joined. */
  async function approve(actor: PairingActor, id: string, sealedKey: string): Promise<MoveOutcome> {
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<MoveOutcome> => {
      const approved = await data.movePairing(trx, {
        id,
        userId: actor.userId,
        role: "approver",
        grantId: actor.grantId,
        from: "revealed",
        to: "approved",
        set: { sealed_key: sealedKey },
        now: at,
      });
      if (approved === undefined) return whyNot(trx, id, actor, "approver", at);
      await audit(trx, at, actor, "pairing.approve", { pairingId: id });
      return { kind: "ok", view: viewOf(approved, at) };
    });
  }

  /** The new device takes the sealed key, once: approved → consumed, and the key is gone when this commits. */
  async function consume(actor: PairingActor, id: string): Promise<ConsumeOutcome> {
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<ConsumeOutcome> => {
      const consumed = await data.movePairing(trx, {
        id,
        userId: actor.userId,
        role: "creator",
        grantId: actor.grantId,
        from: "approved",
        to: "consumed",
        now: at,
      });
      if (consumed === undefined) return whyNot(trx, id, actor, "creator", at);
      // Approve always stores one; a consumed row without it would be a fault of the database.
      if (consumed.sealed_key === null) throw new Error("an approved pairing has no sealed key");
      await data.clearSealedKey(trx, id);
      await audit(trx, at, actor, "pairing.consume", { pairingId: id });
      return { kind: "consumed", pairingId: id, sealedKey: consumed.sealed_key };
    });
  }

  /** Cancels one unfinished pairing, from either of its sessions (Ctrl-C on either machine). */
  async function revoke(actor: PairingActor, id: string): Promise<MoveOutcome> {
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<MoveOutcome> => {
      const revoked = await data.revokePairing(trx, {
        id,
        userId: actor.userId,
        grantId: actor.grantId,
        now: at,
      });
      if (revoked === undefined) return whyNot(trx, id, actor, "either", at);
      await audit(trx, at, actor, "pairing.revoke", { pairingId: id });
      return { kind: "ok", view: viewOf(revoked, at) };
    });
  }

  /** Cancels every unfinished pairing of the user, from any of their sessions; how many. */
  async function revokeAll(actor: PairingActor): Promise<number> {
    const at = deps.now().toISOString();
    return db.transaction().execute(async (trx) => {
      const count = await data.revokeAllPairings(trx, actor.userId, at);
      await audit(trx, at, actor, "pairing.revoke_all", { count });
      return count;
    });
  }

  /** The pairing as one of its two sessions sees it; null for anyone else (absent and foreign look the same). */
  async function get(actor: PairingActor, id: string): Promise<PairingView | null> {
    const row = await data.findPairing(db, id, actor.userId);
    if (row === undefined || roleOf(row, actor.grantId) === null) return null;
    return viewOf(row, deps.now().toISOString());
  }

  /** The user's pairings of the last day (the pending ones among them), newest first. */
  async function list(actor: PairingActor): Promise<PairingSummary[]> {
    const now = deps.now();
    const since = new Date(now.getTime() - PAIRING_LIST_MS).toISOString();
    const rows = await data.listPairings(db, actor.userId, since, MAX_LISTED_PAIRINGS);
    return rows.map((row) => ({
      pairingId: row.id,
      status: effectiveStatus(row, now.toISOString()),
      label: row.label,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
    }));
  }

  return { create, join, reveal, approve, consume, revoke, revokeAll, get, list };
}

/** The pairing service's interface. */
export type PairingService = ReturnType<typeof createPairingService>;

/** Which of the pairing's sessions `grantId` is, if any. */
function roleOf(row: data.PairingRow, grantId: string): "creator" | "approver" | null {
  if (row.creator_grant === grantId) return "creator";
  if (row.approver_grant !== null && row.approver_grant === grantId) return "approver";
  return null;
}

/** The state a client sees: an unfinished pairing past its expiry is expired, whatever the row still says. */
function effectiveStatus(row: data.PairingRow, now: string): PairingStatus {
  return data.UNFINISHED.includes(row.status) && row.expires_at <= now ? "expired" : row.status;
}

function viewOf(row: data.PairingRow, now: string): PairingView {
  return {
    pairingId: row.id,
    status: effectiveStatus(row, now),
    label: row.label,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    commitment: row.commitment,
    approverKey: row.approver_key,
    newDeviceKey: row.new_device_key,
    nonce: row.nonce,
  };
}

/** What is wrong with a reveal, or null: `commitment` when the key and nonce are not what was committed to. */
async function revealProblem(
  commitment: string,
  publicKey: string,
  nonce: string,
): Promise<"commitment" | "public_key" | null> {
  const key = fromBase64(publicKey);
  if (!(await pairingCommitmentMatches(fromBase64(commitment), key, fromBase64(nonce)))) return "commitment";
  try {
    await checkPairingPublicKey(key);
  } catch {
    return "public_key";
  }
  return null;
}

/** One coalesced audit row per user, reason and window of refused joins. */
function refusalKey(actor: PairingActor, reason: string, now: Date): string {
  const subject = [actor.userId, reason, Math.floor(now.getTime() / JOIN_WINDOW_MS)];
  return `pairing.join_refused:${createHash("sha256").update(JSON.stringify(subject)).digest("base64url")}`;
}
