// Shared pieces of the organisation suites (org-*.test.ts): accounts with registered X25519 sharing keys, requests
// to the organisation routes, and share bodies whose vault key is wrapped for each member as the CLI wraps it.
import {
  generateX25519KeyPair,
  ORGS_PATH,
  sharingKeyFingerprint,
  STEP_UP_HEADER,
  toBase64,
  fromBase64,
  orgVaultKeyContext,
  unwrapKeyFromSender,
  wrapKeyFromSender,
  type OrgRole,
  type StepUpScope,
  type X25519KeyPair,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import type { Kysely } from "kysely";
import type { Database } from "../src/db/schema.js";
import { insertSharingKey } from "../src/sharing-keys/data.js";
import { stepUpProofFor } from "./support/step-up.js";
import { newRequestId, sealBlob, type Caller, type SyncServer } from "./sync-support.js";

/** A signed-in account with a registered sharing key. */
export interface Member extends Caller {
  keys: X25519KeyPair;
  fingerprint: string;
}

/** A new account whose sharing key is registered (as `PUT /api/v1/sharing-key` registers one). */
export async function newMember(server: SyncServer, db: Kysely<Database>, email?: string): Promise<Member> {
  const caller = await server.caller(email);
  const keys = await generateX25519KeyPair();
  const fingerprint = await sharingKeyFingerprint(keys.publicKey);
  const inserted = await insertSharingKey(db, {
    user_id: caller.userId,
    public_key: toBase64(keys.publicKey),
    fingerprint,
    created_at: new Date().toISOString(),
    rotated_at: null,
  });
  if (!inserted) throw new Error("newMember: the sharing key was not registered");
  return { ...caller, keys, fingerprint };
}

/** One request to the API as `token`, with a fresh request id and any extra headers. */
export function call(
  app: FastifyInstance,
  token: string,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url: path.startsWith("/api/") ? path : `${ORGS_PATH}${path}`,
    headers: { authorization: `Bearer ${token}`, "x-latchkey-request-id": newRequestId(), ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
}

/** The header of a fresh step-up proof for `scope` of `token`'s user and session (support/step-up.ts). */
export async function stepUpHeader(
  server: SyncServer,
  token: string,
  scope: StepUpScope,
): Promise<Record<string, string>> {
  return { [STEP_UP_HEADER]: await stepUpProofFor(server.identity, token, scope) };
}

/**
 * A request of `token` to a route that spends a step-up proof for `scope` (member add, role change, removal,
 * the organisation's deletion), with a fresh one.
 */
export async function callWithProof(
  server: SyncServer,
  token: string,
  scope: StepUpScope,
  method: "POST" | "PATCH" | "DELETE",
  path: string,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  return call(server.app, token, method, path, payload, await stepUpHeader(server, token, scope));
}

/** Creates the organisation `slug` owned by `owner` and adds `members` with their roles; throws on any refusal. */
export async function makeOrg(
  server: SyncServer,
  owner: Caller,
  slug: string,
  members: readonly (readonly [Caller, OrgRole])[] = [],
): Promise<void> {
  const created = await call(server.app, owner.token, "POST", "", { slug });
  if (created.statusCode !== 201) throw new Error(`makeOrg: create answered ${created.statusCode}`);
  for (const [member, role] of members) {
    const added = await callWithProof(server, owner.token, "org:member:add", "POST", `/${slug}/members`, {
      email: member.email,
      role,
    });
    if (added.statusCode !== 201) throw new Error(`makeOrg: add answered ${added.statusCode}`);
  }
}

/**
 * A share body by `sharer` in the organisation `slug`: `plaintext` sealed with `vaultKey` as version
 * baseVersion + 1, the key wrapped from the sharer's sharing key for each member, as the CLI wraps it.
 */
export async function shareBody(
  sharer: Member,
  slug: string,
  vaultId: string,
  baseVersion: number,
  vaultKey: Uint8Array,
  members: readonly Member[],
  plaintext = '{"env":{}}',
): Promise<Record<string, unknown>> {
  const context = orgVaultKeyContext(vaultId, slug, baseVersion + 1);
  return {
    encryptedBlob: await sealBlob(vaultKey, vaultId, baseVersion + 1, plaintext),
    name: "team-project",
    baseVersion,
    senderFingerprint: sharer.fingerprint,
    wrappedKeys: await Promise.all(
      members.map(async (m) => ({
        userId: m.userId,
        wrappedKey: await wrapKeyFromSender(vaultKey, m.keys.publicKey, sharer.keys, context),
        fingerprint: m.fingerprint,
      })),
    ),
  };
}

/** A push body for an organisation copy (no wrapped key: the members' keys stay). */
export async function orgPushBody(
  vaultId: string,
  baseVersion: number,
  vaultKey: Uint8Array,
  plaintext = '{"env":{}}',
): Promise<Record<string, unknown>> {
  return {
    encryptedBlob: await sealBlob(vaultKey, vaultId, baseVersion + 1, plaintext),
    name: "team-project",
    baseVersion,
  };
}

/** What of a pull answer unwrapping its key needs. */
export interface PulledKey {
  vaultId: string;
  wrappedKey: string;
  keyVersion: number;
  wrappedBy: { publicKey: string };
}

/**
 * The vault key a pull answer of the organisation `slug` wraps for `member`, opened with the sharer's public key
 * the answer names (as a member's CLI does once it trusts that key).
 */
export function unwrapFor(member: Member, slug: string, pulled: PulledKey): Promise<Uint8Array> {
  return unwrapKeyFromSender(
    pulled.wrappedKey,
    member.keys.privateKey,
    member.keys.publicKey,
    fromBase64(pulled.wrappedBy.publicKey),
    orgVaultKeyContext(pulled.vaultId, slug, pulled.keyVersion),
  );
}
