/**
 * The organisations API under /api/v1/orgs (docs/teams.md): the router layer. The API layer (api/plugin.ts) has
 * authenticated the bearer token and checked the request id before a route runs, and signs every 2xx answer. Each
 * route validates its path and body (core's schemas/org-api.ts: a wrapped key in any but its one strict spelling
 * is a 400 here, before the service runs) and calls the service, which checks the caller's role against the one
 * permission table. Nothing here logs a body, a blob or a wrapped key.
 */
import {
  isUuid,
  MAX_ORG_MEMBERS,
  MAX_PLATFORM_CONNECTIONS,
  MAX_SEALED_CREDENTIAL_LENGTH,
  ORGS_PATH,
  orgCreateRequestSchema,
  orgMemberAddRequestSchema,
  orgMemberRoleRequestSchema,
  orgPushRequestSchema,
  orgShareRequestSchema,
  type AuditLogResponse,
  type AuditPageResponse,
  type OrgDeleteResponse,
  type OrgListResponse,
  type OrgLogResponse,
  type OrgMemberRemoveResponse,
  type OrgMemberResponse,
  type OrgMembersResponse,
  type OrgPublicKeysResponse,
  type OrgPullResponse,
  type OrgResponse,
  type OrgUnshareResponse,
  type OrgVaultsResponse,
  type PushResponse,
} from "@latchkey/core";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import {
  ApiError,
  ciEscrowStale,
  invalid,
  parseBody,
  rateLimited,
  SMALL_BODY_LIMIT,
  stepUpRequired,
  type ApiContext,
  type ApiRoutes,
} from "../api/plugin.js";
import { dataVersionOf } from "../db/index.js";
import { createReadCache } from "../db/read-cache.js";
import type { Database } from "../db/schema.js";
import type { EscrowKey } from "../escrow-key.js";
import { copyRefusal, type OrgCopyResealed } from "../api/copies.js";
import { parseAuditQuery, parseLimit, parseOrgSlug, parseVaultId, PUSH_BODY_LIMIT } from "../api/params.js";
import { normalizeEmail } from "../email.js";
import {
  createOrgService,
  MEMBER_ADD_LIMIT,
  type CopiesRemovedEvent,
  type Denied,
  type MemberAddedEvent,
  type MemberCiEvent,
  type MemberCiOutcome,
  type MemberRemovedEvent,
  type MemberRefusal,
  type OrgActor,
  type OrgService,
  type SharingKeyLookup,
  type StepUpUsed,
  type VaultRefusal,
} from "./service.js";

/** What the organisation routes need. */
export interface OrgDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** The members' registered sharing keys (the sharing-keys slice's reader, wired in app.ts). */
  sharingKeys: SharingKeyLookup;
  /** Called in a member removal's transaction (the notices outbox queues there). */
  onMemberRemoved?: (trx: Kysely<Database>, event: MemberRemovedEvent) => Promise<void>;
  /** Called in a member addition's transaction (the notices outbox queues there). */
  onMemberAdded?: (trx: Kysely<Database>, event: MemberAddedEvent) => Promise<void>;
  /** Called in the transaction of an organisation's deletion or an unshare (the CI slice's policies go). */
  onCopiesRemoved?: (trx: Kysely<Database>, event: CopiesRemovedEvent) => Promise<void>;
  /** Called in a share's transaction with the platform credentials it re-sealed (the platforms slice's). */
  onCopyResealed?: (trx: Kysely<Database>, event: OrgCopyResealed) => Promise<"ok" | "connections-changed">;
  /** Called in a member removal's transaction: the CI policies the member enabled go (the CI slice's). */
  memberCiPolicies?: (trx: Kysely<Database>, event: MemberCiEvent) => Promise<MemberCiOutcome>;
  /** The server's escrow key (escrow-key.ts), for pushes and shares to copies with CI (vault-copies.ts). */
  escrowKey?: EscrowKey | undefined;
}

