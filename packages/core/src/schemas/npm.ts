/**
 * What npm's world hands the CLI as JSON: a registry's answers (npm-registry-fetch and npm-profile read the same)
 * and the members of a package.json the CLI looks at. Registries add members of their own: only those read are
 * declared, and the rest is left alone.
 */
import * as z from "zod/mini";

const nonEmpty = z.string().check(z.minLength(1));

/** `GET /-/whoami` (and GitLab's `GET /api/v4/user`): the name of the token's user. */
export const npmWhoamiAnswerSchema = z.looseObject({ username: z.string() });

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

const httpUrl = z.string().check(z.refine(isHttpUrl));

/** `POST /-/v1/login`: where the person logs in, and where the CLI collects the token once they have. */
export const npmWebLoginAnswerSchema = z.looseObject({ loginUrl: httpUrl, doneUrl: httpUrl });

/** A login's token: a web login's doneUrl once done (200), or the classic login's `PUT /-/user/…`. */
export const npmTokenAnswerSchema = z.looseObject({ token: nonEmpty });

/** A CouchDB user document (`GET /-/user/org.couchdb.user:NAME`), put back with its revision on a login. */
export const npmUserDocumentSchema = z.record(z.string(), z.unknown());

/** A registry's refusal: its own words, in whichever of these members it uses; others are not text. */
export const npmErrorAnswerSchema = z.looseObject({
  error: z.catch(z.optional(z.string()), undefined),
  reason: z.catch(z.optional(z.string()), undefined),
  message: z.catch(z.optional(z.string()), undefined),
});

/** `workspaces` of package.json: a list of globs, or (yarn's form, which npm reads too) `{ packages: [...] }`. */
export const packageWorkspacesSchema = z.union([
  z.array(z.string()),
  z.looseObject({ packages: z.array(z.string()) }),
]);

/**
 * The members of a package.json the CLI reads. A member that is not as declared is read as absent, as npm
 * reads it for these purposes (no name to show, no workspaces).
 */
export const packageJsonSchema = z.looseObject({
  name: z.catch(z.optional(z.string()), undefined),
  workspaces: z.catch(z.optional(packageWorkspacesSchema), undefined),
});
