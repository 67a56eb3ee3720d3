/**
 * Whether a verified CI token is allowed by a copy's CI policy (docs/ci.md "Exchange"): a pure function of the
 * policy and the token's claims, so every rule is tested on its own. The token's signature, issuer, audience, times
 * and jti are verify.ts's business and have passed by now; here the platform's own claims are compared with what
 * the policy pinned, exactly and case-sensitively. `sub` is never read: its layout changes with the platform's
 * settings (GitHub's immutable `repo:OWNER@ID/REPO@ID:…` form, customized templates), the claims it is made of do
 * not.
 */
import type { CiPolicy, CiProvider } from "@latchkey/core";
import type { VerifiedCiToken } from "./verify.js";

/** The rule of a policy that refused a token; the denial's message says it in words. */
export type CiPolicyRule =
  | "provider"
  | "repository"
  | "repository-id"
  | "owner-id"
  | "fork"
  | "ref"
  | "branch"
  | "protected-ref"
  | "environment";

/** Why a policy refused a token: the rule, the claim it read and that claim's value (claims are not secrets). */
export interface CiPolicyDenial {
  rule: CiPolicyRule;
  claim: string;
  /** The claim's value as the token carries it, shortened for display; null when the token has no such claim. */
  value: string | null;
  /** Says which rule failed and the claim's value, never what the policy holds (a stranger's token learns nothing). */
  message: string;
}

/** The job a token belongs to, as a CI access token carries it: claims, shortened, or null. */
export interface CiJob {
  /** GitHub `ref` (`refs/heads/…`); GitLab `ref` (the bare branch name). */
  ref: string | null;
  /** GitHub `run_id/run_attempt`; GitLab `pipeline_id/job_id`. */
  runId: string | null;
  /** GitHub `event_name`; GitLab `pipeline_source`. */
  event: string | null;
  /** The token's `environment` claim. */
  environment: string | null;
  /** The OIDC token's jti. */
  jti: string;
}

/** What the audit rows record of the job a token belongs to. */
export interface CiRun extends CiJob {
  provider: CiProvider;
  issuer: string;
  /** GitHub `repository`; GitLab the path of the project the job runs in. */
  repository: string | null;
}

/** A token the policy allows, and what its CI access token is bound to. */
export interface CiPolicyMatch {
  ok: true;
  /**
   * The environments the CI access token may pull: the one the token's `environment` claim names when the policy
   * lists environments; empty (any of the vault's) when it lists none.
   */
  environments: string[];
  /** What the audit log calls the access token: `oidc:{provider}:{repository}:{ref}`. */
  name: string;
  run: CiRun;
}

/** {@link matchCiPolicy}'s answer. */
export type CiPolicyOutcome = CiPolicyMatch | { ok: false; denial: CiPolicyDenial };

/**
 * The GitHub events a policy that does not allow forks accepts: only those that someone with write access to the
 * repository must start (a push, a manual or API dispatch, a release) or that the repository's own schedule starts.
 * Every other event is refused unless allowForks, because anyone can start many of them in the base repository's
 * context with its default branch as the ref — a comment (issue_comment, discussion_comment), an issue, a star
 * (watch), a fork, a pull request's review — and a fork's code can drive pull_request, pull_request_target,
 * workflow_run and merge_group. An allowlist, so an event GitHub adds later is refused until someone decides.
 */
export const GITHUB_TRUSTED_EVENTS: readonly string[] = [
  "push",
  "workflow_dispatch",
  "schedule",
  "release",
  "repository_dispatch",
];

/** GitLab's `pipeline_source` of a merge request pipeline (refused unless allowForks, when the token cannot say whose). */
export const GITLAB_MERGE_REQUEST_SOURCE = "merge_request_event";

/** The longest claim value quoted in a message or kept in an audit row. */
const SHOWN_LENGTH = 200;

/** Whether `verified` is allowed by `policy`: the first rule that refuses it, or what it is granted. */
export function matchCiPolicy(policy: CiPolicy, verified: VerifiedCiToken): CiPolicyOutcome {
  const claims = verified.claims;
  if (verified.provider !== policy.provider || verified.issuer !== policy.issuer) {
    return deny(
      "provider",
      "iss",
      verified.issuer,
      `the token's issuer is not the policy's ${policy.provider} issuer`,
    );
  }
  const names = policy.provider === "github" ? GITHUB : gitlabClaimNames(claims);
  const identity = checkIdentity(policy, claims, names);
  if (identity !== null) return identity;
  if (!policy.allowForks) {
    const fork = policy.provider === "github" ? checkGithubFork(claims) : checkGitlabFork(claims);
    if (fork !== null) return fork;
  }
  const branch = policy.provider === "github" ? githubBranch(claims) : gitlabBranch(claims);
  if (!branch.ok) return branch;
  if (!policy.branches.some((glob) => matchBranchGlob(glob, branch.name))) {
    return deny("branch", "ref", claims.ref, "the token's branch matches none of the policy's branches");
  }
  if (policy.protectedRefsOnly && claims.ref_protected !== "true") {
    return deny(
      "protected-ref",
      "ref_protected",
      claims.ref_protected,
      "the policy allows protected refs only",
    );
  }
  let environments: string[] = [];
  if (policy.environments.length > 0) {
    const environment = claims.environment;
    if (typeof environment !== "string" || !policy.environments.includes(environment)) {
      return deny(
        "environment",
        "environment",
        environment,
        "the token's environment is not one of the policy's environments",
      );
    }
    environments = [environment];
  }
  const run = describeCiRun(verified);
  return { ok: true, environments, name: ciAccessName(policy, run.ref), run };
}

