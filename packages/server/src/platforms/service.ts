/**
 * The platform connections service (docs/platforms.md, "Connections"): list, connect, disconnect and record what a
 * push or a pull did, for a vault copy — the caller's personal copy, or an organisation's — with dependencies
 * narrowed to what it uses. Callers (routes.ts) have validated the bodies and authenticated the session; every
 * outcome a client must tell apart is a value here, not an exception.
 *
 * The server never opens a credential: the CLI seals it with the copy's vault key. So whoever may pull a copy can
 * unseal its connections' credentials and push with them; the roles here decide who may change the connections
 * (maintainer or stronger for an organisation's copy) and who may read them and record a push or pull (member or
 * stronger, the same as who may pull: refusing their record would only keep their push out of the audit log).
 */
import type { PlatformConfig, PlatformStatusRequest } from "@latchkey/core";
import type { Kysely } from "kysely";
import {
  insertCopyAudit,
  resolveCopy,
  type CopyNotFound,
  type CopyTarget,
  type OrgCopiesRemoved,
  type OrgCopyAccess,
  type OrgCopyResealed,
  type OrgDenied,
} from "../api/copies.js";
import { insertAudit } from "../audit/data.js";
import { Abort, abortableTransaction } from "../db/abort.js";
import type { Database } from "../db/schema.js";
import { findCopyKeyVersion, type CopyRef } from "../db/copies.js";
import * as data from "./data.js";

export type { CopyNotFound, CopyTarget, OrgCopiesRemoved, OrgCopyResealed, OrgDenied };

/** A connection as the routes answer it (data access's record, passed through). */
export type ConnectionRecord = data.ConnectionRecord;

/** What an organisation copy request may do: read its connections, record a push or pull, or change them. */
export type PlatformNeed = "read" | "record" | "manage";

/** Who may read, record on or manage an organisation copy's connections. */
export type PlatformOrgAccess = OrgCopyAccess<PlatformNeed>;

/** What the service needs. */
export interface PlatformServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  orgAccess: PlatformOrgAccess;
}

/** Who is asking. */
export interface PlatformActor {
  userId: string;
  clientId: string;
  ip: string;
}

/** The copy has no connection of that name. */
export type NotConnected = { kind: "not-connected" };
/** The copy has a connection of that name already (or the id is taken). */
export type NameTaken = { kind: "name-taken" };
/**
 * A connection's credential was sealed with another key than the copy's now (`current`; null when its keys record
 * none): a stale machine's, which a rotation retired.
 */
export type KeyStale = { kind: "key-stale"; sent: number; current: number | null };
/** A status names a version the copy does not have yet. */
export type VersionAhead = { kind: "version-ahead"; head: number };

/** A successful result, or why not. */
export type Outcome<T, R = never> = { kind: "ok"; value: T } | OrgDenied | CopyNotFound | R;

/** A copy's connections, and which copy. */
export interface CopyConnections {
  vaultId: string;
  org: string | null;
  connections: data.ConnectionRecord[];
}

/** One connection, and which copy. */
export interface CopyConnection {
  vaultId: string;
  org: string | null;
  connection: data.ConnectionRecord;
}

/** What connecting takes (validated by the route). */
export interface ConnectInput {
  id: string;
  name: string;
  environment: string;
  config: PlatformConfig;
  sealedCredential: string;
  /** The copy's key version whose key sealed `sealedCredential`. */
  keyVersion: number;
}

