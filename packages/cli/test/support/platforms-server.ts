// A fake of the personal copy's routes a platform push needs (packages/server/src/platforms; docs/platforms.md,
// "Connections"): the personal push and pull of a vault, and its platform connections — list, connect, disconnect,
// record a status. Every body is checked with core's schemas, as the real routes check it: one the server would
// refuse is answered 400 and kept in `refusals`, so a test can assert that none was sent. It plugs into a sharing
// machine's `extra` routes (test/support/sharing-key-server.ts), which sign its 2xx answers.
import {
  PERSONAL_COPY_KEY_VERSION,
  checkSchema,
  platformConnectRequestSchema,
  platformStatusRequestSchema,
  pushRequestSchema,
  type PlatformConnection,
  type PlatformStatusRequest,
  type PushRequest,
  type WireSchema,
} from "@latchkey/core";
import type { SeenRequest } from "./sharing-key-server.js";

/** The fake's state, which tests read and change (a server that moves a sealed credential, for one). */
export interface FakePlatformServer {
  /** Each vault's personal copy, by vault id. */
  copies: Map<string, PushRequest & { version: number }>;
  /** Each vault's connections, by vault id. */
  connections: Map<string, PlatformConnection[]>;
  /** Every status recorded, in order, as sent. */
  statuses: PlatformStatusRequest[];
  /** The requests whose body core's schemas refused, with the reason. */
  refusals: string[];
}

/** A fake with no copies and no connections. */
export function fakePlatformServer(): FakePlatformServer {
  return { copies: new Map(), connections: new Map(), statuses: [], refusals: [] };
}

const AT = "2030-01-01T00:00:00.000Z";
/** The signed-in account, as the connections and statuses name it. */
export const PLATFORM_USER = "me@example.com";

type Answer = { status: number; body: unknown } | null;

const refused = (status: number, code: string) => ({
  status,
  body: { error: "Refused", code, message: "refused" },
});

/** Answers the personal push and pull and the personal copy's platform routes; anything else is `null`. */
export function platformRoutes(fake: FakePlatformServer): (seen: SeenRequest) => Promise<Answer> {
  return (seen) => {
    const checked = <T>(schema: WireSchema<T>): T | null => {
      const result = checkSchema(schema, JSON.parse(seen.body));
      if (result.ok) return result.value;
      fake.refusals.push(`${seen.method} ${seen.path}: ${result.message}`);
      return null;
    };
    const path = new URL(seen.path, "https://x").pathname;
    const match = /^\/api\/v1\/vaults\/([^/]+)(?:\/platforms(?:\/([^/]+)(\/status)?)?)?$/.exec(path);
    if (match === null) return Promise.resolve(null);
    const vaultId = decodeURIComponent(match[1]!).toLowerCase();
    const copy = fake.copies.get(vaultId);
    const routeOfCopy = path.endsWith("/platforms") || match[2] !== undefined;
    const connections = fake.connections.get(vaultId) ?? [];
    const answer = (status: number, body: unknown) => Promise.resolve({ status, body });

    if (!routeOfCopy) {
      if (seen.method === "GET") {
        if (copy === undefined) return Promise.resolve(refused(404, "LK_VAULT_NOT_SYNCED"));
        return answer(200, {
          vaultId,
          version: copy.version,
          encryptedBlob: copy.encryptedBlob,
          wrappedKey: copy.wrappedKey,
          schema: null,
          name: copy.name,
          updatedAt: AT,
        });
      }
      if (seen.method !== "PUT") return Promise.resolve(null);
      const push = checked(pushRequestSchema);
      if (push === null) return Promise.resolve(refused(400, "LK_SERVER_ERROR"));
      const current = copy?.version ?? 0;
      if (push.baseVersion !== current) return Promise.resolve(refused(409, "LK_VAULT_CONFLICT"));
      fake.copies.set(vaultId, { ...push, version: current + 1 });
      return answer(200, { vaultId, version: current + 1, createdAt: AT });
    }

    // The personal copy's connections: its owner only, once it was pushed.
    if (copy === undefined) return Promise.resolve(refused(404, "LK_VAULT_NOT_SYNCED"));
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const one = connections.find((c) => c.name === name);
    const connectionAnswer = (status: number, connection: PlatformConnection) =>
      answer(status, { vaultId, org: null, connection });
    if (name === undefined && seen.method === "GET") return answer(200, { vaultId, org: null, connections });
    if (name === undefined && seen.method === "POST") {
      const body = checked(platformConnectRequestSchema);
      if (body === null) return Promise.resolve(refused(400, "LK_SERVER_ERROR"));
      // As the real server: a personal copy's key never changes, so its connections name its one key version.
      if (body.keyVersion !== PERSONAL_COPY_KEY_VERSION)
        return Promise.resolve(refused(409, "LK_VAULT_KEY_STALE"));
      if (connections.some((c) => c.name === body.name))
        return Promise.resolve(refused(409, "LK_PLATFORM_NAME_TAKEN"));
      const made: PlatformConnection = {
        id: body.id,
        name: body.name,
        platform: body.config.platform,
        environment: body.environment,
        config: body.config,
        sealedCredential: body.sealedCredential,
        createdAt: AT,
        createdBy: PLATFORM_USER,
        lastPush: null,
      };
      fake.connections.set(vaultId, [...connections, made]);
      return connectionAnswer(201, made);
    }
    if (one === undefined) return Promise.resolve(refused(404, "LK_PLATFORM_NOT_CONNECTED"));
    if (match[3] === undefined && seen.method === "DELETE") {
      fake.connections.set(
        vaultId,
        connections.filter((c) => c !== one),
      );
      return answer(200, { disconnected: true });
    }
    if (match[3] !== undefined && seen.method === "PUT") {
      const status = checked(platformStatusRequestSchema);
      if (status === null) return Promise.resolve(refused(400, "LK_SERVER_ERROR"));
      if (status.version > copy.version) return Promise.resolve(refused(400, "LK_SERVER_ERROR"));
      fake.statuses.push(status);
      if (status.operation === "push") {
        const { operation: _, ...counts } = status;
        one.lastPush = { ...counts, pushedAt: AT, pushedBy: PLATFORM_USER };
      }
      return connectionAnswer(200, one);
    }
    return Promise.resolve(refused(404, "LK_SERVER_ERROR"));
  };
}