/** What the audit log calls a CI access token of `policy` issued to a job on `ref`. */
export function ciAccessName(policy: Pick<CiPolicy, "provider" | "repository">, ref: string | null): string {
  return `oidc:${policy.provider}:${policy.repository}:${ref ?? ""}`;
}

/** The claims a provider's repository rules read. */
interface IdentityClaims {
  path: string;
  id: string;
  owner: string;
}

const GITHUB: IdentityClaims = { path: "repository", id: "repository_id", owner: "repository_owner_id" };
const GITLAB_PROJECT: IdentityClaims = { path: "project_path", id: "project_id", owner: "namespace_id" };
const GITLAB_JOB_PROJECT: IdentityClaims = {
  path: "job_project_path",
  id: "job_project_id",
  owner: "job_namespace_id",
};

/**
 * GitLab's claims of the project the job runs in. Since GitLab 18.3 a merge request pipeline from a fork that runs
 * in the parent project names the fork in project_* and the parent in job_project_*; before, project_* always named
 * the project the job ran in and job_project_* did not exist.
 */
function gitlabClaimNames(claims: Readonly<Record<string, unknown>>): IdentityClaims {
  return claims.job_project_id === undefined ? GITLAB_PROJECT : GITLAB_JOB_PROJECT;
}

function checkIdentity(
  policy: CiPolicy,
  claims: Readonly<Record<string, unknown>>,
  names: IdentityClaims,
): { ok: false; denial: CiPolicyDenial } | null {
  if (claims[names.path] !== policy.repository) {
    return deny("repository", names.path, claims[names.path], "the token's repository is not the policy's");
  }
  if (idClaim(claims[names.id]) !== policy.repositoryId) {
    return deny(
      "repository-id",
      names.id,
      claims[names.id],
      "the token's repository id is not the one pinned when CI was enabled (a renamed or re-created repository)",
    );
  }
  if (idClaim(claims[names.owner]) !== policy.ownerId) {
    return deny(
      "owner-id",
      names.owner,
      claims[names.owner],
      "the token's owner id is not the one pinned when CI was enabled (a renamed or re-created owner)",
    );
  }
  return null;
}

function checkGithubFork(
  claims: Readonly<Record<string, unknown>>,
): { ok: false; denial: CiPolicyDenial } | null {
  const event = claims.event_name;
  if (typeof event !== "string") {
    return deny("fork", "event_name", event, "the token names no event, and the policy does not allow forks");
  }
  if (!GITHUB_TRUSTED_EVENTS.includes(event)) {
    return deny(
      "fork",
      "event_name",
      event,
      "someone without write access to the repository, or a fork, can start this event, and the policy does not allow forks",
    );
  }
  return null;
}

function checkGitlabFork(
  claims: Readonly<Record<string, unknown>>,
): { ok: false; denial: CiPolicyDenial } | null {
  if (claims.job_project_id !== undefined) {
    if (
      idClaim(claims.project_id) !== idClaim(claims.job_project_id) ||
      idClaim(claims.project_id) === null
    ) {
      return deny(
        "fork",
        "project_id",
        claims.project_id,
        "the pipeline's code comes from another project than the one the job runs in (a fork's merge request), and the policy does not allow forks",
      );
    }
    return null;
  }
  // Without job_project_id a fork's merge request pipeline that runs in the parent project carries the parent's
  // project_id: no claim tells it from the project's own, so every merge request pipeline is refused.
  if (claims.pipeline_source === GITLAB_MERGE_REQUEST_SOURCE) {
    return deny(
      "fork",
      "pipeline_source",
      claims.pipeline_source,
      "this GitLab names no job_project_id, so a merge request pipeline may be a fork's, and the policy does not allow forks",
    );
  }
  return null;
}

type Branch = { ok: true; name: string } | { ok: false; denial: CiPolicyDenial };

const HEADS = "refs/heads/";

