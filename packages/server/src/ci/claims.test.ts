import type { CiPolicy } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { githubClaims, gitlabClaims } from "../../test/support/ci-issuer.js";
import { describeCiRun, matchBranchGlob, matchCiPolicy, type CiPolicyOutcome } from "./claims.js";
import type { VerifiedCiToken } from "./verify.js";

const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";
const GITLAB_ISSUER = "https://gitlab.example.com";
const AUDIENCE = "https://latchkey.example.com";
const IAT = 1_800_000_000;

// The loopback issuer's claim sets (GitHub: octo-org/octo-repo, ids 74 and 65; GitLab: acme/app, ids 20 and 72).
const githubPolicy: CiPolicy = {
  provider: "github",
  issuer: GITHUB_ISSUER,
  repository: "octo-org/octo-repo",
  repositoryId: "74",
  ownerId: "65",
  branches: ["main", "release/*"],
  environments: [],
  allowForks: false,
  protectedRefsOnly: false,
  audience: AUDIENCE,
};

const gitlabPolicy: CiPolicy = {
  ...githubPolicy,
  provider: "gitlab",
  issuer: GITLAB_ISSUER,
  repository: "acme/app",
  repositoryId: "20",
  ownerId: "72",
};

function token(provider: "github" | "gitlab", over: Record<string, unknown> = {}): VerifiedCiToken {
  const base =
    provider === "github"
      ? githubClaims(GITHUB_ISSUER, AUDIENCE, IAT)
      : gitlabClaims(GITLAB_ISSUER, AUDIENCE, IAT);
  const claims: Record<string, unknown> = { ...base, ...over };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return {
    provider,
    issuer: provider === "github" ? GITHUB_ISSUER : GITLAB_ISSUER,
    claims,
    jti: String(claims.jti),
    issuedAt: new Date(IAT * 1000),
    expiresAt: new Date((IAT + 300) * 1000),
  };
}

const github = (over: Record<string, unknown> = {}, policy: Partial<CiPolicy> = {}) =>
  matchCiPolicy({ ...githubPolicy, ...policy }, token("github", over));
const gitlab = (over: Record<string, unknown> = {}, policy: Partial<CiPolicy> = {}) =>
  matchCiPolicy({ ...gitlabPolicy, ...policy }, token("gitlab", over));

/** The rule that refused, or "ok". */
function rule(outcome: CiPolicyOutcome): string {
  return outcome.ok ? "ok" : outcome.denial.rule;
}

