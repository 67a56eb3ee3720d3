// `env ci enable`, `env ci show` and `env ci disable` (docs/ci.md, "The CLI"): a copy's CI policy — which CI jobs
// may pull which environments of it — and the escrow of the key its blob is sealed with, which lets the server open
// that copy for those jobs. Enabling asks for the account's password (step-up `vault:ci:enable`) after saying in
// words what the policy allows and that the server will be able to read the vault from then on.
import {
  CI_PROVIDERS,
  LatchkeyError,
  checkSchema,
  ciDisableResponseSchema,
  ciEnableRequestSchema,
  ciPolicyResponseSchema,
  ciPolicySchema,
  fromBase64,
  isLatchkeyError,
  type CiConfigResponse,
  type CiEnableRequest,
  type CiPolicy,
  type CiPolicyResponse,
  type CiProvider,
  type WireSchema,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { orgVaultPath } from "../org/copy.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { requireServerSession } from "../server/session.js";
import { mintStepUpProof } from "../server/step-up.js";
import {
  chosenOrg,
  copyTarget,
  openSyncProject,
  orgFlag,
  type CopyChoice,
  type SyncProject,
} from "../sync/project.js";
import { vaultPath } from "../sync/push.js";
import { getSyncEntry, readSyncBase } from "../sync/state.js";
import { loadVaultKey } from "../vault/vault-store.js";
import { forgetEscrowConsent, recordEscrowConsent } from "./consent.js";
import { copyName, escrowKey, fetchCiConfig } from "./escrow.js";
import { lookUpGithubRepository } from "./github.js";

/** Which copy, and which server: as for `env push` and `env pull`. */
export interface CiTargetOptions extends CopyChoice {
  profile?: string;
  server?: string;
  verbose?: number;
}

/** `env ci show --accept`: record that this machine may escrow the copy's key (ci/consent.ts). */
export interface CiShowOptions extends CiTargetOptions {
  accept?: boolean;
}

/** What `env ci enable` was given on its command line. */
export interface CiEnableOptions extends CiTargetOptions {
  provider: string;
  /** GitHub OWNER/REPO, or a GitLab project's full path. */
  repo: string;
  repoId?: string;
  ownerId?: string;
  /** Branch globs; none: GitHub's default branch (through gh), required on GitLab. */
  branches: readonly string[];
  environments: readonly string[];
  allowForks: boolean;
  protectedOnly: boolean;
  audience?: string;
  issuer?: string;
}

/**
 * A copy's policy as the server holds it, and which server; with `--accept`, the escrow key this machine now agrees
 * to escrow the copy's key for.
 */
export type CiPolicyOutcome = CiPolicyResponse & { server: string; acceptedEscrowKey?: string };

/** What `env ci disable` did. */
export interface CiDisableOutcome {
  vaultId: string;
  org: string | null;
  server: string;
  /** False when the copy had no policy: nothing was deleted. */
  disabled: boolean;
}

const usage = (message: string, hint?: string): LatchkeyError =>
  new LatchkeyError("LK_USAGE", hint === undefined ? { message } : { message, hint });

/** What each provider calls the policy's fields, for messages and the summary. */
const TERMS: Record<CiProvider, { name: string; repository: string; repositoryId: string; ownerId: string }> =
  {
    github: { name: "GitHub", repository: "repository", repositoryId: "repository id", ownerId: "owner id" },
    gitlab: { name: "GitLab", repository: "project", repositoryId: "project id", ownerId: "namespace id" },
  };

/** Where to find the numbers a policy pins, when they must come from the command line. */
const ID_HINTS: Record<CiProvider, string> = {
  github:
    "On a machine with GitHub's CLI: `gh api repos/OWNER/REPO --jq '.id, .owner.id'` prints the repository id and the owner id; " +
    "without it, https://api.github.com/repos/OWNER/REPO shows them as `id` and `owner.id`.",
  gitlab:
    "The project id is on the project's overview page (and under Settings > General); the namespace id is `namespace.id` " +
    "of https://GITLAB/api/v4/projects/GROUP%2FPROJECT (or `glab api projects/GROUP%2FPROJECT`).",
};

/** Checks one command-line value with the policy schema's own rule for its field. */
function checkFlag<T>(flag: string, schema: WireSchema<T>, value: unknown): T {
  const checked = checkSchema(schema, value);
  if (!checked.ok) throw usage(`${flag} is not valid: ${checked.message}`);
  return checked.value;
}

function parseProvider(value: string): CiProvider {
  const provider = CI_PROVIDERS.find((p) => p === value);
  if (provider === undefined) throw usage(`--provider must be one of ${CI_PROVIDERS.join(", ")}.`);
  return provider;
}

/** The path of a copy's CI policy under the API prefix. */
export function ciPolicyPath(vaultId: string, org: string | undefined): string {
  return `${org === undefined ? vaultPath(vaultId) : orgVaultPath(org, vaultId)}/ci`;
}

/**
 * The issuer the policy names: --issuer when the server trusts it for the provider, else the one issuer of that
 * provider the server trusts. None, or several without --issuer, is LK_USAGE naming what there is.
 */
function chooseIssuer(
  config: CiConfigResponse,
  provider: CiProvider,
  wanted: string | undefined,
  server: string,
): string {
  const trusted = config.issuers.filter((i) => i.provider === provider).map((i) => i.issuer);
  const name = TERMS[provider].name;
  if (trusted.length === 0) {
    throw usage(
      `${server} trusts no ${name} issuer, so no ${name} job could prove who it is there.`,
      'The server\'s operator adds the issuer to CI_OIDC_ISSUERS (docs/ci.md, "Trusted issuers and token verification").',
    );
  }
  if (wanted !== undefined) {
    if (!trusted.includes(wanted)) {
      throw usage(
        `${server} does not trust ${wanted} as a ${name} issuer; it trusts ${trusted.join(", ")}.`,
        "Pass one of those with --issuer (exactly as listed), or ask the server's operator to add yours to CI_OIDC_ISSUERS.",
      );
    }
    return wanted;
  }
  if (trusted.length > 1) {
    throw usage(
      `${server} trusts several ${name} issuers (${trusted.join(", ")}); the policy must name the one whose tokens your jobs get.`,
      `Add --issuer URL with one of them, e.g. --issuer ${trusted[0]!}.`,
    );
  }
  return trusted[0]!;
}

/** The repository, its pinned ids and the branches, from the command line and (GitHub) `gh api`. */
interface RepositoryFacts {
  repository: string;
  repositoryId: string;
  ownerId: string;
  branches: string[];
  /** What gh said that the command line did not: shown with the summary. */
  notes: string[];
}

async function repositoryFacts(
  ctx: Context,
  provider: CiProvider,
  options: CiEnableOptions,
): Promise<RepositoryFacts> {
  const branches = [...options.branches];
  const given = { repositoryId: options.repoId, ownerId: options.ownerId };
  if (provider === "gitlab") {
    const missing = [
      ...(given.repositoryId === undefined ? ["--repo-id N (the project id)"] : []),
      ...(given.ownerId === undefined ? ["--owner-id N (the namespace id)"] : []),
      ...(branches.length === 0 ? ["--branch GLOB (e.g. --branch main)"] : []),
    ];
    if (missing.length > 0) {
      throw usage(
        `A GitLab policy pins the project's and its namespace's ids and names its branches: add ${missing.join(", ")}.`,
        ID_HINTS.gitlab,
      );
    }
    return {
      repository: options.repo,
      repositoryId: given.repositoryId!,
      ownerId: given.ownerId!,
      branches,
      notes: [],
    };
  }
  if (given.repositoryId !== undefined && given.ownerId !== undefined && branches.length > 0) {
    return {
      repository: options.repo,
      repositoryId: given.repositoryId,
      ownerId: given.ownerId,
      branches,
      notes: [],
    };
  }
  const lookup = await lookUpGithubRepository(ctx, options.repo);
  if (lookup.repository === null) {
    if (given.repositoryId !== undefined && given.ownerId !== undefined) {
      throw usage(
        `Name the branches CI may pull from with --branch (e.g. --branch main): ${lookup.reason}, so ${options.repo}'s default branch is not known.`,
      );
    }
    throw usage(
      `A GitHub policy pins the repository id and the owner id, which a renamed or re-created repository does not keep; ${lookup.reason}, so add --repo-id N and --owner-id N${branches.length === 0 ? " and --branch GLOB" : ""}.`,
      ID_HINTS.github,
    );
  }
  const found = lookup.repository;
  const notes: string[] = [];
  let repository = options.repo;
  if (found.repository !== options.repo) {
    if (found.repository.toLowerCase() !== options.repo.toLowerCase()) {
      throw usage(
        `GitHub answers for ${options.repo} with ${found.repository} (renamed or transferred): its jobs' tokens name ${found.repository}.`,
        `Pass --repo ${found.repository}.`,
      );
    }
    // Claims are compared case-sensitively: the policy takes GitHub's spelling, which the tokens carry.
    repository = found.repository;
    notes.push(`GitHub spells the repository ${found.repository}; the policy uses that spelling.`);
  }
  for (const [field, flag] of [
    ["repositoryId", "--repo-id"],
    ["ownerId", "--owner-id"],
  ] as const) {
    const value = given[field];
    if (value !== undefined && value !== found[field]) {
      throw usage(
        `${flag} ${value} is not what GitHub says of ${found.repository} (${found[field]}).`,
        `Check the number, or leave ${flag} out to take GitHub's.`,
      );
    }
  }
  if (branches.length === 0) {
    branches.push(found.defaultBranch);
    notes.push(
      `No --branch: the policy allows ${found.repository}'s default branch, ${found.defaultBranch}.`,
    );
  }
  return { repository, repositoryId: found.repositoryId, ownerId: found.ownerId, branches, notes };
}

/** What a command needs a copy's key for, in the words of its refusals: `nothing to ${what}`, `then ${then}`. */
export interface KeyUse {
  what: string;
  then: string;
}

const CI_KEY_USE: KeyUse = { what: "escrow for CI", then: "enable CI" };

/**
 * The key the copy's blob is sealed with: the local vault key for the personal copy; for an organisation's copy,
 * the organisation's key this machine kept at its last sync of it (its merge base), as `env push --org` uses it.
 */
export async function copyKey(
  ctx: Context,
  sp: SyncProject,
  org: string | undefined,
  server: string,
  userId: string,
  use: KeyUse = CI_KEY_USE,
): Promise<Uint8Array> {
  const vaultKey = await loadVaultKey(sp.deps, sp.vaultId);
  if (org === undefined) {
    if (vaultKey !== null) return vaultKey;
    throw new LatchkeyError("LK_ENV_NOT_FOUND", {
      message: `Vault ${sp.vaultId} has no key on this machine: there is nothing to ${use.what}.`,
      hint: `Pull the vault (\`latchkey env pull\`) or set secrets and push them (\`latchkey env set\`, \`latchkey env push\`), then ${use.then}.`,
    });
  }
  const entry = await getSyncEntry(ctx.paths.home, server, userId, sp.vaultId, org);
  const base =
    vaultKey === null || entry === null
      ? null
      : await readSyncBase(ctx.paths.home, sp.vaultId, vaultKey, org);
  if (base === null || base.server !== server || base.userId !== userId || base.orgKey === undefined) {
    throw new LatchkeyError("LK_ORG_VAULT_NOT_SYNCED", {
      message: `This machine holds no key of organisation ${org}'s copy of vault ${sp.vaultId} (it has not pulled it from ${server}), so it has nothing to ${use.what}. Nothing was sent.`,
      hint: `Run \`latchkey env pull --org ${org}\` first, then ${use.then} again.`,
      details: { vaultId: sp.vaultId, org },
    });
  }
  return fromBase64(base.orgKey);
}

/** The policy in words, one line each: what `env ci enable` shows before the password and `env ci show` prints. */
export function describePolicy(policy: CiPolicy): string[] {
  const terms = TERMS[policy.provider];
  const lines = [
    `${terms.repository}:  ${policy.repository} on ${terms.name} (${terms.repositoryId} ${policy.repositoryId}, ${terms.ownerId} ${policy.ownerId}: a renamed or re-created ${terms.repository} does not match)`,
    `branches:  ${policy.branches.join(", ")} (the job's ref must be one of these branches; tags and merge-request refs never match)`,
    policy.environments.length === 0
      ? "environments:  any of the vault's environments"
      : `environments:  ${policy.environments.join(", ")} (the job must run in that ${policy.provider === "github" ? "deployment " : ""}environment, and may pull only it)`,
    policy.allowForks
      ? "forks:  ALLOWED: runs a fork can trigger may pull too"
      : policy.provider === "github"
        ? "forks:  refused (only runs of push, workflow_dispatch, schedule, release and repository_dispatch may pull: events an outsider or a fork can start, such as pull_request or issue_comment, get nothing)"
        : "forks:  refused (a pipeline whose job runs in another project than this one gets nothing)",
  ];
  if (policy.provider === "gitlab")
    lines.push(`protected refs only:  ${policy.protectedRefsOnly ? "yes" : "no"}`);
  lines.push(`audience:  ${policy.audience}`, `issuer:  ${policy.issuer}`);
  return lines;
}

/**
 * `env ci enable`: checks the command line, needs a terminal (the step-up asks for the password; LK_NOT_INTERACTIVE
 * before any request otherwise), then wraps the copy's key for the server's escrow key, shows what the policy
 * allows and that the server will be able to read the vault, mints a `vault:ci:enable` proof and sends the policy.
 */
export async function enableCi(ctx: Context, options: CiEnableOptions): Promise<CiPolicyOutcome> {
  const shape = ciPolicySchema.shape;
  const provider = parseProvider(options.provider);
  if (options.protectedOnly && provider === "github") {
    throw usage(
      "--protected-only is for GitLab, whose tokens say whether the ref is protected (ref_protected); GitHub's do not.",
      "On GitHub, protect the branch (or the deployment environment) in the repository's settings and name it with --branch (or --environment).",
    );
  }
  checkFlag("--repo", shape.repository, options.repo);
  if (options.repoId !== undefined) checkFlag("--repo-id", shape.repositoryId, options.repoId);
  if (options.ownerId !== undefined) checkFlag("--owner-id", shape.ownerId, options.ownerId);
  if (options.branches.length > 0) checkFlag("--branch", shape.branches, options.branches);
  checkFlag("--environment", shape.environments, options.environments);
  if (options.audience !== undefined) checkFlag("--audience", shape.audience, options.audience);
  if (!ctx.stdin.isTTY || !ctx.stderr.isTTY) {
    throw new LatchkeyError("LK_NOT_INTERACTIVE", {
      message:
        "Enabling CI pulls asks for your password (it lets the server read the vault), and this command has no terminal to ask on (stdin or stderr is not one). Nothing was sent.",
      hint: "Run it in an interactive terminal. A script cannot confirm it is you, by design: there is no --yes for this.",
    });
  }
  const sp = await openSyncProject(ctx);
  const org = chosenOrg(sp.project, options);
  const serverOptions = {
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const active = await requireServerSession(ctx, { ...serverOptions, verbose: options.verbose ?? 0 });
  const server = active.selection.server;
  const api: ApiOptions = { ...serverOptions, server, verbose: options.verbose ?? 0 };
  const key = await copyKey(ctx, sp, org, server, active.session.subject);
  const config = await fetchCiConfig(ctx, api);
  const issuer = chooseIssuer(config.data, provider, options.issuer, server);
  const facts = await repositoryFacts(ctx, provider, options);
  const policy: CiPolicy = {
    provider,
    issuer,
    repository: facts.repository,
    repositoryId: facts.repositoryId,
    ownerId: facts.ownerId,
    branches: facts.branches,
    environments: [...options.environments],
    allowForks: options.allowForks,
    protectedRefsOnly: options.protectedOnly,
    audience: options.audience ?? config.data.defaultAudience,
  };
  const body: CiEnableRequest = { policy, escrow: await escrowKey(key, config.data) };
  // The server refuses what its schema refuses; said here in the command's words, before the password.
  const checked = checkSchema(ciEnableRequestSchema, body);
  if (!checked.ok) throw usage(`The policy is not valid: ${checked.message}`);
  const what = copyName(sp.vaultId, org);
  printStatus(
    ctx,
    [
      ...facts.notes,
      `CI pulls of ${what} on ${server}, as this policy allows them:`,
      ...describePolicy(policy).map((line) => `  ${line}`),
      `From now on the server can decrypt ${what}: its key is escrowed for the server, which opens it for a job this policy admits and releases one environment at a time, each release in the audit log (\`latchkey env log${orgFlag(org)}\`). Only this copy is escrowed; \`latchkey env ci disable${orgFlag(org)}\` deletes the escrow.`,
    ].join("\n"),
  );
  const proof = await mintStepUpProof(ctx, "vault:ci:enable", api);
  let answer;
  try {
    answer = await callApi(
      ctx,
      {
        method: "PUT",
        path: ciPolicyPath(sp.vaultId, org),
        body,
        answer: ciPolicyResponseSchema,
        stepUpProof: proof.proof,
      },
      api,
    );
  } catch (error) {
    throw enableRefused(error, sp.vaultId, org);
  }
  const enabled = checkAnswer(answer.data, sp.vaultId, org, answer.server);
  // What the user just agreed to: later pushes may renew this copy's escrow for this escrow key.
  const copy = { server: answer.server, userId: answer.userId, vaultId: sp.vaultId, org };
  await recordEscrowConsent(ctx, copy, config.data.escrowKeyFingerprint);
  return { ...enabled, server: answer.server };
}

/** A refusal of `PUT …/ci` in the command's words, where the server's own message does not reach the CLI. */
function enableRefused(error: unknown, vaultId: string, org: string | undefined): unknown {
  if (!isLatchkeyError(error)) return error;
  const details = { vaultId, ...(org === undefined ? {} : { org }), ...(error.details ?? {}) };
  switch (error.code) {
    case "LK_ORG_FORBIDDEN":
      return new LatchkeyError("LK_ORG_FORBIDDEN", {
        message: `Your role in organisation ${org!} does not allow you to enable CI pulls of its copy of vault ${vaultId} (it needs maintainer or stronger). Nothing was changed.`,
        hint: `Ask a maintainer, admin or owner of ${org!} (\`latchkey org members ${org!}\`) to run \`latchkey env ci enable --org ${org!} …\`, or to give you the maintainer role.`,
        details,
        cause: error,
      });
    case "LK_CI_ESCROW_INVALID":
      return new LatchkeyError("LK_CI_ESCROW_INVALID", {
        message: `The key this machine holds does not open the server's current version of ${copyName(vaultId, org)}: it was sealed with another key since this machine last synced it. Nothing was changed.`,
        hint: `Run \`latchkey env pull${orgFlag(org)}\`, then enable CI again.`,
        details,
        cause: error,
      });
    case "LK_VAULT_NOT_SYNCED":
      return new LatchkeyError("LK_VAULT_NOT_SYNCED", {
        message: `The server has no copy of vault ${vaultId} for your account: there is nothing for CI to pull.`,
        hint: "Run `latchkey env push` first, then enable CI.",
        details,
        cause: error,
      });
    default:
      return error;
  }
}

/** The server's policy answer, once it is about the copy asked for. */
function checkAnswer(
  data: CiPolicyResponse,
  vaultId: string,
  org: string | undefined,
  server: string,
): CiPolicyResponse {
  if (data.vaultId.toLowerCase() !== vaultId.toLowerCase() || data.org !== (org ?? null)) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server answered about the CI policy of ${copyName(vaultId, org)} with another copy's.`,
      details: { server },
    });
  }
  return data;
}

