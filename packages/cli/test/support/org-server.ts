// A fake of the organisation routes (packages/server/src/orgs; docs/teams.md) for the in-process tests of org/ and
// of the organisation half of sync/: one organisation whose members are the signed-in account (its sharing key is
// the one the fake sharing-key server holds: sharing-key-server.ts) and others whose key pairs the test holds, and
// its vault copies with one wrapped key per member. Statuses and codes as the real routes answer them; roles are
// checked with the same least roles. It plugs into a sharing machine as its `extra` routes.
import { randomFillSync, randomUUID } from "node:crypto";
import {
  checkSchema,
  orgMemberAddRequestSchema,
  orgMemberRoleRequestSchema,
  orgPushRequestSchema,
  platformConnectRequestSchema,
  orgShareRequestSchema,
  type OrgPullResponse,
  type OrgPushRequest,
  type OrgShareRequest,
  type PlatformConnection,
  fromBase64,
  openEnvelope,
  orgVaultKeyContext,
  platformCredentialContext,
  sealEnvelope,
  sharingKeyFingerprint,
  syncBlobContext,
  toBase64,
  unwrapKeyFromSender,
  utf8Decode,
  utf8Encode,
  wrapKeyFromSender,
  x25519PublicKey,
  ORG_ROLES,
  type OrgRole,
  type StepUpScope,
  type VaultDocument,
  vaultDocumentSchema,
} from "@latchkey/core";
import { sealEnvelopeSync } from "../../src/crypto/native.js";
import { pinOrgKeys } from "../../src/org/pins.js";
import { ensureSharingKey } from "../../src/sharing/sharing-key.js";
import {
  SHARING_SERVER,
  fakeSharingServer,
  sharingMachine,
  type FakeSharingServer,
  type SeenRequest,
  type SharingMachine,
  type SharingMachineOptions,
} from "./sharing-key-server.js";

/** Another member's key pair, held by the test. */
export interface MemberKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly fingerprint: string;
}

/** A member of the fake organisation. */
export interface FakeMember {
  userId: string;
  email: string;
  role: OrgRole;
  /** Their sharing key; for the signed-in account it is the sharing server's; null: waiting for one. */
  pair: MemberKeyPair | null;
}

/** Who wrapped a key, as the pull answers it (`wrappedBy`). */
export interface FakeWrapper {
  userId: string;
  email: string | null;
  /** Base64. */
  publicKey: string;
  fingerprint: string;
}

/** A member's wrapped key of a copy: for which of their keys, by whom, for which key version. */
export interface FakeKey {
  wrappedKey: string;
  fingerprint: string;
  keyVersion: number;
  wrappedBy: FakeWrapper;
}

/** One vault copy of the organisation. */
export interface FakeCopy {
  version: number;
  encryptedBlob: string;
  name: string;
  /** Wrapped keys by member user id. */
  keys: Map<string, FakeKey>;
}

/** The fake organisation, which tests read and set. */
export interface FakeOrg {
  slug: string;
  /** The signed-in account's user id (a UUID, as the schemas want). */
  me: string;
  members: FakeMember[];
  copies: Map<string, FakeCopy>;
  /** The version an unshared copy had, by vault id: a later share continues from it (as the real server does). */
  unshared: Map<string, number>;
  /** Each member's newest pull per vault: what a removal reports. */
  pulls: Map<string, { version: number; at: string }>;
  /** CI policies of the organisation's copies, as a removal answers about them (by the enabler's user id). */
  ci?: { vaultId: string; provider: string; repository: string; enabledBy: string; enabledByEmail: string }[];
  /** Called before a share is checked and answered: lets a test change the organisation behind it. */
  beforeShare?: () => void | Promise<void>;
  /** Called before a connect is checked and answered (a rotation landing just before it, say). */
  beforeConnect?: () => void | Promise<void>;
  /**
   * Platform connections of the copies, by vault id (kept apart from the copies, which a test's sealedCopy replaces):
   * listed by `GET …/platforms`, made by `POST …/platforms` (sealed with the copy's key version now, as the real
   * server requires), and their credentials replaced by a share's `platformCredentials`.
   */
  platforms?: Map<string, PlatformConnection[]>;
  deleted: boolean;
  /** Accounts on the server that are not members: what `org add` can add (any other email is unknown). */
  accounts?: FakeMember[];
}

/**
 * A platform connection of `vaultId` as the server lists it, `credential` sealed with `key` under the connection's
 * id (as `env platforms connect` seals it).
 */