describe("matchCiPolicy: GitHub", () => {
  it("allows a push to a listed branch of the pinned repository, named oidc:github:REPO:REF, any environment", () => {
    const outcome = github();
    expect(outcome).toMatchObject({
      ok: true,
      environments: [],
      name: "oidc:github:octo-org/octo-repo:refs/heads/main",
      run: {
        provider: "github",
        issuer: GITHUB_ISSUER,
        repository: "octo-org/octo-repo",
        ref: "refs/heads/main",
        runId: "1658821493/1",
        event: "push",
        environment: null,
      },
    });
  });

  it("compares the repository exactly: case, suffixes, prefixes and encodings are other repositories", () => {
    for (const repository of [
      "Octo-org/octo-repo",
      "octo-org/Octo-repo",
      "octo-org/octo-repo-evil",
      "octo-org/octo-repo/",
      "octo-org/octo-repo ",
      "evil/octo-org/octo-repo",
      "octo-org%2Focto-repo",
      "octo-org/octo-repo%3A",
      undefined,
      null,
      ["octo-org/octo-repo"],
    ]) {
      expect(rule(github({ repository })), String(repository)).toBe("repository");
    }
  });

  it("refuses a repository renamed into the policy's name, or re-created, by its pinned ids", () => {
    // Same name, another repository: the id it was created with is not the pinned one.
    expect(rule(github({ repository_id: "75" }))).toBe("repository-id");
    expect(rule(github({ repository_id: "074" }))).toBe("repository-id");
    expect(rule(github({ repository_id: undefined }))).toBe("repository-id");
    expect(rule(github({ repository_id: "" }))).toBe("repository-id");
    // Same name, another owner (the owner account was deleted and the name taken).
    expect(rule(github({ repository_owner_id: "66" }))).toBe("owner-id");
    expect(rule(github({ repository_owner_id: undefined }))).toBe("owner-id");
    // A whole number is the same id in another spelling; a fraction or a negative one is none.
    expect(rule(github({ repository_id: 74, repository_owner_id: 65 }))).toBe("ok");
    expect(rule(github({ repository_id: 74.5 }))).toBe("repository-id");
    expect(rule(github({ repository_id: -74 }))).toBe("repository-id");
  });

  it("never reads sub: the immutable form, a custom template or a lying sub change nothing", () => {
    for (const sub of [
      "repo:octo-org@65/octo-repo@74:ref:refs/heads/main",
      "repo:octo-org/octo-repo:environment:production",
      "repo:evil/other:ref:refs/tags/v1",
      "",
      undefined,
    ]) {
      expect(rule(github({ sub })), String(sub)).toBe("ok");
    }
    // A sub that names the policy's repository does not help a token of another one.
    expect(
      rule(github({ repository: "evil/octo-repo", sub: "repo:octo-org/octo-repo:ref:refs/heads/main" })),
    ).toBe("repository");
  });

  it("matches branch globs on ref: refs/heads/ only, case-sensitively, never a tag, a pull ref or a prefix", () => {
    expect(rule(github({ ref: "refs/heads/release/1.2" }))).toBe("ok");
    for (const ref of [
      "refs/heads/main-evil",
      "refs/heads/Main",
      "refs/heads/mainx",
      "refs/heads/xmain",
      "refs/heads/release/1.2/hotfix",
      "refs/heads/release",
      "refs/heads/dev",
    ]) {
      expect(rule(github({ ref })), ref).toBe("branch");
    }
    for (const ref of [
      "refs/tags/main",
      "refs/pull/1/merge",
      "main",
      "refs/heads/",
      "heads/main",
      undefined,
      7,
    ]) {
      expect(rule(github({ ref })), String(ref)).toBe("ref");
    }
    expect(rule(github({ ref_type: "tag" }))).toBe("ref");
    expect(rule(github({ ref_type: undefined }))).toBe("ok");
  });

  it("accepts only the events someone with write access starts unless the policy allows forks", () => {
    // A fork's code drives the first four; anyone can start the others on the default branch of a public repository.
    for (const event_name of [
      "pull_request",
      "pull_request_target",
      "workflow_run",
      "merge_group",
      "issue_comment",
      "issues",
      "discussion",
      "discussion_comment",
      "pull_request_review",
      "pull_request_review_comment",
      "watch",
      "fork",
      "gollum",
      "check_run",
      "Push",
      "push ",
      "",
      "some_event_github_adds_later",
    ]) {
      expect(rule(github({ event_name })), event_name).toBe("fork");
      expect(rule(github({ event_name }, { allowForks: true })), event_name).toBe("ok");
    }
    expect(rule(github({ event_name: undefined }))).toBe("fork");
    expect(rule(github({ event_name: ["push"] }))).toBe("fork");
    for (const event_name of ["push", "workflow_dispatch", "schedule", "release", "repository_dispatch"]) {
      expect(rule(github({ event_name })), event_name).toBe("ok");
    }
  });

  it("binds the token to the environment its claim names when the policy lists environments", () => {
    const policy = { environments: ["production", "staging"] };
    expect(github({ environment: "production" }, policy)).toMatchObject({
      ok: true,
      environments: ["production"],
    });
    expect(github({ environment: "staging" }, policy)).toMatchObject({ ok: true, environments: ["staging"] });
    for (const environment of ["Production", "production ", "dev", "", undefined, ["production"]]) {
      expect(rule(github({ environment }, policy)), String(environment)).toBe("environment");
    }
    // A policy without environments ignores the claim and allows every environment.
    expect(github({ environment: "anything" })).toMatchObject({ ok: true, environments: [] });
  });

  it("checks ref_protected only when the policy asks for protected refs", () => {
    expect(rule(github({ ref_protected: "false" }))).toBe("ok");
    expect(rule(github({ ref_protected: "false" }, { protectedRefsOnly: true }))).toBe("protected-ref");
    expect(rule(github({ ref_protected: true }, { protectedRefsOnly: true }))).toBe("protected-ref");
    expect(rule(github({}, { protectedRefsOnly: true }))).toBe("ok");
  });

  it("refuses a token of another provider or another issuer than the policy's", () => {
    expect(rule(matchCiPolicy(githubPolicy, token("gitlab")))).toBe("provider");
    expect(
      rule(matchCiPolicy({ ...githubPolicy, issuer: "https://github.example.com" }, token("github"))),
    ).toBe("provider");
  });

  it("names the rule and the claim's value in the message, escaped, and nothing the policy holds", () => {
    const outcome = github({ ref: 'refs/heads/dev"\n' });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.denial).toMatchObject({ rule: "branch", claim: "ref", value: 'refs/heads/dev"\n' });
    expect(outcome.denial.message).toContain('rule "branch" failed on claim ref ("refs/heads/dev\\"\\n")');
    expect(outcome.denial.message).not.toContain("release/*");
    const renamed = github({ repository_id: "75" });
    expect(renamed.ok ? "" : renamed.denial.message).not.toContain('"74"');
    const long = github({ repository: "a/" + "b".repeat(1000) });
    expect(long.ok ? "" : long.denial.message.length).toBeLessThan(600);
  });
});