/**
 * `env ci show`: the copy's policy, its escrow's version and key fingerprint, who enabled it and when. With
 * `accept`, also records that this machine may escrow the copy's key for the server's current escrow key, as a
 * push asks when another maintainer enabled the policy or the escrow key changed (ci/consent.ts).
 */
export async function showCi(ctx: Context, options: CiShowOptions): Promise<CiPolicyOutcome> {
  const { vaultId, org, api } = await copyTarget(ctx, options);
  try {
    const answer = await callApi(
      ctx,
      { method: "GET", path: ciPolicyPath(vaultId, org), answer: ciPolicyResponseSchema },
      api,
    );
    const shown = { ...checkAnswer(answer.data, vaultId, org, answer.server), server: answer.server };
    if (options.accept !== true) return shown;
    const config = await fetchCiConfig(ctx, { ...api, server: answer.server });
    const copy = { server: answer.server, userId: answer.userId, vaultId, org };
    await recordEscrowConsent(ctx, copy, config.data.escrowKeyFingerprint);
    return { ...shown, acceptedEscrowKey: config.data.escrowKeyFingerprint };
  } catch (error) {
    if (!isLatchkeyError(error, "LK_CI_NOT_ENABLED")) throw error;
    throw new LatchkeyError("LK_CI_NOT_ENABLED", {
      message: `CI pulls are not enabled for ${copyName(vaultId, org)}: no CI job can pull it.`,
      hint: `Enable them with \`latchkey env ci enable${orgFlag(org)} --provider github --repo OWNER/REPO\` (\`latchkey env ci enable --help\`).`,
      details: { vaultId, ...(org === undefined ? {} : { org }) },
      cause: error,
    });
  }
}

