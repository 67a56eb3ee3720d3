// A fake of the CI policy routes and of the escrow check of versioned writes (packages/server/src/ci; docs/ci.md),
// for the in-process tests of ci/ and of the re-escrow in push and share. It holds an X25519 escrow key pair as the
// server does, checks every body with core's schemas, spends a `vault:ci:enable` step-up proof per enable, and
// opens the copy's head with the escrowed key as the real routes do: an escrow that does not open the version it
// is for is refused. It also answers personal pushes (`PUT /vaults/:id`), which no other fake of these tests does.
// It plugs into a sharing machine's `extra` routes in front of whatever was there (the organisation fake).
import {
  ORG_ROLES,
  checkSchema,
  ciEnableRequestSchema,
  fromBase64,
  openEnvelope,
  orgPushRequestSchema,
  orgShareRequestSchema,
  pushRequestSchema,
  syncBlobContext,
  toBase64,
  unwrapKeyForRecipient,
  type CiEscrow,
  type CiPolicy,
  type CiProvider,
  type OrgRole,
} from "@latchkey/core";
import { memberKeyPair, type FakeOrg, type MemberKeyPair } from "./org-server.js";
import type { FakeSharingServer, SeenRequest } from "./sharing-key-server.js";

/** One copy's policy as the fake holds it. */
export interface FakeCiPolicy {
  policy: CiPolicy;
  escrowedKey: string;
  escrowKeyFingerprint: string;
  escrowVersion: number;
}

/** A personal copy of a vault on the fake server. */
export interface FakePersonalCopy {
  version: number;
  encryptedBlob: string;
  wrappedKey: string;
}

/** The fake's state, which tests read and set. */
export interface FakeCi {
  /** The server's escrow key pair; a test may replace it (the escrows made for the old one then open nothing). */
  escrow: MemberKeyPair;
  issuers: { provider: CiProvider; issuer: string }[];
  defaultAudience: string;
  /** Policies by copy: `vaultId` for a personal copy, `slug:vaultId` for an organisation's. */
  policies: Map<string, FakeCiPolicy>;
  /** Personal copies by vault id. */
  personal: Map<string, FakePersonalCopy>;
  /** The organisation whose copies the organisation routes hold, if any. */
  org?: FakeOrg;
  /** Refuse every escrow a write carries (as a server whose escrow key changed again in between would). */
  refuseEscrows?: boolean;
}

export const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";

/** A fake with a new escrow key pair, GitHub's issuer and GitLab.com's. */
export async function fakeCi(org?: FakeOrg): Promise<FakeCi> {
  return {
    escrow: await memberKeyPair(),
    issuers: [
      { provider: "github", issuer: GITHUB_ISSUER },
      { provider: "gitlab", issuer: "https://gitlab.com" },
    ],
    defaultAudience: "https://lk.sharing.example",
    policies: new Map(),
    personal: new Map(),
    ...(org === undefined ? {} : { org }),
  };
}

const AT = "2030-01-01T00:00:00.000Z";
const rank = (role: OrgRole) => ORG_ROLES.indexOf(role);

/** The key a fake escrow holds, unwrapped with the fake's current escrow key; null when it does not unwrap. */
export async function escrowedKey(ci: FakeCi, wire: string): Promise<Uint8Array | null> {
  try {
    return await unwrapKeyForRecipient(wire, ci.escrow.privateKey, ci.escrow.publicKey);
  } catch {
    return null;
  }
}

async function opens(
  key: Uint8Array | null,
  blob: string,
  vaultId: string,
  version: number,
  org?: string,
): Promise<boolean> {
  if (key === null) return false;
  try {
    await openEnvelope(key, fromBase64(blob), syncBlobContext(vaultId, version, org));
    return true;
  } catch {
    return false;
  }
}

const refused = (status: number, code: string, extra: Record<string, unknown> = {}) => ({
  status,
  body: { error: "Refused", code, message: "refused", ...extra },
});