describe("matchCiPolicy: GitLab", () => {
  it("allows a push to a listed branch: ref is the bare branch name, ref_type branch", () => {
    expect(gitlab()).toMatchObject({
      ok: true,
      environments: [],
      name: "oidc:gitlab:acme/app:main",
      run: { provider: "gitlab", repository: "acme/app", ref: "main", runId: "1001/5001", event: "push" },
    });
    expect(rule(gitlab({ ref: "release/7", ref_path: "refs/heads/release/7" }))).toBe("ok");
  });

  it("compares project_path, project_id and namespace_id exactly", () => {
    for (const project_path of ["Acme/app", "acme/app-evil", "acme/app/", "acme/sub/app"]) {
      expect(rule(gitlab({ project_path, job_project_path: project_path })), project_path).toBe("repository");
    }
    expect(rule(gitlab({ project_id: "21", job_project_id: "21" }))).toBe("repository-id");
    expect(rule(gitlab({ namespace_id: "73", job_namespace_id: "73" }))).toBe("owner-id");
  });

  it("refuses tags, other ref types and a ref_path that disagrees with ref", () => {
    expect(rule(gitlab({ ref: "main", ref_type: "tag", ref_path: "refs/tags/main" }))).toBe("ref");
    expect(rule(gitlab({ ref_type: undefined }))).toBe("ref");
    expect(rule(gitlab({ ref_path: "refs/tags/main" }))).toBe("ref");
    expect(rule(gitlab({ ref_path: "refs/merge-requests/1/head" }))).toBe("ref");
    expect(rule(gitlab({ ref: "" }))).toBe("ref");
    // The bare name is matched; a GitHub-style full ref is a branch literally named so, which no glob lists.
    expect(rule(gitlab({ ref: "refs/heads/main", ref_path: undefined }))).toBe("branch");
    expect(rule(gitlab({ ref: "main-evil", ref_path: "refs/heads/main-evil" }))).toBe("branch");
    expect(rule(gitlab({ ref_path: undefined }))).toBe("ok");
  });

  it("refuses a fork's merge request pipeline (project_id ≠ job_project_id) unless the policy allows forks", () => {
    // GitLab 18.3+: a fork's merge request pipeline run in the parent names the fork in project_*, the parent in
    // job_project_*.
    const forkInParent = {
      project_id: "99",
      project_path: "mallory/app",
      namespace_id: "98",
      pipeline_source: "merge_request_event",
    };
    expect(rule(gitlab(forkInParent))).toBe("fork");
    expect(gitlab(forkInParent, { allowForks: true })).toMatchObject({
      ok: true,
      run: { repository: "acme/app" },
    });
    // The fork's own pipeline, in the fork, is another project either way.
    const inFork = {
      ...forkInParent,
      job_project_id: "99",
      job_project_path: "mallory/app",
      job_namespace_id: "98",
    };
    expect(rule(gitlab(inFork))).toBe("repository");
    expect(rule(gitlab(inFork, { allowForks: true }))).toBe("repository");
    // The project's own merge request pipelines pass.
    expect(rule(gitlab({ pipeline_source: "merge_request_event" }))).toBe("ok");
  });

  it("without job_project_id (an older GitLab) refuses merge request pipelines unless forks are allowed", () => {
    const older = { job_project_id: undefined, job_project_path: undefined, job_namespace_id: undefined };
    expect(rule(gitlab(older))).toBe("ok");
    expect(rule(gitlab({ ...older, pipeline_source: "merge_request_event" }))).toBe("fork");
    expect(rule(gitlab({ ...older, pipeline_source: "merge_request_event" }, { allowForks: true }))).toBe(
      "ok",
    );
    // The project claims are then the ones compared.
    expect(rule(gitlab({ ...older, project_id: "21" }))).toBe("repository-id");
  });

  it('requires ref_protected to be "true" when the policy asks for protected refs', () => {
    const policy = { protectedRefsOnly: true };
    expect(rule(gitlab({}, policy))).toBe("ok");
    for (const ref_protected of ["false", "True", true, undefined]) {
      expect(rule(gitlab({ ref_protected }, policy)), String(ref_protected)).toBe("protected-ref");
    }
    expect(rule(gitlab({ ref_protected: "false" }))).toBe("ok");
  });

  it("binds the token to its job's environment when the policy lists environments", () => {
    const policy = { environments: ["production"] };
    expect(gitlab({ environment: "production" }, policy)).toMatchObject({
      ok: true,
      environments: ["production"],
    });
    expect(rule(gitlab({ environment: "review/feature" }, policy))).toBe("environment");
    expect(rule(gitlab({}, policy))).toBe("environment");
  });
});

