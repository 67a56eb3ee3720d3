/**
 * What GitHub's REST API hands the CLI as JSON, through `gh api`. Only the members read are declared; GitHub's
 * many others are left alone.
 */
import * as z from "zod/mini";

const positiveId = z.int().check(z.gte(1));

/**
 * `GET /repos/{owner}/{repo}`: the numbers a CI policy pins (the repository's and its owner's ids, which a rename or
 * a re-created repository does not keep), the repository's name as GitHub spells it, and its default branch.
 */
export const githubRepositoryAnswerSchema = z.looseObject({
  id: positiveId,
  full_name: z.string().check(z.minLength(3)),
  owner: z.looseObject({ id: positiveId }),
  default_branch: z.string().check(z.minLength(1)),
});
/** A repository as GitHub describes it. */
export type GithubRepositoryAnswer = z.infer<typeof githubRepositoryAnswerSchema>;

/**
 * The answer of a GitHub Actions runner's ID token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL, what @actions/core's
 * getIDToken reads): the job's OIDC ID token as `value`.
 */
export const githubIdTokenAnswerSchema = z.looseObject({
  value: z.string().check(z.minLength(1)),
});
/** The runner's ID token answer. */
export type GithubIdTokenAnswer = z.infer<typeof githubIdTokenAnswerSchema>;