type Answer = { status: number; body: unknown } | null;

/**
 * Answers the CI routes, personal pushes, and the escrow check of organisation pushes and shares (which then go
 * on to `inner`, the organisation fake), for the account signed in to `sharing`.
 */
export function ciRoutes(
  sharing: FakeSharingServer,
  ci: FakeCi,
  inner?: (seen: SeenRequest) => Promise<Answer>,
): (seen: SeenRequest) => Promise<Answer> {
  /**
   * The escrow check of a new version sealed as `blob`: the stored escrow opens it, or the write's escrow is for
   * the current escrow key and opens it (and replaces the stored one once the write is done). Null: refused.
   */
  const escrowCheck = async (
    copy: string,
    vaultId: string,
    version: number,
    blob: string,
    escrow: CiEscrow | undefined,
    org?: string,
  ): Promise<(() => void) | null> => {
    const policy = ci.policies.get(copy);
    if (policy === undefined) return () => undefined;
    if (await opens(await escrowedKey(ci, policy.escrowedKey), blob, vaultId, version, org)) {
      return () => {
        policy.escrowVersion = version;
      };
    }
    if (
      escrow === undefined ||
      ci.refuseEscrows === true ||
      escrow.escrowKeyFingerprint !== ci.escrow.fingerprint ||
      !(await opens(await escrowedKey(ci, escrow.escrowedKey), blob, vaultId, version, org))
    )
      return null;
    return () => {
      policy.escrowedKey = escrow.escrowedKey;
      policy.escrowKeyFingerprint = escrow.escrowKeyFingerprint;
      policy.escrowVersion = version;
    };
  };

  return async (seen) => {
    const url = new URL(seen.path, "https://x");
    if (seen.method === "GET" && url.pathname === "/api/v1/ci/config") {
      return {
        status: 200,
        body: {
          escrowPublicKey: toBase64(ci.escrow.publicKey),
          escrowKeyFingerprint: ci.escrow.fingerprint,
          issuers: ci.issuers,
          defaultAudience: ci.defaultAudience,
        },
      };
    }
    const personal = /^\/api\/v1\/vaults\/([^/]+)(\/ci)?$/.exec(url.pathname);
    const shared = /^\/api\/v1\/orgs\/([^/]+)\/vaults\/([^/]+)(\/ci|\/share)?$/.exec(url.pathname);
    if (personal === null && shared === null) return (await inner?.(seen)) ?? null;
    const vaultId = decodeURIComponent(personal?.[1] ?? shared![2]!);
    const slug = shared?.[1];
    const org = ci.org;
    if (slug !== undefined && (org === undefined || org.slug !== slug))
      return refused(404, "LK_ORG_NOT_FOUND");
    const copyKey = slug === undefined ? vaultId : `${slug}:${vaultId}`;
    const role = org?.members.find((m) => m.userId === org.me)?.role;
    const atLeast = (least: OrgRole) => role !== undefined && rank(role) <= rank(least);
    const suffix = personal?.[2] ?? shared?.[3];

    if (suffix === "/ci") {
      const head =
        slug === undefined
          ? ci.personal.get(vaultId)
          : (org!.copies.get(vaultId) as { version: number; encryptedBlob: string } | undefined);
      if (seen.method === "GET") {
        if (slug !== undefined && !atLeast("member")) return refused(403, "LK_ORG_FORBIDDEN");
        const policy = ci.policies.get(copyKey);
        if (policy === undefined) return refused(404, "LK_CI_NOT_ENABLED");
        return { status: 200, body: policyResponse(vaultId, slug, policy) };
      }
      if (seen.method === "DELETE") {
        if (slug !== undefined && !atLeast("maintainer")) return refused(403, "LK_ORG_FORBIDDEN");
        if (!ci.policies.delete(copyKey)) return refused(404, "LK_CI_NOT_ENABLED");
        return { status: 200, body: { disabled: true } };
      }
      if (seen.method !== "PUT") return refused(404, "LK_SERVER_ERROR");
      const checked = checkSchema(ciEnableRequestSchema, JSON.parse(seen.body));
      if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
      const { policy, escrow } = checked.value;
      if (slug !== undefined && !atLeast("maintainer")) return refused(403, "LK_ORG_FORBIDDEN");
      const proof = seen.proof === null ? undefined : sharing.proofs.get(seen.proof);
      if (proof === undefined || proof.scope !== "vault:ci:enable" || proof.spent)
        return refused(403, "LK_STEP_UP_REQUIRED");
      proof.spent = true;
      if (!ci.issuers.some((i) => i.provider === policy.provider && i.issuer === policy.issuer))
        return refused(400, "LK_SERVER_ERROR");
      if (policy.provider === "github" && policy.protectedRefsOnly) return refused(400, "LK_SERVER_ERROR");
      if (escrow.escrowKeyFingerprint !== ci.escrow.fingerprint) return refused(409, "LK_CI_ESCROW_STALE");
      if (head === undefined)
        return refused(404, slug === undefined ? "LK_VAULT_NOT_SYNCED" : "LK_ORG_VAULT_NOT_SHARED");
      const key = await escrowedKey(ci, escrow.escrowedKey);
      if (!(await opens(key, head.encryptedBlob, vaultId, head.version, slug)))
        return refused(400, "LK_CI_ESCROW_INVALID");
      const stored: FakeCiPolicy = {
        policy,
        escrowedKey: escrow.escrowedKey,
        escrowKeyFingerprint: escrow.escrowKeyFingerprint,
        escrowVersion: head.version,
      };
      ci.policies.set(copyKey, stored);
      return { status: 200, body: policyResponse(vaultId, slug, stored) };
    }

    if (seen.method !== "PUT") return (await inner?.(seen)) ?? refused(404, "LK_SERVER_ERROR");
    if (slug === undefined) {
      const checked = checkSchema(pushRequestSchema, JSON.parse(seen.body));
      if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
      const body = checked.value;
      const current = ci.personal.get(vaultId)?.version ?? 0;
      if (body.baseVersion !== current) return refused(409, "LK_VAULT_CONFLICT", { currentVersion: current });
      const version = current + 1;
      const done = await escrowCheck(copyKey, vaultId, version, body.encryptedBlob, body.escrow);
      if (done === null) return refused(409, "LK_CI_ESCROW_STALE");
      ci.personal.set(vaultId, { version, encryptedBlob: body.encryptedBlob, wrappedKey: body.wrappedKey });
      done();
      return { status: 200, body: { vaultId, version, createdAt: AT } };
    }
    // An organisation push or share: the escrow is checked first, as the real server checks it in the write's
    // transaction; the organisation fake then does the rest.
    const checked =
      suffix === "/share"
        ? checkSchema(orgShareRequestSchema, JSON.parse(seen.body))
        : checkSchema(orgPushRequestSchema, JSON.parse(seen.body));
    if (!checked.ok) return refused(400, "LK_SERVER_ERROR");
    const body = checked.value;
    const done = await escrowCheck(
      copyKey,
      vaultId,
      body.baseVersion + 1,
      body.encryptedBlob,
      body.escrow,
      slug,
    );
    if (done === null) return refused(409, "LK_CI_ESCROW_STALE");
    const answer = (await inner?.(seen)) ?? refused(404, "LK_SERVER_ERROR");
    if (answer.status === 200) done();
    return answer;
  };
}

function policyResponse(vaultId: string, org: string | undefined, stored: FakeCiPolicy) {
  return {
    vaultId,
    org: org ?? null,
    policy: stored.policy,
    escrowVersion: stored.escrowVersion,
    escrowKeyFingerprint: stored.escrowKeyFingerprint,
    enabledAt: AT,
    enabledBy: "me@example.com",
  };
}
