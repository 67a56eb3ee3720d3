/**
 * The sharing-keys service (docs/teams.md, "Sharing keys"): the state of an account's key as a machine sees it, the
 * initial set and the rotation, with dependencies narrowed to what it uses. Callers (routes.ts) have validated the
 * bodies, authenticated the session and verified the step-up proof; every outcome a client must tell apart is a
 * value here, not an exception.
 *
 * A key is never overwritten without a rotation's own proof: a stolen session could otherwise plant a key and read
 * the next share. The rotation replaces the key, drops every vault key wrapped for the old one, writes its audit
 * rows and queues its notices in one transaction, so a failure anywhere leaves all of it as it was.
 */
import {
  fromBase64,
  isUsableSharingPublicKey,
  sharingKeyFingerprint,
  type SharingKeyState,
} from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertActorAudit } from "../audit/data.js";
import { Abort, abortableTransaction } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import * as data from "./data.js";

/** A vault key wrapped for an account's sharing key, as the organisations slice lists them. */
export interface WrappedKeyRef {
  orgId: string;
  slug: string;
  vaultId: string;
  vaultName: string;
}

/**
 * The organisations' wrapped keys of one account, which a rotation makes useless: read and deleted through the
 * organisations slice (app.ts wires orgs/data.ts in), so this slice writes no SQL on its tables.
 */
export interface WrappedKeyAccess {
  /** Every organisation vault key wrapped for `userId`. */
  list(db: Kysely<Database>, userId: string): Promise<WrappedKeyRef[]>;
  /** Deletes them all, in the caller's transaction; how many went. */
  delete(trx: Kysely<Database>, userId: string): Promise<number>;
}

/** A committed-with-the-rotation change to tell people about. */
export interface SharingKeyRotatedEvent {
  /** The e-mail of the account whose key was replaced. */
  email: string;
  /** When (ISO-8601), the audit rows' time. */
  at: string;
  /** The organisations whose wrapped keys for the account were deleted. */
  orgs: readonly { orgId: string; slug: string }[];
}

/** What the service needs. */
export interface SharingKeyServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  /** Ids of audit rows. */
  randomId: () => string;
  wrappedKeys: WrappedKeyAccess;
  /**
   * Queues the notices of a rotation (the outbox's, wired in app.ts), in the rotation's transaction: a throw rolls
   * the rotation back, and a rotation rolled back queues nothing.
   */
  onRotated: (trx: Kysely<Database>, event: SharingKeyRotatedEvent) => Promise<void>;
}

/** Who is asking: the user, their e-mail (for the notices) and the client's address (for audit rows). */
export interface SharingKeyActor {
  userId: string;
  email: string;
  ip: string;
}

/**
 * The step-up proof a write spends. The route verified it (its scope, this user and session); the service records
 * its jti in the write's transaction, so a write that fails does not burn it.
 */
export interface StepUpSpend {
  /** How the proof was obtained (`password` or `password+totp`), for the audit row. */
  method: string;
  /** Records the proof as used in `trx`; false when it already was (then nothing is written). */
  record(trx: Kysely<Database>): Promise<boolean>;
}

/** The state answer. */
export interface StateView {
  state: SharingKeyState;
  publicKey: string | null;
  fingerprint: string | null;
}

/** A registered key as the answers show it. */
export interface KeyView {
  publicKey: string;
  fingerprint: string;
  createdAt: string;
  rotatedAt: string | null;
}

/** Result of the initial set. */
export type SetOutcome =
  { kind: "set"; key: KeyView } | { kind: "exists" } | { kind: "invalid-key" } | { kind: "step-up-required" };

/** One organisation whose wrapped keys for the caller a rotation drops, and those keys' vaults. */
export interface OrgImpact {
  orgId: string;
  slug: string;
  vaults: { vaultId: string; name: string }[];
}

/** Result of a rotation. */
export type RotateOutcome =
  | {
      kind: "rotated";
      key: KeyView;
      previousFingerprint: string | null;
      orgs: OrgImpact[];
      wrappedKeysDeleted: number;
    }
  /** The key sent is the registered one already: nothing changed (a rerun after a lost answer). */
  | { kind: "unchanged"; key: KeyView }
  /** Another rotation replaced the key between this one's read and its write: nothing changed. */
  | { kind: "raced" }
  | { kind: "invalid-key" }
  | { kind: "step-up-required" };

const view = (row: data.SharingKeyRow): KeyView => ({
  publicKey: row.public_key,
  fingerprint: row.fingerprint,
  createdAt: row.created_at,
  rotatedAt: row.rotated_at,
});