/**
 * Largest share body: a push's, a wrapped key (with its member id and fingerprint) per member, and a rotation's
 * re-sealed credential (with its connection id) per platform connection.
 */
export const SHARE_BODY_LIMIT =
  PUSH_BODY_LIMIT + MAX_ORG_MEMBERS * 512 + MAX_PLATFORM_CONNECTIONS * (MAX_SEALED_CREDENTIAL_LENGTH + 128);

/** Most pull answers kept, and their largest total (as for the personal pulls, sync/routes.ts). */
const PULL_CACHE_ENTRIES = 1_000;
const PULL_CACHE_BYTES = 64 * 1024 * 1024;

/** The organisation routes, for registerApi (api/plugin.ts). */
export function orgRoutes(deps: OrgDeps): ApiRoutes {
  return (api, context) => orgPlugin(api, context, createOrgService(deps), deps);
}

const error = (status: number, name: string, code: string, message: string): ApiError =>
  new ApiError(status, { error: name, code, message });

/** The answer to a refusal of the service. */
function refusal(outcome: Denied | MemberRefusal | StepUpUsed | VaultRefusal): ApiError {
  switch (outcome.kind) {
    case "org-not-found":
    case "forbidden":
      return copyRefusal(outcome);
    case "account-not-found":
      return error(
        404,
        "AccountNotFoundError",
        "LK_ACCOUNT_NOT_FOUND",
        "There is no account with this email.",
      );
    case "member-exists":
      return error(
        409,
        "MemberExistsError",
        "LK_MEMBER_EXISTS",
        "This account is already a member of the organisation.",
      );
    case "member-not-found":
      return error(
        404,
        "MemberNotFoundError",
        "LK_MEMBER_NOT_FOUND",
        "This account is not a member of the organisation.",
      );
    case "last-owner":
      return error(
        409,
        "LastOwnerError",
        "LK_ORG_LAST_OWNER",
        "This change would leave the organisation without an owner.",
      );
    case "step-up-used":
      return stepUpRequired(outcome.scope, "used");
    case "rate-limited":
      return rateLimited(
        `This account has made ${MEMBER_ADD_LIMIT.limit} member additions within an hour, the most allowed; the server accepts another in ${outcome.retryAfterSeconds} seconds.`,
        outcome.retryAfterSeconds,
      );
    case "not-shared":
      return error(
        404,
        "OrgVaultNotSharedError",
        "LK_ORG_VAULT_NOT_SHARED",
        "This vault is not shared with the organisation.",
      );
    case "key-missing":
      return error(
        409,
        "OrgVaultKeyMissingError",
        "LK_ORG_VAULT_KEY_MISSING",
        "The organisation's copy of this vault has no key for your sharing key yet.",
      );
    case "conflict":
      return new ApiError(409, {
        error: "VaultConflictError",
        code: "LK_VAULT_CONFLICT",
        message: `The server has version ${outcome.currentVersion} of this vault; the request was based on another version.`,
        currentVersion: outcome.currentVersion,
      });
    case "members-changed":
      return error(
        409,
        "OrgMembersChangedError",
        "LK_ORG_MEMBERS_CHANGED",
        "A wrapped key is for an account that is not a member, or for a sharing key the member no longer has; nothing was written.",
      );
    case "escrow-stale":
      return ciEscrowStale();
    case "connections-changed":
      return error(
        409,
        "PlatformConnectionsChangedError",
        "LK_PLATFORM_CONNECTIONS_CHANGED",
        "The re-sealed platform credentials are not exactly the copy's connections (one was made or disconnected since they were listed); nothing was written.",
      );
    case "sender-key-mismatch":
      return error(
        409,
        "SharingKeyMismatchError",
        "LK_SHARING_KEY_MISMATCH",
        "The share names another sharing key as its sender than the one registered for your account; nothing was written.",
      );
  }
}