describe("matchBranchGlob", () => {
  const cases: [glob: string, branch: string, expected: boolean][] = [
    ["main", "main", true],
    ["main", "Main", false],
    ["main", "main2", false],
    ["main", "mai", false],
    ["release/*", "release/1.0", true],
    ["release/*", "release/", true],
    ["release/*", "release/1.0/hotfix", false],
    ["release/*", "release", false],
    ["release/**", "release/1.0/hotfix", true],
    ["release/**", "release/1.0", true],
    ["**", "any/thing/at/all", true],
    ["*", "main", true],
    ["*", "feature/x", false],
    ["feat-*-x", "feat-abc-x", true],
    ["feat-*-x", "feat-a/b-x", false],
    ["feat-**-x", "feat-a/b-x", true],
    ["*/*", "a/b", true],
    ["*/*", "a/b/c", false],
    ["a**z", "az", true],
    ["a***z", "a/b/z", true],
    ["v?.0", "v1.0", false],
    ["v?.0", "v?.0", true],
    ["[ab]", "a", false],
    ["[ab]", "[ab]", true],
    ["a.c", "abc", false],
    ["", "", true],
  ];
  it.each(cases)("%s against %s is %s", (glob, branch, expected) => {
    expect(matchBranchGlob(glob, branch)).toBe(expected);
  });

  it("takes many stars against a long branch without backtracking", () => {
    const glob = "*a".repeat(100) + "b";
    expect(matchBranchGlob(glob, "a".repeat(5000))).toBe(false);
    expect(matchBranchGlob("**a".repeat(100), "a".repeat(5000))).toBe(true);
  });
});

describe("describeCiRun", () => {
  it("records the job of a GitHub and a GitLab token, shortened claims, and no values of other claims", () => {
    const run = describeCiRun(
      token("github", { environment: "production", repository: "o/" + "r".repeat(500) }),
    );
    expect(run).toMatchObject({ environment: "production", runId: "1658821493/1", event: "push" });
    expect(run.repository!.length).toBeLessThanOrEqual(201);
    expect(describeCiRun(token("gitlab", { job_id: undefined }))).toMatchObject({
      runId: "1001",
      event: "push",
    });
    expect(describeCiRun(token("github", { run_id: undefined }))).toMatchObject({ runId: null });
  });
});