/** Builds the service. */
export function createSharingKeyService(deps: SharingKeyServiceDeps) {
  const { db } = deps;

  const transaction = <T>(body: (trx: Kysely<Database>) => Promise<T>): Promise<T> =>
    abortableTransaction(db, body);

  const audit = (
    trx: Kysely<Database>,
    at: string,
    actor: SharingKeyActor,
    action: string,
    metadata: Record<string, unknown>,
    orgId: string | null = null,
  ): Promise<void> =>
    insertActorAudit(trx, { id: deps.randomId(), actor, action, createdAt: at, metadata, orgId });

  /** The key as bytes and its fingerprint, or null when no one could wrap for it. */
  async function checked(publicKey: string): Promise<{ fingerprint: string } | null> {
    const bytes = fromBase64(publicKey);
    if (!(await isUsableSharingPublicKey(bytes))) return null;
    return { fingerprint: await sharingKeyFingerprint(bytes) };
  }

  /**
   * The state of the actor's key as seen from a machine whose key has `fingerprint` (null: the machine has none).
   * The account having no key is `needs-initial-set` whatever the machine holds.
   */
  async function state(actor: SharingKeyActor, fingerprint: string | null): Promise<StateView> {
    const row = await data.findSharingKey(db, actor.userId);
    if (row === undefined) return { state: "needs-initial-set", publicKey: null, fingerprint: null };
    return {
      state: fingerprint === row.fingerprint ? "matches" : "rotation-required",
      publicKey: row.public_key,
      fingerprint: row.fingerprint,
    };
  }

  /** The account's first key, with the proof spent in the same transaction; refused when it has one. */
  async function set(actor: SharingKeyActor, publicKey: string, stepUp: StepUpSpend): Promise<SetOutcome> {
    const key = await checked(publicKey);
    if (key === null) return { kind: "invalid-key" };
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<SetOutcome> => {
      // Checked before the proof is spent: a refused set does not burn it.
      if ((await data.findSharingKey(trx, actor.userId)) !== undefined) return { kind: "exists" };
      if (!(await stepUp.record(trx))) return { kind: "step-up-required" };
      const row: data.SharingKeyRow = {
        user_id: actor.userId,
        public_key: publicKey,
        fingerprint: key.fingerprint,
        created_at: at,
        rotated_at: null,
      };
      // The read above and this insert are not one statement: a concurrent set can land between them, and then
      // the conditional insert refuses, and the proof recorded above goes back with the rollback.
      if (!(await data.insertSharingKey(trx, row))) throw new Abort<SetOutcome>({ kind: "exists" });
      await audit(trx, at, actor, "vault.public_key_set", {
        fingerprint: key.fingerprint,
        stepUp: stepUp.method,
      });
      return { kind: "set", key: view(row) };
    });
  }

  /**
   * Replaces the account's key (or sets it, when it has none) and, in the same transaction: spends the proof,
   * deletes every vault key wrapped for the caller in any organisation, writes `vault.public_key_rotated` and one
   * impact row per organisation affected, and queues the notices.
   */
  async function rotate(
    actor: SharingKeyActor,
    publicKey: string,
    stepUp: StepUpSpend,
  ): Promise<RotateOutcome> {
    const key = await checked(publicKey);
    if (key === null) return { kind: "invalid-key" };
    const at = deps.now().toISOString();
    return transaction(async (trx): Promise<RotateOutcome> => {
      const current = await data.findSharingKey(trx, actor.userId);
      if (current !== undefined && current.fingerprint === key.fingerprint) {
        return { kind: "unchanged", key: view(current) };
      }
      if (!(await stepUp.record(trx))) return { kind: "step-up-required" };
      const row: data.SharingKeyRow = {
        user_id: actor.userId,
        public_key: publicKey,
        fingerprint: key.fingerprint,
        created_at: current?.created_at ?? at,
        rotated_at: current === undefined ? null : at,
      };
      const moved =
        current === undefined
          ? await data.insertSharingKey(trx, row)
          : await data.replaceSharingKey(trx, {
              userId: actor.userId,
              fromFingerprint: current.fingerprint,
              publicKey,
              fingerprint: key.fingerprint,
              at,
            });
      if (!moved) throw new Abort<RotateOutcome>({ kind: "raced" });
      const orgs = await listImpact(trx, actor.userId);
      const wrappedKeysDeleted = await deps.wrappedKeys.delete(trx, actor.userId);
      const previousFingerprint = current?.fingerprint ?? null;
      await audit(trx, at, actor, "vault.public_key_rotated", {
        fingerprint: key.fingerprint,
        previousFingerprint,
        orgs: orgs.length,
        wrappedKeysDeleted,
        stepUp: stepUp.method,
      });
      for (const org of orgs) {
        await audit(
          trx,
          at,
          actor,
          "org.member_sharing_key_rotated",
          {
            slug: org.slug,
            vaults: org.vaults.map((v) => v.vaultId),
            fingerprint: key.fingerprint,
            previousFingerprint,
          },
          org.orgId,
        );
      }
      await deps.onRotated(trx, { email: actor.email, at, orgs });
      return { kind: "rotated", key: view(row), previousFingerprint, orgs, wrappedKeysDeleted };
    });
  }

  /** The organisations and vaults whose keys are wrapped for `userId`, by organisation. */
  async function listImpact(from: Kysely<Database>, userId: string): Promise<OrgImpact[]> {
    const byOrg = new Map<string, OrgImpact>();
    for (const key of await deps.wrappedKeys.list(from, userId)) {
      const org = byOrg.get(key.orgId) ?? { orgId: key.orgId, slug: key.slug, vaults: [] };
      org.vaults.push({ vaultId: key.vaultId, name: key.vaultName });
      byOrg.set(key.orgId, org);
    }
    return [...byOrg.values()];
  }

  /** What a rotation would take away now: the organisations and vaults whose keys are wrapped for the caller. */
  async function impact(actor: SharingKeyActor): Promise<OrgImpact[]> {
    return listImpact(db, actor.userId);
  }

  return { state, set, rotate, impact };
}

/** The sharing-keys service. */
export type SharingKeyService = ReturnType<typeof createSharingKeyService>;
