/**
 * The CI pull (docs/ci.md "The CI pull"): one environment of a vault copy, in plaintext, for the holder of a CI
 * access token of that copy. The token must still be good for the copy's policy as it is now (same policy, same
 * generation: a disable or a replace revokes it) and for the environment asked; the server opens the copy's head
 * with the escrowed vault key (escrow.ts), takes the environment, fills the envSchema's defaults in and records the release in
 * the audit log before the values leave. Values never reach a log line, an error or the database; the audit row
 * says how many keys were released, never which values.
 */
import type { CiPullResponse, VaultDocument } from "@latchkey/core";
import type { Kysely } from "kysely";
import { insertAudit } from "../audit/data.js";
import type { Database } from "../db/schema.js";
import type { EscrowKey } from "../escrow-key.js";
import { verifyCiAccessToken, type CiAccessRefusal } from "./access-token.js";
import { ciAccessName } from "./claims.js";
import { openEscrowedCopy } from "./escrow.js";
import { findCiPolicy } from "./policies-data.js";

/** The audit action of a CI pull. */
export const CI_PULL_ACTION = "vault.ci.pull";

/** What the pull needs. */
export interface CiPullDeps {
  db: Kysely<Database>;
  now: () => Date;
  randomId: () => string;
  /** IdentityKeys.ciAccessKey. */
  accessKey: Uint8Array;
  escrowKey: EscrowKey;
}

/** A pull request, its path and query validated. */
export interface CiPullInput {
  /** The bearer token. */
  token: string;
  /** Canonical (lower case). */
  vaultId: string;
  org: string | undefined;
  environment: string;
  ip: string;
}

/** Result of a pull. */
export type CiPullOutcome =
  | { kind: "pulled"; answer: CiPullResponse }
  /** Not a CI access token of this server, expired, or its policy disabled or replaced since (`revoked`). */
  | { kind: "token-refused"; refusal: CiAccessRefusal | "revoked" }
  /** A token of another copy. */
  | { kind: "other-copy" }
  | { kind: "environment-not-allowed"; allowed: string[] }
  | { kind: "copy-not-found" }
  /** The escrow does not open the copy's head (pushes keep it true; a replaced escrow key does not). */
  | { kind: "escrow-stale" }
  | { kind: "environment-not-found" };

/** The pull. */
export interface CiPullService {
  pull(input: CiPullInput): Promise<CiPullOutcome>;
}

/** Creates the pull service. */
export function createCiPullService(deps: CiPullDeps): CiPullService {
  return {
    async pull(input) {
      const verified = await verifyCiAccessToken(deps.accessKey, input.token, deps.now());
      if (!verified.ok) return { kind: "token-refused", refusal: verified.refusal };
      const token = verified.claims;
      if (token.vaultId !== input.vaultId || token.org !== (input.org ?? null)) return { kind: "other-copy" };
      if (token.environments.length > 0 && !token.environments.includes(input.environment)) {
        return { kind: "environment-not-allowed", allowed: token.environments };
      }
      // One transaction: the policy that allows the release, the head released and the audit row of it are one
      // state, so a disable that commits first leaves nothing to release.
      return deps.db.transaction().execute(async (trx): Promise<CiPullOutcome> => {
        const record = await findCiPolicy(trx, { vaultId: input.vaultId, orgSlug: input.org });
        if (record === undefined || record.id !== token.policyId || record.generation !== token.generation) {
          return { kind: "token-refused", refusal: "revoked" };
        }
        const opened = await openEscrowedCopy(trx, deps.escrowKey, record);
        if (opened.kind !== "opened") return opened;
        const released = releaseEnvironment(opened.document, input.environment, opened.schema);
        if (released === null) return { kind: "environment-not-found" };
        const copy = record.copy;
        await insertAudit(trx, {
          id: deps.randomId(),
          userId: null,
          action: CI_PULL_ACTION,
          vaultId: copy.vaultId,
          orgId: "orgId" in copy ? copy.orgId : null,
          version: opened.version,
          createdAt: deps.now().toISOString(),
          metadata: {
            name: ciAccessName(record.policy, token.job.ref),
            provider: record.policy.provider,
            issuer: record.policy.issuer,
            repository: record.policy.repository,
            ...token.job,
            environment: input.environment,
            environmentClaim: token.job.environment,
            keys: Object.keys(released.values).length,
            defaulted: released.defaulted.length,
            ip: input.ip,
          },
        });
        return {
          kind: "pulled",
          answer: {
            vaultId: copy.vaultId,
            org: "orgId" in copy ? copy.slug : null,
            version: opened.version,
            environment: input.environment,
            values: released.values,
            defaulted: released.defaulted,
          },
        };
      });
    },
  };
}

/**
 * Environment `environment` of `document`, with the envSchema's defaults for the keys it does not hold or holds
 * empty (what `latchkey run` would use); null when the document has no such environment.
 */
function releaseEnvironment(
  document: VaultDocument,
  environment: string,
  schema: Record<string, unknown> | null,
): { values: Record<string, string>; defaulted: string[] } | null {
  if (!Object.hasOwn(document, environment)) return null;
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(document[environment]!)) setOwn(values, key, value);
  const defaulted: string[] = [];
  for (const [key, rule] of Object.entries(schema ?? {})) {
    // The stored schema was read as a JSON object only (the push checked its shape): a rule may be anything.
    const fallback = (rule as { default?: unknown } | null)?.default;
    if (typeof fallback !== "string" || fallback === "") continue;
    if (Object.hasOwn(values, key) && values[key] !== "") continue;
    setOwn(values, key, fallback);
    defaulted.push(key);
  }
  return { values, defaulted };
}

function setOwn(target: Record<string, string>, key: string, value: string): void {
  // defineProperty, because plain assignment to "__proto__" would replace the prototype instead.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