export async function sealedConnection(
  vaultId: string,
  name: string,
  key: Uint8Array,
  credential: string,
): Promise<PlatformConnection> {
  const id = randomUUID();
  const sealed = await sealEnvelope(key, utf8Encode(credential), platformCredentialContext(vaultId, id));
  return {
    id,
    name,
    platform: "fly",
    environment: "default",
    config: { platform: "fly", app: `app-${name}` },
    sealedCredential: toBase64(sealed),
    createdAt: AT,
    createdBy: null,
    lastPush: null,
  };
}

/** The credential of `connection` of `vaultId` opened with `key`; null when it does not open. */
export async function connectionCredential(
  vaultId: string,
  connection: PlatformConnection,
  key: Uint8Array,
): Promise<string | null> {
  try {
    const plain = await openEnvelope(
      key,
      fromBase64(connection.sealedCredential),
      platformCredentialContext(vaultId, connection.id),
    );
    return utf8Decode(plain);
  } catch {
    return null;
  }
}

/** `member` as the wrapper of a key (their key pair the test's). */
export function wrapperOf(member: FakeMember): FakeWrapper {
  return {
    userId: member.userId,
    email: member.email,
    publicKey: toBase64(member.pair!.publicKey),
    fingerprint: member.pair!.fingerprint,
  };
}

/**
 * `wrapper` as the pull answers it: with the sharer's role in `org` now (null once no longer a member), which the
 * real server reads in the pull's statement.
 */
export function pulledWrapper(org: FakeOrg, wrapper: FakeWrapper): OrgPullResponse["wrappedBy"] {
  return { ...wrapper, role: org.members.find((m) => m.userId === wrapper.userId)?.role ?? null };
}

/**
 * Seals `document` as version `version` of `org`'s copy of `vaultId` with `vaultKey`, its key wrapped for each of
 * `members` (the signed-in account's key is the sharing server's): a copy as a share would have left it. The keys
 * are wrapped by `sharer` (default: the first other member with a key pair, whose pair the test holds) for key
 * version `keyVersion` (default `version`).
 */
export async function sealedCopy(
  sharing: FakeSharingServer,
  org: FakeOrg,
  vaultId: string,
  options: {
    version: number;
    vaultKey: Uint8Array;
    document: VaultDocument;
    name?: string;
    members: FakeMember[];
    sharer?: FakeMember;
    keyVersion?: number;
  },
): Promise<FakeCopy> {
  const sharer = options.sharer ?? org.members.find((m) => m.userId !== org.me && m.pair !== null);
  if (sharer?.pair == null) throw new Error("no member with a key pair to wrap the keys");
  const keyVersion = options.keyVersion ?? options.version;
  const blob = sealEnvelopeSync(
    options.vaultKey,
    utf8Encode(JSON.stringify(options.document)),
    syncBlobContext(vaultId, options.version, org.slug),
    (n) => randomFillSync(new Uint8Array(n)),
  );
  const keys = new Map<string, FakeKey>();
  for (const member of options.members) {
    const mine = member.userId === org.me;
    const publicKey = mine ? fromBase64(sharing.key!.publicKey) : member.pair!.publicKey;
    const fingerprint = mine ? sharing.key!.fingerprint : member.pair!.fingerprint;
    keys.set(member.userId, {
      wrappedKey: await wrapKeyFromSender(
        options.vaultKey,
        publicKey,
        sharer.pair,
        orgVaultKeyContext(vaultId, org.slug, keyVersion),
      ),
      fingerprint,
      keyVersion,
      wrappedBy: wrapperOf(sharer),
    });
  }
  const copy: FakeCopy = {
    version: options.version,
    encryptedBlob: toBase64(blob),
    name: options.name ?? "app",
    keys,
  };
  org.copies.set(vaultId, copy);
  return copy;
}

/** Opens a copy's blob with `vaultKey`; throws (LK_DECRYPT_FAILED) when that key does not open it. */
export async function openFakeCopy(
  copy: FakeCopy,
  org: FakeOrg,
  vaultId: string,
  vaultKey: Uint8Array,
): Promise<VaultDocument> {
  const plaintext = await openEnvelope(
    vaultKey,
    fromBase64(copy.encryptedBlob),
    syncBlobContext(vaultId, copy.version, org.slug),
  );
  const document = checkSchema(vaultDocumentSchema, JSON.parse(utf8Decode(plaintext)));
  if (!document.ok) throw new Error(`the copy decrypts to no vault document: ${document.message}`);
  return document.value;
}