/**
 * `env ci disable`: deletes the copy's policy and its escrow (no step-up: it takes access away). A copy without a
 * policy is not an error: there was nothing to delete.
 */
export async function disableCi(ctx: Context, options: CiTargetOptions): Promise<CiDisableOutcome> {
  const { vaultId, org, api } = await copyTarget(ctx, options);
  try {
    const answer = await callApi(
      ctx,
      { method: "DELETE", path: ciPolicyPath(vaultId, org), answer: ciDisableResponseSchema },
      api,
    );
    await forgetEscrowConsent(ctx, { server: answer.server, userId: answer.userId, vaultId, org });
    return { vaultId, org: org ?? null, server: answer.server, disabled: answer.data.disabled };
  } catch (error) {
    if (isLatchkeyError(error, "LK_CI_NOT_ENABLED")) {
      const server = typeof error.details?.server === "string" ? error.details.server : (api.server ?? "");
      await forgetEscrowConsent(ctx, { server, vaultId, org });
      return { vaultId, org: org ?? null, server, disabled: false };
    }
    if (isLatchkeyError(error, "LK_ORG_FORBIDDEN")) {
      throw new LatchkeyError("LK_ORG_FORBIDDEN", {
        message: `Your role in organisation ${org!} does not allow you to disable CI pulls of its copy of vault ${vaultId} (it needs maintainer or stronger). Nothing was changed.`,
        hint: `Ask a maintainer, admin or owner of ${org!} (\`latchkey org members ${org!}\`) to run \`latchkey env ci disable --org ${org!}\`.`,
        details: { vaultId, org, ...(error.details ?? {}) },
        cause: error,
      });
    }
    throw error;
  }
}