/** Builds the service. */
export function createPlatformService(deps: PlatformServiceDeps) {
  const { db } = deps;

  /** The copy `target` names as `actor` may act on it with `need`, and its head's version; a refusal otherwise. */
  async function resolve(
    trx: Kysely<Database>,
    actor: PlatformActor,
    target: CopyTarget,
    need: PlatformNeed,
    lockAt?: string,
  ): Promise<{ copy: CopyRef; version: number } | OrgDenied | CopyNotFound> {
    const found = await resolveCopy(trx, deps.orgAccess, { userId: actor.userId, target, need, lockAt });
    return "kind" in found ? found : { copy: found.copy, version: found.head.version };
  }

  const orgOf = (copy: CopyRef): string | null => ("slug" in copy ? copy.slug : null);

  const audit = (
    trx: Kysely<Database>,
    actor: PlatformActor,
    action: string,
    copy: CopyRef,
    version: number | null,
    at: string,
    metadata: Record<string, unknown>,
  ): Promise<void> =>
    insertCopyAudit(trx, { id: deps.randomId(), actor, action, copy, version, at, metadata });

  /** The copy's connections. */
  async function list(actor: PlatformActor, target: CopyTarget): Promise<Outcome<CopyConnections>> {
    const found = await resolve(db, actor, target, "read");
    if ("kind" in found) return found;
    const connections = await data.listConnections(db, found.copy);
    return {
      kind: "ok",
      value: { vaultId: found.copy.vaultId, org: orgOf(found.copy), connections },
    };
  }

  /**
   * Makes a connection of the copy, with its `platform.connect` audit row, when its credential was sealed with the
   * copy's key now: read under the organisation's row lock, which a share that rotates the key takes too.
   */
  async function connect(
    actor: PlatformActor,
    target: CopyTarget,
    input: ConnectInput,
  ): Promise<Outcome<CopyConnection, NameTaken | KeyStale>> {
    const at = deps.now().toISOString();
    return abortableTransaction(db, async (trx) => {
      const found = await resolve(trx, actor, target, "manage", at);
      if ("kind" in found) return found;
      const { copy } = found;
      const current = await findCopyKeyVersion(trx, copy);
      if (current !== input.keyVersion)
        return { kind: "key-stale", sent: input.keyVersion, current } as const;
      const inserted = await data.insertConnection(trx, copy, {
        id: input.id,
        name: input.name,
        environment: input.environment,
        config: input.config,
        sealedCredential: input.sealedCredential,
        createdBy: actor.userId,
        at,
      });
      if (!inserted) return { kind: "name-taken" } as const;
      await audit(trx, actor, "platform.connect", copy, found.version, at, {
        connectionId: input.id,
        name: input.name,
        platform: input.config.platform,
        environment: input.environment,
      });
      const connection = await data.findConnection(trx, copy, input.name);
      if (connection === undefined) throw new Error("the platform connection just written is not there");
      return { kind: "ok", value: { vaultId: copy.vaultId, org: orgOf(copy), connection } } as const;
    });
  }

  /** Deletes the connection `name` with its sealed credential, with its `platform.disconnect` audit row. */
  async function disconnect(
    actor: PlatformActor,
    target: CopyTarget,
    name: string,
  ): Promise<Outcome<true, NotConnected>> {
    const at = deps.now().toISOString();
    return abortableTransaction(db, async (trx) => {
      const found = await resolve(trx, actor, target, "manage", at);
      if ("kind" in found) return found;
      const connection = await data.findConnection(trx, found.copy, name);
      if (connection === undefined) return { kind: "not-connected" } as const;
      await data.deleteConnection(trx, connection.id);
      await audit(trx, actor, "platform.disconnect", found.copy, found.version, at, {
        connectionId: connection.id,
        name,
        platform: connection.platform,
        environment: connection.environment,
      });
      return { kind: "ok", value: true } as const;
    });
  }

  /**
   * Records what a push (the connection's last push, and a `platform.push` audit row) or a pull (a `platform.pull`
   * audit row only) from the caller's machine did.
   */
  async function record(
    actor: PlatformActor,
    target: CopyTarget,
    name: string,
    status: PlatformStatusRequest,
  ): Promise<Outcome<CopyConnection, NotConnected | VersionAhead>> {
    const at = deps.now().toISOString();
    const refuse = (outcome: NotConnected | VersionAhead): never => {
      throw new Abort(outcome);
    };
    return abortableTransaction(db, async (trx) => {
      const found = await resolve(trx, actor, target, "record", at);
      if ("kind" in found) return found;
      if (status.version > found.version) return refuse({ kind: "version-ahead", head: found.version });
      const connection = await data.findConnection(trx, found.copy, name);
      if (connection === undefined) return refuse({ kind: "not-connected" });
      if (status.operation === "push") {
        await data.recordPush(trx, connection.id, {
          at,
          version: status.version,
          added: status.added,
          changed: status.changed,
          removed: status.removed,
          outcome: status.outcome,
          message: status.message,
          by: actor.userId,
        });
      }
      await audit(trx, actor, `platform.${status.operation}`, found.copy, status.version, at, {
        connectionId: connection.id,
        name,
        platform: connection.platform,
        environment: connection.environment,
        added: status.added,
        changed: status.changed,
        removed: status.removed,
        outcome: status.outcome,
      });
      const updated = await data.findConnection(trx, found.copy, name);
      return {
        kind: "ok",
        value: { vaultId: found.copy.vaultId, org: orgOf(found.copy), connection: updated! },
      } as const;
    });
  }

  return { list, connect, disconnect, record };
}