/** A member's vault key of `org`'s copy of `vaultId`, unwrapped with their key pair from the key that wrapped it. */
export function memberVaultKey(
  copy: FakeCopy,
  member: FakeMember,
  org: FakeOrg,
  vaultId: string,
): Promise<Uint8Array> {
  const key = copy.keys.get(member.userId);
  if (key === undefined) throw new Error(`no key of ${member.email}`);
  return unwrapKeyFromSender(
    key.wrappedKey,
    member.pair!.privateKey,
    member.pair!.publicKey,
    fromBase64(key.wrappedBy.publicKey),
    orgVaultKeyContext(vaultId, org.slug, key.keyVersion),
  );
}

/** A new key pair for a member the test plays. */
export async function memberKeyPair(): Promise<MemberKeyPair> {
  const privateKey = randomFillSync(new Uint8Array(32));
  const publicKey = await x25519PublicKey(privateKey);
  return { privateKey, publicKey, fingerprint: await sharingKeyFingerprint(publicKey) };
}

/** An organisation `slug` whose only member is the signed-in account `me`, as `role`. */
export function fakeOrg(slug: string, me: string, role: OrgRole = "owner"): FakeOrg {
  return {
    slug,
    me,
    members: [{ userId: me, email: "me@example.com", role, pair: null }],
    copies: new Map(),
    unshared: new Map(),
    pulls: new Map(),
    deleted: false,
  };
}

const AT = "2030-01-01T00:00:00.000Z";
const rank = (role: OrgRole) => ORG_ROLES.indexOf(role);

