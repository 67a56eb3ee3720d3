// A loopback Coolify API for an application's environment variables, as openapi.yaml in coollabsio/coolify
// documents them and ApplicationsController.php implements them: list (GET /api/v1/applications/{uuid}/envs),
// bulk create-or-update (PATCH …/envs/bulk with {"data": [{key, value, is_preview, is_literal, is_multiline,
// is_shown_once}]}, 201 with the variables written) and delete (DELETE …/envs/{env_uuid}). Like Coolify it answers
// a missing or wrong bearer token 401 {"message": "Unauthenticated."}, another application 404, a key outside
// Coolify's pattern 422 {"message", "errors"} after keeping the items before it, trims values, copies a new
// production variable into the preview deployments, and shows values only to a token with `read:sensitive` (never
// for a variable shown once). It refuses (400, in `refusals`) a body other than {"data": [...]}, a member outside
// the documented ones, a non-string key or value, a non-boolean flag, and a body on a GET or DELETE.
import {
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

/** One stored variable. */
export interface CoolifyEnv {
  uuid: string;
  key: string;
  value: string | null;
  is_preview: boolean;
  is_literal: boolean;
  is_multiline: boolean;
  is_shown_once: boolean;
}

/** A running Coolify double. */
export interface CoolifyDouble extends Double {
  /** The application's variables, production and preview, in creation order (tests may seed or inspect it). */
  readonly envs: CoolifyEnv[];
  /** Keys the double refuses with 422 (as a key Coolify's validation refuses), to make a partial failure. */
  readonly refuseKeys: Set<string>;
}

const ITEM_MEMBERS = new Set(["key", "value", "is_preview", "is_literal", "is_multiline", "is_shown_once"]);
const FLAGS = ["is_preview", "is_literal", "is_multiline", "is_shown_once"] as const;
// ValidationPatterns::ENVIRONMENT_VARIABLE_KEY_PATTERN, at most 255 characters.
const KEY = /^[A-Za-z_][A-Za-z0-9_.]*$/;

/**
 * Starts a Coolify double for `application` accepting `token`. `readSensitive` false: the token lacks the
 * `read:sensitive` permission, so values are withheld. `teamless`: the token's team is gone (400 "Invalid token.").
 */
export async function startCoolifyDouble(options: {
  token: string;
  application: string;
  readSensitive?: boolean;
  teamless?: boolean;
}): Promise<CoolifyDouble> {
  const envs: CoolifyEnv[] = [];
  const refuseKeys = new Set<string>();
  let next = 1;
  const readSensitive = options.readSensitive ?? true;

  const shown = (env: CoolifyEnv) => ({
    uuid: env.uuid,
    key: env.key,
    ...(readSensitive && !env.is_shown_once
      ? {
          value: env.value,
          real_value: env.is_literal || env.is_multiline ? `'${env.value ?? ""}'` : env.value,
        }
      : {}),
    is_preview: env.is_preview,
    is_literal: env.is_literal,
    is_multiline: env.is_multiline,
    is_shown_once: env.is_shown_once,
    is_runtime: true,
    is_buildtime: true,
    is_shared: false,
    comment: null,
    version: "4.0.0",
    created_at: "2026-12-07T12:00:00.000000Z",
    updated_at: "2026-12-07T12:00:00.000000Z",
  });
  const create = (fields: Omit<CoolifyEnv, "uuid">): CoolifyEnv => {
    const env: CoolifyEnv = { uuid: `env${String(next++).padStart(4, "0")}`, ...fields };
    envs.push(env);
    return env;
  };

  const handle = (request: RecordedRequest): Answer => {
    if (request.headers.authorization !== `Bearer ${options.token}`)
      return { status: 401, body: { message: "Unauthenticated." } };
    if (options.teamless === true)
      return {
        status: 400,
        body: { message: "Invalid token.", docs: "https://coolify.io/docs/api-reference/authorization" },
      };
    const url = new URL(request.url, "http://double");
    expectShape(url.search === "", "these endpoints take no query");
    const match = /^\/api\/v1\/applications\/([^/]+)\/envs(?:\/([^/]+))?$/.exec(url.pathname);
    expectShape(match !== null, `no such endpoint ${url.pathname}`);
    const [, application, rest] = match;
    if (decodeURIComponent(application!) !== options.application)
      return { status: 404, body: { message: "Application not found" } };

    if (request.method === "GET" && rest === undefined) {
      expectShape(request.body === "", "a GET has no body");
      return {
        status: 200,
        body: [...envs.filter((e) => !e.is_preview), ...envs.filter((e) => e.is_preview)].map(shown),
      };
    }
    if (request.method === "DELETE" && rest !== undefined && rest !== "bulk") {
      expectShape(request.body === "", "a DELETE has no body");
      const at = envs.findIndex((e) => e.uuid === decodeURIComponent(rest));
      if (at < 0) return { status: 404, body: { message: "Environment variable not found." } };
      envs.splice(at, 1);
      return { status: 200, body: { message: "Environment variable deleted." } };
    }
    if (request.method === "PATCH" && rest === "bulk") {
      const body = jsonBody(request);
      expectShape(isObject(body) && Object.keys(body).join() === "data", 'the body is {"data": [...]} only');
      const { data } = body;
      expectShape(Array.isArray(data) && data.length > 0, "data is a non-empty array");
      for (const item of data) {
        expectShape(isObject(item), "each variable is an object");
        for (const member of Object.keys(item))
          expectShape(ITEM_MEMBERS.has(member), `unknown member ${member}`);
        expectShape(typeof item.key === "string", "key must be a string");
        expectShape(typeof item.value === "string", "value must be a string");
        for (const flag of FLAGS)
          expectShape(
            item[flag] === undefined || typeof item[flag] === "boolean",
            `${flag} must be a boolean`,
          );
      }
      const written: unknown[] = [];
      // Coolify validates and saves item by item: a refused item ends the request, the ones before it stay saved.
      for (const item of data as Record<string, unknown>[]) {
        const key = (item.key as string).trim();
        if (!KEY.test(key) || key.length > 255 || refuseKeys.has(key))
          return {
            status: 422,
            body: {
              message: "Validation failed.",
              errors: {
                key: [
                  "The key must start with a letter or underscore and may only contain letters, numbers, underscores, and dots.",
                ],
              },
            },
          };
        const fields = {
          key,
          value: (item.value as string).trim(),
          is_preview: item.is_preview === true,
          is_literal: item.is_literal === true,
          is_multiline: item.is_multiline === true,
          is_shown_once: item.is_shown_once === true,
        };
        let env = envs.find((e) => e.key === key && e.is_preview === fields.is_preview);
        if (env !== undefined) Object.assign(env, fields);
        else {
          env = create(fields);
          if (!fields.is_preview && !envs.some((e) => e.key === key && e.is_preview))
            create({ ...fields, is_preview: true, is_shown_once: false });
        }
        written.push(shown(env));
      }
      return { status: 201, body: written };
    }
    expectShape(false, `${request.method} ${url.pathname} is not an endpoint of this API`);
  };

  const double = await startDouble(handle);
  return Object.assign(double, { envs, refuseKeys });
}
