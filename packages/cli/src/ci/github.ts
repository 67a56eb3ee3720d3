// The numbers a GitHub CI policy pins (docs/ci.md, "The CLI"): the repository's id and its owner's id, which the
// OIDC token carries as `repository_id` and `repository_owner_id` and which a renamed or re-created repository does
// not keep. `env ci enable` asks the `gh` CLI for them when it is installed, so nobody has to look them up; gh's
// own login and host settings apply, and nothing of gh's is stored.
import { checkSchema, githubRepositoryAnswerSchema } from "@latchkey/core";
import type { Context } from "../context.js";

/** How long `gh api` may take: one HTTPS request to GitHub. */
export const GH_LOOKUP_TIMEOUT_MS = 15_000;

/** A repository as GitHub describes it, in the policy's terms (ids as decimal strings). */
export interface GithubRepository {
  /** OWNER/REPO as GitHub spells it: the `repository` claim of its tokens. */
  readonly repository: string;
  readonly repositoryId: string;
  readonly ownerId: string;
  readonly defaultBranch: string;
}

/** What asking gh produced: the repository, or why not (gh absent, not logged in, no such repository…). */
export type GithubLookup =
  | { readonly repository: GithubRepository; readonly reason?: undefined }
  | { readonly repository: null; readonly reason: string };

function errnoCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/** The first line of gh's complaint, printable characters only and short: enough to say what went wrong. */
function firstLine(text: string): string {
  const line = (text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "").trim();
  // eslint-disable-next-line no-control-regex
  const printable = line.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}

/**
 * `gh api repos/OWNER/REPO`, through the context's spawn, without a shell and without prompts. An absent gh, a
 * non-zero exit, a timeout or an answer that is not a repository are reasons, not errors: the caller then asks
 * for the numbers on the command line.
 */
export async function lookUpGithubRepository(ctx: Context, repository: string): Promise<GithubLookup> {
  const command = `gh api repos/${repository}`;
  let result;
  try {
    result = await ctx.spawn("gh", ["api", `repos/${repository}`], {
      // Never let gh stop to ask a question: its answer is read by a program.
      env: { ...ctx.env, GH_PROMPT_DISABLED: "1", NO_COLOR: "1", GH_PAGER: "" },
      timeoutMs: GH_LOOKUP_TIMEOUT_MS,
    });
  } catch (error) {
    const code = errnoCode(error);
    if (code === "ENOENT") return { repository: null, reason: "gh (GitHub's CLI) is not installed" };
    return { repository: null, reason: `gh could not be started (${code ?? "error"})` };
  }
  if (result.timedOut) {
    return { repository: null, reason: `\`${command}\` timed out after ${GH_LOOKUP_TIMEOUT_MS / 1000} s` };
  }
  if (result.code !== 0) {
    const how = result.code === null ? `killed by ${result.signal ?? "a signal"}` : `exit ${result.code}`;
    const said = firstLine(result.stderr);
    return { repository: null, reason: `\`${command}\` failed (${how})${said === "" ? "" : `: ${said}`}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    return { repository: null, reason: `\`${command}\` printed something that is not JSON` };
  }
  const answer = checkSchema(githubRepositoryAnswerSchema, json);
  if (!answer.ok) {
    return {
      repository: null,
      reason: `\`${command}\` did not print a repository (${answer.path.join(".") || "answer"}: ${answer.message})`,
    };
  }
  return {
    repository: {
      repository: answer.value.full_name,
      repositoryId: String(answer.value.id),
      ownerId: String(answer.value.owner.id),
      defaultBranch: answer.value.default_branch,
    },
  };
}