/** Answers the organisation routes of `org` for the account signed in to `sharing`. */
export function orgRoutes(
  sharing: FakeSharingServer,
  org: FakeOrg,
): (seen: SeenRequest) => Promise<{ status: number; body: unknown } | null> {
  const refused = (status: number, code: string, extra: Record<string, unknown> = {}) => ({
    status,
    body: { error: "Refused", code, message: "refused", ...extra },
  });
  /** A member's registered fingerprint (the signed-in account's is the sharing server's). */
  const fingerprintOf = (m: FakeMember): string | null =>
    m.userId === org.me ? (sharing.key?.fingerprint ?? null) : (m.pair?.fingerprint ?? null);
  const publicKeyOf = (m: FakeMember): string | null =>
    m.userId === org.me
      ? (sharing.key?.publicKey ?? null)
      : m.pair === null
        ? null
        : toBase64(m.pair.publicKey);

  return async (seen) => {
    const url = new URL(seen.path, "https://x");
    const match = /^\/api\/v1\/orgs\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (match === null) return null;
    if (match[1] !== org.slug || org.deleted) return refused(404, "LK_ORG_NOT_FOUND");
    const me = org.members.find((m) => m.userId === org.me);
    if (me === undefined) return refused(404, "LK_ORG_NOT_FOUND");
    const need = (least: OrgRole) => rank(me.role) <= rank(least);
    const rest = match[2] ?? "";
    const vault = /^\/vaults\/([^/]+)(\/share|\/platforms)?$/.exec(rest);

    if (rest === "" && seen.method === "GET") {
      return {
        status: 200,
        body: {
          org: { slug: org.slug, name: org.slug, role: me.role, createdAt: AT },
          memberCount: org.members.length,
          vaultCount: org.copies.size,
        },
      };
    }
    // As the real routes: the change spends a proof of its own scope, once, and only when it happens.
    const spend = (scope: StepUpScope): boolean => {
      const proof = seen.proof === null ? undefined : sharing.proofs.get(seen.proof);
      if (proof === undefined || proof.scope !== scope || proof.spent) return false;
      proof.spent = true;
      return true;
    };
    if (rest === "" && seen.method === "DELETE") {
      if (!need("owner")) return refused(403, "LK_ORG_FORBIDDEN");
      if (!spend("org:delete")) return refused(403, "LK_STEP_UP_REQUIRED");
      org.deleted = true;
      return {
        status: 200,
        body: { slug: org.slug, membersRemoved: org.members.length, vaultsRemoved: org.copies.size },
      };
    }
    if (rest === "/members" && seen.method === "GET") {
      const vaults = [...org.copies].map(([vaultId, c]) => ({
        vaultId,
        name: c.name,
        version: c.version,
        updatedAt: AT,
      }));
      return {
        status: 200,
        body: {
          slug: org.slug,
          vaults,
          members: org.members.map((m) => {
            const current = fingerprintOf(m);
            const keys = [...org.copies].map(([vaultId, c]) => {
              const key = c.keys.get(m.userId);
              const state = key === undefined ? "missing" : key.fingerprint === current ? "current" : "stale";
              return { vaultId, state };
            });
            return {
              userId: m.userId,
              email: m.email,
              role: m.role,
              addedAt: AT,
              sharingKeyFingerprint: current,
              needsShare: current !== null && keys.some((k) => k.state !== "current"),
              keys,
            };
          }),
        },
      };
    }
    if (rest === "/public-keys" && seen.method === "GET") {
      if (!need("maintainer")) return refused(403, "LK_ORG_FORBIDDEN");
      return {
        status: 200,
        body: {
          keys: org.members.flatMap((m) => {
            const publicKey = publicKeyOf(m);
            const fingerprint = fingerprintOf(m);
            return publicKey === null || fingerprint === null
              ? []
              : [{ userId: m.userId, email: m.email, publicKey, fingerprint }];
          }),
        },
      };
    }
    if (rest === "/vaults" && seen.method === "GET") {
      return {
        status: 200,
        body: {
          vaults: [...org.copies].map(([vaultId, c]) => ({
            vaultId,
            name: c.name,
            version: c.version,
            updatedAt: AT,
          })),
        },
      };
    }
    if (rest === "/members" && seen.method === "POST") {
      const checked = checkSchema(orgMemberAddRequestSchema, JSON.parse(seen.body));
      if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
      const { email, role } = checked.value;
      if (!need(role === "owner" ? "owner" : "admin")) return refused(403, "LK_ORG_FORBIDDEN");
      const same = (m: FakeMember) => m.email.toLowerCase() === email.toLowerCase();
      if (org.members.some(same)) return refused(409, "LK_MEMBER_EXISTS");
      const account = org.accounts?.find(same);
      if (account === undefined) return refused(404, "LK_ACCOUNT_NOT_FOUND");
      if (!spend("org:member:add")) return refused(403, "LK_STEP_UP_REQUIRED");
      org.accounts = org.accounts!.filter((a) => a !== account);
      org.members.push({ ...account, role });
      return {
        status: 201,
        body: { member: { userId: account.userId, email: account.email, role, addedAt: AT } },
      };
    }
    const removal = /^\/members\/([^/]+)$/.exec(rest);
    if (removal !== null && seen.method === "PATCH") {
      const checked = checkSchema(orgMemberRoleRequestSchema, JSON.parse(seen.body));
      if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
      const target = org.members.find((m) => m.userId === removal[1]);
      if (target === undefined) return refused(404, "LK_MEMBER_NOT_FOUND");
      const owners = checked.value.role === "owner" || target.role === "owner";
      if (!need(owners ? "owner" : "admin")) return refused(403, "LK_ORG_FORBIDDEN");
      if (!spend("org:member:role")) return refused(403, "LK_STEP_UP_REQUIRED");
      target.role = checked.value.role;
      return {
        status: 200,
        body: { member: { userId: target.userId, email: target.email, role: target.role, addedAt: AT } },
      };
    }
    if (removal !== null && seen.method === "DELETE") {
      if (!need("admin")) return refused(403, "LK_ORG_FORBIDDEN");
      const target = org.members.find((m) => m.userId === removal[1]);
      if (target === undefined) return refused(404, "LK_MEMBER_NOT_FOUND");
      if (!spend("org:member:remove")) return refused(403, "LK_STEP_UP_REQUIRED");
      org.members = org.members.filter((m) => m !== target);
      const vaults = [...org.copies].flatMap(([vaultId, c]) => {
        if (!c.keys.delete(target.userId)) return [];
        const pull = org.pulls.get(`${target.userId}:${vaultId}`);
        return [
          {
            vaultId,
            name: c.name,
            version: c.version,
            lastPulledAt: pull?.at ?? null,
            lastPulledVersion: pull?.version ?? null,
            ...(org.ci === undefined ? {} : { ciPolicy: ciOf(vaultId) }),
          },
        ];
      });
      // As the server: the policies the removed member enabled go with them; the others are reported.
      const ciPoliciesDisabled = (org.ci ?? [])
        .filter((p) => p.enabledBy === target.userId)
        .map(({ vaultId, provider, repository }) => ({ vaultId, provider, repository }));
      if (org.ci !== undefined) org.ci = org.ci.filter((p) => p.enabledBy !== target.userId);
      function ciOf(vaultId: string) {
        const left = org.ci?.find((p) => p.vaultId === vaultId && p.enabledBy !== target!.userId);
        return left === undefined
          ? null
          : { provider: left.provider, repository: left.repository, enabledBy: left.enabledByEmail };
      }
      return {
        status: 200,
        body: {
          removed: { userId: target.userId, email: target.email, role: target.role, addedAt: AT },
          vaults,
          ...(org.ci === undefined ? {} : { ciPoliciesDisabled }),
        },
      };
    }
    if (vault === null) return refused(404, "LK_SERVER_ERROR");
    const vaultId = decodeURIComponent(vault[1]!);
    const copy = org.copies.get(vaultId);
    if (vault[2] === undefined && seen.method === "GET") {
      if (copy === undefined) return refused(404, "LK_ORG_VAULT_NOT_SHARED");
      const key = copy.keys.get(org.me);
      if (key === undefined) return refused(409, "LK_ORG_VAULT_KEY_MISSING");
      org.pulls.set(`${org.me}:${vaultId}`, { version: copy.version, at: AT });
      return {
        status: 200,
        body: {
          vaultId,
          version: copy.version,
          encryptedBlob: copy.encryptedBlob,
          wrappedKey: key.wrappedKey,
          fingerprint: key.fingerprint,
          keyVersion: key.keyVersion,
          wrappedBy: pulledWrapper(org, key.wrappedBy),
          schema: null,
          name: copy.name,
          updatedAt: AT,
        },
      };
    }
    if (vault[2] === "/platforms" && seen.method === "GET") {
      if (copy === undefined) return refused(404, "LK_ORG_VAULT_NOT_SHARED");
      return {
        status: 200,
        // By name, as the real route lists them.
        body: {
          vaultId,
          org: org.slug,
          connections: [...(org.platforms?.get(vaultId) ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1)),
        },
      };
    }
    if (vault[2] === "/platforms" && seen.method === "POST") {
      await org.beforeConnect?.();
      const copy = org.copies.get(vaultId);
      if (copy === undefined) return refused(404, "LK_ORG_VAULT_NOT_SHARED");
      if (!need("maintainer")) return refused(403, "LK_ORG_FORBIDDEN");
      const checked = checkSchema(platformConnectRequestSchema, JSON.parse(seen.body));
      if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
      const body = checked.value;
      // As the real server: the key version every wrapped key of the copy records (each share writes them all).
      const keyVersion = Math.max(...[...copy.keys.values()].map((k) => k.keyVersion));
      if (body.keyVersion !== keyVersion) return refused(409, "LK_VAULT_KEY_STALE");
      const connections = org.platforms?.get(vaultId) ?? [];
      if (connections.some((c) => c.name === body.name)) return refused(409, "LK_PLATFORM_NAME_TAKEN");
      const made: PlatformConnection = {
        id: body.id,
        name: body.name,
        platform: body.config.platform,
        environment: body.environment,
        config: body.config,
        sealedCredential: body.sealedCredential,
        createdAt: AT,
        createdBy: me.email,
        lastPush: null,
      };
      (org.platforms ??= new Map()).set(vaultId, [...connections, made]);
      return { status: 201, body: { vaultId, org: org.slug, connection: made } };
    }
    if (vault[2] === "/platforms") return refused(404, "LK_SERVER_ERROR");
    // Checked with core's schemas, as the real server checks a push and a share: a body it would refuse (a
    // malformed wrapped key, an unknown field) is refused here too.
    const checked =
      vault[2] === "/share"
        ? checkSchema(orgShareRequestSchema, JSON.parse(seen.body))
        : checkSchema(orgPushRequestSchema, JSON.parse(seen.body));
    if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
    const body: OrgPushRequest &
      Partial<Pick<OrgShareRequest, "wrappedKeys" | "senderFingerprint" | "platformCredentials">> =
      checked.value;
    const current = copy?.version ?? 0;
    if (vault[2] === undefined && seen.method === "PUT") {
      if (copy === undefined) return refused(404, "LK_ORG_VAULT_NOT_SHARED");
      if (body.baseVersion !== current) return refused(409, "LK_VAULT_CONFLICT", { currentVersion: current });
      copy.version = current + 1;
      copy.encryptedBlob = body.encryptedBlob;
      copy.name = body.name;
      return { status: 200, body: { vaultId, version: copy.version, createdAt: AT } };
    }
    if (vault[2] === "/share" && seen.method === "PUT") {
      if (!need("maintainer")) return refused(403, "LK_ORG_FORBIDDEN");
      await org.beforeShare?.();
      // The real server keeps the sharer's registered key beside the keys, and refuses a share from another.
      if (sharing.key === null || body.senderFingerprint !== sharing.key.fingerprint)
        return refused(409, "LK_SHARING_KEY_MISMATCH");
      const wrappedBy: FakeWrapper = {
        userId: org.me,
        email: me.email,
        publicKey: sharing.key.publicKey,
        fingerprint: sharing.key.fingerprint,
      };
      const current = org.copies.get(vaultId)?.version ?? org.unshared.get(vaultId) ?? 0;
      for (const key of body.wrappedKeys ?? []) {
        const member = org.members.find((m) => m.userId === key.userId);
        if (member === undefined || fingerprintOf(member) !== key.fingerprint)
          return refused(409, "LK_ORG_MEMBERS_CHANGED");
      }
      if (body.baseVersion !== current) return refused(409, "LK_VAULT_CONFLICT", { currentVersion: current });
      // As the real server: the re-sealed credentials must be exactly the copy's connections, else nothing changes.
      const connections = org.platforms?.get(vaultId) ?? [];
      const reseal = body.platformCredentials;
      if (reseal !== undefined) {
        const named = [...reseal.resealed.map((c) => c.id), ...reseal.dropped].sort();
        if (
          named.join() !==
          connections
            .map((c) => c.id)
            .sort()
            .join()
        )
          return refused(409, "LK_PLATFORM_CONNECTIONS_CHANGED");
        org.platforms?.set(
          vaultId,
          connections
            .filter((c) => !reseal.dropped.includes(c.id))
            .map((c) => ({
              ...c,
              sealedCredential: reseal.resealed.find((r) => r.id === c.id)!.sealedCredential,
            })),
        );
      }
      org.copies.set(vaultId, {
        version: current + 1,
        encryptedBlob: body.encryptedBlob,
        name: body.name,
        keys: new Map(
          (body.wrappedKeys ?? []).map((k) => [
            k.userId,
            { wrappedKey: k.wrappedKey, fingerprint: k.fingerprint, keyVersion: current + 1, wrappedBy },
          ]),
        ),
      });
      return { status: 200, body: { vaultId, version: current + 1, createdAt: AT } };
    }
    return refused(404, "LK_SERVER_ERROR");
  };
}