/** The value of a successful outcome; throws the answer to any other. */
function value<T>(outcome: { kind: "ok"; value: T } | Denied | MemberRefusal | StepUpUsed | VaultRefusal): T {
  if (outcome.kind === "ok") return outcome.value;
  throw refusal(outcome);
}

function orgPlugin(api: FastifyInstance, context: ApiContext, service: OrgService, deps: OrgDeps): void {
  const pulls = createReadCache<{ body: string }>(dataVersionOf(deps.db), {
    maxEntries: PULL_CACHE_ENTRIES,
    maxBytes: PULL_CACHE_BYTES,
  });
  const actor = (request: FastifyRequest): OrgActor => {
    const { user, ip } = context.call(request);
    return { userId: user.userId, email: user.email, clientId: user.clientId, ip };
  };
  const small = { bodyLimit: SMALL_BODY_LIMIT };
  type BySlug = { Params: { slug: string } };
  type ByMember = { Params: { slug: string; userId: string } };
  type ByVault = { Params: { slug: string; vaultId: string } };
  type Logged<P> = { Params: P; Querystring: Record<string, unknown> };
  const org = `${ORGS_PATH}/:slug`;
  const member = `${org}/members/:userId`;
  const vault = `${org}/vaults/:vaultId`;

  api.post(ORGS_PATH, small, async (request, reply) => {
    const body = parseBody(orgCreateRequestSchema, request.body);
    const outcome = await service.create(actor(request), body);
    if (outcome.kind === "exists") {
      throw error(409, "OrgExistsError", "LK_ORG_EXISTS", "An organisation with this slug already exists.");
    }
    const answer: OrgResponse = value(outcome);
    return reply.code(201).send(answer);
  });

  api.get(ORGS_PATH, async (request, reply) => {
    const answer: OrgListResponse = { orgs: await service.list(actor(request)) };
    return reply.send(answer);
  });

  api.get<BySlug>(org, async (request, reply) => {
    const answer: OrgResponse = value(await service.get(actor(request), parseOrgSlug(request.params.slug)));
    return reply.send(answer);
  });

  api.delete<BySlug>(org, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const grant = await context.stepUp(request, "org:delete");
    const answer: OrgDeleteResponse = value(await service.remove(actor(request), slug, grant));
    return reply.send(answer);
  });

  api.get<BySlug>(`${org}/members`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const answer: OrgMembersResponse = { slug, ...value(await service.members(actor(request), slug)) };
    return reply.send(answer);
  });

  api.post<BySlug>(`${org}/members`, small, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const body = parseBody(orgMemberAddRequestSchema, request.body);
    const email = parseEmail(body.email);
    const grant = await context.stepUp(request, "org:member:add");
    const answer: OrgMemberResponse = {
      member: value(await service.addMember(actor(request), slug, { email, role: body.role }, grant)),
    };
    return reply.code(201).send(answer);
  });

  api.patch<ByMember>(member, small, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const userId = parseUserId(request.params.userId);
    const body = parseBody(orgMemberRoleRequestSchema, request.body);
    const grant = await context.stepUp(request, "org:member:role");
    const answer: OrgMemberResponse = {
      member: value(await service.setRole(actor(request), slug, userId, body.role, grant)),
    };
    return reply.send(answer);
  });

  api.delete<ByMember>(member, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const userId = parseUserId(request.params.userId);
    const grant = await context.stepUp(request, "org:member:remove");
    const answer: OrgMemberRemoveResponse = value(
      await service.removeMember(actor(request), slug, userId, grant),
    );
    return reply.send(answer);
  });

  api.get<BySlug>(`${org}/public-keys`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const answer: OrgPublicKeysResponse = { keys: value(await service.publicKeys(actor(request), slug)) };
    return reply.send(answer);
  });

  api.get<BySlug>(`${org}/vaults`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const answer: OrgVaultsResponse = { vaults: value(await service.vaults(actor(request), slug)) };
    return reply.send(answer);
  });

  api.get<ByVault>(vault, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const vaultId = parseVaultId(request.params.vaultId);
    const call = context.call(request);
    const key = `${call.user.userId}\u0000${slug}\u0000${vaultId}`;
    let answer = pulls?.get(key, call.stamp);
    if (answer === undefined) {
      const body: OrgPullResponse = { vaultId, ...value(await service.pull(actor(request), slug, vaultId)) };
      answer = { body: JSON.stringify(body) };
      pulls?.set(key, answer, call.stamp, answer.body.length);
    }
    return reply.type("application/json; charset=utf-8").send(answer.body);
  });

  api.put<ByVault>(vault, { bodyLimit: PUSH_BODY_LIMIT }, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const vaultId = parseVaultId(request.params.vaultId);
    const push = parseBody(orgPushRequestSchema, request.body);
    // The schema took canonical base64 only, which Node's decoder reads exactly; the service needs the bytes.
    const valid = { ...push, schema: push.schema, blobBytes: Buffer.from(push.encryptedBlob, "base64") };
    const pushed = value(await service.push(actor(request), slug, vaultId, valid));
    const answer: PushResponse = { vaultId, ...pushed };
    return reply.send(answer);
  });

  api.put<ByVault>(`${vault}/share`, { bodyLimit: SHARE_BODY_LIMIT }, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const vaultId = parseVaultId(request.params.vaultId);
    const { wrappedKeys, senderFingerprint, platformCredentials, ...push } = parseBody(
      orgShareRequestSchema,
      request.body,
    );
    const valid = { ...push, schema: push.schema, blobBytes: Buffer.from(push.encryptedBlob, "base64") };
    const keys = wrappedKeys.map((k) => ({ ...k, userId: k.userId.toLowerCase() }));
    const shared = value(
      await service.share(actor(request), slug, vaultId, valid, senderFingerprint, keys, platformCredentials),
    );
    const answer: PushResponse = { vaultId, ...shared };
    return reply.send(answer);
  });

  api.delete<ByVault>(vault, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const vaultId = parseVaultId(request.params.vaultId);
    const answer: OrgUnshareResponse = {
      vaultId,
      ...value(await service.unshare(actor(request), slug, vaultId)),
    };
    return reply.send(answer);
  });

  api.get<Logged<{ slug: string; vaultId: string }>>(`${vault}/log`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const vaultId = parseVaultId(request.params.vaultId);
    const limit = parseLimit(request.query.limit);
    const entries = value(await service.vaultLog(actor(request), slug, vaultId, limit));
    // The personal log's answer: the vault is named once, not on every entry.
    const answer: AuditLogResponse = { vaultId, entries: entries.map(({ vaultId: _, ...rest }) => rest) };
    return reply.send(answer);
  });

  api.get<Logged<{ slug: string }>>(`${org}/log`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const limit = parseLimit(request.query.limit);
    const answer: OrgLogResponse = {
      slug,
      entries: value(await service.orgLog(actor(request), slug, limit)),
    };
    return reply.send(answer);
  });

  api.get<{ Params: { slug: string }; Querystring: unknown }>(`${org}/audit`, async (request, reply) => {
    const slug = parseOrgSlug(request.params.slug);
    const query = parseAuditQuery(request.query, true);
    const answer: AuditPageResponse = value(await service.auditPage(actor(request), slug, query));
    return reply.send(answer);
  });
}

/** A user id is a UUID, taken in lower case (the spelling the server makes them in). */
function parseUserId(text: string): string {
  if (!isUuid(text)) throw invalid("The user id must be a UUID.");
  return text.toLowerCase();
}

/** An email as accounts store it (identity/accounts.ts normalizeEmail). */
function parseEmail(text: string): string {
  try {
    return normalizeEmail(text);
  } catch {
    throw invalid(`"email" must be an email address.`);
  }
}