/** The platform connections service's interface. */
export type PlatformService = ReturnType<typeof createPlatformService>;

/**
 * Deletes the connections of the copies an organisation change removes, each with a `platform.disconnect` audit row
 * that names the change, in its transaction `trx`.
 */
export function removeOrgCopyConnections(randomId: () => string) {
  return async (trx: Kysely<Database>, event: OrgCopiesRemoved): Promise<void> => {
    const deleted = await data.deleteOrgConnections(trx, event.orgId, event.vaultId);
    for (const connection of deleted) {
      await insertAudit(trx, {
        id: randomId(),
        userId: event.actorUserId,
        action: "platform.disconnect",
        vaultId: connection.vaultId,
        orgId: event.orgId,
        version: null,
        createdAt: event.at,
        metadata: {
          connectionId: connection.id,
          name: connection.name,
          platform: connection.platform,
          cause: event.cause,
          orgId: event.orgId,
        },
      });
    }
  };
}

/**
 * Replaces the sealed credentials of an organisation copy's connections with those its rotation re-sealed under the
 * new vault key, in the share's transaction `trx`: `platform.reseal` audit rows for those, and the connections whose
 * credential the rotating machine could not open deleted with a `platform.disconnect` row (cause `org.vault.share`).
 * The ids re-sealed and dropped must be exactly the copy's connections (a connection made or disconnected since the
 * machine listed them would otherwise keep a credential under the old key, or lose its row): `connections-changed`
 * otherwise, having written nothing, and the caller rolls the share back.
 */
export function resealOrgCopyConnections(randomId: () => string) {
  return async (trx: Kysely<Database>, event: OrgCopyResealed): Promise<"ok" | "connections-changed"> => {
    const { copy, credentials } = event;
    const current = new Map(
      (await data.listConnections(trx, copy)).map((c) => [c.id.toLowerCase(), c] as const),
    );
    const named = [...credentials.resealed.map((c) => c.id), ...credentials.dropped].map((id) =>
      id.toLowerCase(),
    );
    if (named.length !== current.size || named.some((id) => !current.has(id))) return "connections-changed";
    const audit = (action: string, connection: data.ConnectionRecord, extra: Record<string, unknown>) =>
      insertCopyAudit(trx, {
        id: randomId(),
        actor: event.actor,
        action,
        copy,
        version: event.version,
        at: event.at,
        metadata: {
          connectionId: connection.id,
          name: connection.name,
          platform: connection.platform,
          environment: connection.environment,
          ...extra,
        },
      });
    for (const resealed of credentials.resealed) {
      const connection = current.get(resealed.id.toLowerCase())!;
      await data.updateSealedCredential(trx, connection.id, resealed.sealedCredential);
      await audit("platform.reseal", connection, {});
    }
    for (const id of credentials.dropped) {
      const connection = current.get(id.toLowerCase())!;
      await data.deleteConnection(trx, connection.id);
      await audit("platform.disconnect", connection, {
        cause: "org.vault.share",
        reason: "credential-unreadable",
      });
    }
    return "ok";
  };
}