function githubBranch(claims: Readonly<Record<string, unknown>>): Branch {
  const ref = claims.ref;
  if (typeof ref !== "string" || !ref.startsWith(HEADS) || ref.length === HEADS.length) {
    return deny("ref", "ref", ref, "the token's ref is not a branch (refs/heads/…)");
  }
  if (claims.ref_type !== undefined && claims.ref_type !== "branch") {
    return deny("ref", "ref_type", claims.ref_type, "the token's ref is not a branch");
  }
  return { ok: true, name: ref.slice(HEADS.length) };
}

function gitlabBranch(claims: Readonly<Record<string, unknown>>): Branch {
  if (claims.ref_type !== "branch") {
    return deny("ref", "ref_type", claims.ref_type, "the token's ref is not a branch");
  }
  const ref = claims.ref;
  if (typeof ref !== "string" || ref === "") {
    return deny("ref", "ref", ref, "the token names no branch");
  }
  // ref_path (GitLab 16.9 and later) is the full ref; when present it must say the same branch.
  if (claims.ref_path !== undefined && claims.ref_path !== `${HEADS}${ref}`) {
    return deny("ref", "ref_path", claims.ref_path, "the token's ref_path is not the branch its ref names");
  }
  return { ok: true, name: ref };
}

/**
 * A numeric id claim as a decimal string, or null: the platforms send strings; a whole number is taken in its
 * decimal spelling, so "74" and 74 are one id and "074" is another.
 */
function idClaim(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return String(value);
  return null;
}

/**
 * Whether `branch` matches `glob`: `*` matches any run of characters without `/`, `**` any run at all, everything
 * else itself, case-sensitively. Dynamic programming over the two strings, so no glob can make it backtrack.
 */
export function matchBranchGlob(glob: string, branch: string): boolean {
  // "*" and "**" are the wildcards; any other part is one literal character.
  const parts: string[] = [];
  for (let i = 0; i < glob.length;) {
    if (glob.startsWith("**", i)) {
      parts.push("**");
      i += 2;
    } else if (glob[i] === "*") {
      parts.push("*");
      i += 1;
    } else {
      parts.push(glob[i]!);
      i += 1;
    }
  }
  // reach[j]: the parts so far can match the first j characters of branch.
  let reach = new Array<boolean>(branch.length + 1).fill(false);
  reach[0] = true;
  for (const part of parts) {
    const next = new Array<boolean>(branch.length + 1).fill(false);
    if (part === "*" || part === "**") {
      for (let j = 0; j <= branch.length; j += 1) {
        if (reach[j]) next[j] = true;
        else if (j > 0 && next[j - 1] && (part === "**" || branch[j - 1] !== "/")) next[j] = true;
      }
    } else {
      for (let j = 1; j <= branch.length; j += 1) next[j] = reach[j - 1]! && branch[j - 1] === part;
    }
    reach = next;
  }
  return reach[branch.length]!;
}

/** The job a verified token belongs to, as the audit rows record it. */
export function describeCiRun(verified: VerifiedCiToken): CiRun {
  const claims = verified.claims;
  const github = verified.provider === "github";
  const runId = github
    ? joined(claims.run_id, claims.run_attempt)
    : joined(claims.pipeline_id, claims.job_id);
  return {
    provider: verified.provider,
    issuer: verified.issuer,
    repository: shown(github ? claims.repository : claims[gitlabClaimNames(claims).path]),
    ref: shown(claims.ref),
    runId,
    event: shown(github ? claims.event_name : claims.pipeline_source),
    environment: shown(claims.environment),
    jti: verified.jti,
  };
}

function joined(first: unknown, second: unknown): string | null {
  const a = shown(first);
  const b = shown(second);
  if (a === null) return null;
  return b === null ? a : `${a}/${b}`;
}

/** A string, number or boolean claim as text, shortened; null for anything else. */
function shown(value: unknown): string | null {
  if ((typeof value === "number" && Number.isFinite(value)) || typeof value === "boolean")
    return String(value);
  if (typeof value !== "string") return null;
  return value.length <= SHOWN_LENGTH ? value : `${value.slice(0, SHOWN_LENGTH)}…`;
}

function deny(
  rule: CiPolicyRule,
  claim: string,
  raw: unknown,
  why: string,
): { ok: false; denial: CiPolicyDenial } {
  const value = shown(raw);
  // JSON quoting shows control characters and quotes escaped: a claim cannot forge the rest of the message.
  const quoted =
    raw === undefined
      ? "absent"
      : value === null
        ? `not a string but ${raw === null ? "null" : typeof raw}`
        : JSON.stringify(value);
  return {
    ok: false,
    denial: {
      rule,
      claim,
      value,
      message: `The vault's CI policy refused the token: rule "${rule}" failed on claim ${claim} (${quoted}): ${why}.`,
    },
  };
}