/** The signed-in account's user id in {@link orgTeam}. */
export const ME = "11111111-1111-4111-8111-111111111111";

/** A machine signed in to an organisation `acme` with two other members. */
export interface OrgTeam {
  machine: SharingMachine;
  org: FakeOrg;
  /** The signed-in account: its sharing key is registered (ensureSharingKey ran). */
  me: FakeMember;
  /** A member with a sharing key, which this machine has pinned (as after an earlier share with him). */
  bob: FakeMember;
  /** A member waiting for a sharing key. */
  eve: FakeMember;
}

/** Takes the team's terminal away (after its sharing key was registered on it): prompts are refused from then on. */
export function noTerminal(t: OrgTeam): void {
  (t.machine.ctx.stdin as { isTTY: boolean }).isTTY = false;
  (t.machine.ctx.stderr as { isTTY: boolean }).isTTY = false;
}

/** An organisation team on a new machine under `root`, the account having `role`. */
export async function orgTeam(
  root: string,
  name: string,
  role: OrgRole = "maintainer",
  options: SharingMachineOptions = {},
): Promise<OrgTeam> {
  const server = fakeSharingServer();
  const org = fakeOrg("acme", ME, role);
  server.extra = orgRoutes(server, org);
  const machine = sharingMachine(root, name, { ...options, server, subject: ME });
  const me = org.members[0]!;
  const bob: FakeMember = {
    userId: "22222222-2222-4222-8222-222222222222",
    email: "bob@example.com",
    // The sharer of the copies tests seal (sealedCopy's default): a member's CLI opens only a maintainer's wrap.
    role: "maintainer",
    pair: await memberKeyPair(),
  };
  const eve: FakeMember = {
    userId: "33333333-3333-4333-8333-333333333333",
    email: "eve@example.com",
    role: "member",
    pair: null,
  };
  org.members.push(bob, eve);
  await pinOrgKeys(machine.ctx, SHARING_SERVER, org.slug, [{ ...bob, fingerprint: bob.pair!.fingerprint }]);
  // Registered as a first organisation command would (on a terminal, with the password).
  const wasTty = machine.ctx.stdin.isTTY;
  if (wasTty) await ensureSharingKey(machine.ctx);
  return { machine, org, me, bob, eve };
}
