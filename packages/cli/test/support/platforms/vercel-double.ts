// A loopback Vercel API for the project environment-variable calls the adapter makes (vercel.com/docs/rest-api):
// list (GET /v10/projects/{p}/env), create with upsert (POST /v10/projects/{p}/env?upsert=true, an object or an
// array of {key, value, type, target[]}), delete (DELETE /v9/projects/{p}/env/{id}) and read one decrypted
// (GET /v1/projects/{p}/env/{id}). It refuses a wrong bearer token (401), another project or team, a missing
// upsert=true, an unknown type or target, a key Vercel would refuse, and any member outside the documented ones.
import {
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

/** One stored variable entry. */
export interface VercelEntry {
  id: string;
  key: string;
  value: string;
  type: "encrypted" | "sensitive" | "plain";
  target: string[];
}

/** A running Vercel double. */
export interface VercelDouble extends Double {
  /** The project's entries, in creation order (tests may seed or inspect it). */
  readonly entries: VercelEntry[];
  /** Keys the double refuses to create (its answer's `failed`), to make a partial failure. */
  readonly refuseKeys: Set<string>;
}

const TARGETS = new Set(["production", "preview", "development"]);
const CREATE_MEMBERS = new Set([
  "key",
  "value",
  "type",
  "target",
  "gitBranch",
  "comment",
  "customEnvironmentIds",
]);

/** Starts a Vercel double for `project` under `teamId` (absent: a personal account) accepting `token`. */
export async function startVercelDouble(options: {
  token: string;
  project: string;
  teamId?: string;
}): Promise<VercelDouble> {
  const entries: VercelEntry[] = [];
  const refuseKeys = new Set<string>();
  let next = 1;

  const handle = (request: RecordedRequest): Answer => {
    if (request.headers.authorization !== `Bearer ${options.token}`)
      return { status: 401, body: { error: { code: "forbidden", message: "Not authorized" } } };
    const url = new URL(request.url, "http://double");
    expectShape(
      url.searchParams.get("teamId") === (options.teamId ?? null),
      "teamId must name the project's team (and be absent for a personal project)",
    );
    const match = /^\/(v\d+)\/projects\/([^/]+)\/env(?:\/([^/]+))?$/.exec(url.pathname);
    expectShape(match !== null, `no such endpoint ${url.pathname}`);
    const [, version, project, id] = match;
    if (decodeURIComponent(project!) !== options.project)
      return { status: 404, body: { error: { code: "not_found", message: "Project not found" } } };

    if (request.method === "GET" && version === "v10" && id === undefined) {
      // Values are never part of the list.
      return {
        status: 200,
        body: { envs: entries.map(({ id: i, key, type, target }) => ({ id: i, key, type, target })) },
      };
    }
    if (request.method === "GET" && version === "v1" && id !== undefined) {
      const entry = entries.find((e) => e.id === decodeURIComponent(id));
      if (entry === undefined) return { status: 404, body: { error: { code: "not_found" } } };
      const decrypted = entry.type !== "sensitive";
      return {
        status: 200,
        body: {
          id: entry.id,
          key: entry.key,
          type: entry.type,
          target: entry.target,
          decrypted,
          ...(decrypted ? { value: entry.value } : {}),
        },
      };
    }
    if (request.method === "DELETE" && version === "v9" && id !== undefined) {
      const at = entries.findIndex((e) => e.id === decodeURIComponent(id));
      if (at < 0) return { status: 404, body: { error: { code: "not_found" } } };
      const [gone] = entries.splice(at, 1);
      return { status: 200, body: { id: gone!.id, key: gone!.key } };
    }
    if (request.method === "POST" && version === "v10" && id === undefined) {
      expectShape(url.searchParams.get("upsert") === "true", "upsert=true is required to overwrite");
      const body = jsonBody(request);
      const items = Array.isArray(body) ? body : [body];
      expectShape(items.length > 0, "at least one variable");
      const created: unknown[] = [];
      const failed: unknown[] = [];
      for (const item of items) {
        expectShape(isObject(item), "each variable is an object");
        for (const member of Object.keys(item))
          expectShape(CREATE_MEMBERS.has(member), `unknown member ${member}`);
        const { key, value, type, target } = item;
        expectShape(typeof key === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key), "key must be a name");
        expectShape(typeof value === "string", "value must be a string");
        expectShape(type === "encrypted" || type === "sensitive" || type === "plain", "unknown type");
        expectShape(
          Array.isArray(target) && target.length > 0 && target.every((t) => TARGETS.has(String(t))),
          "target must list production, preview or development",
        );
        if (refuseKeys.has(key)) {
          failed.push({ error: { code: "ENV_CONFLICT", message: "refused by the test", key } });
          continue;
        }
        const targets = (target as string[]).slice().sort();
        const existing = entries.find(
          (e) => e.key === key && e.target.slice().sort().join() === targets.join(),
        );
        if (existing !== undefined) {
          existing.value = value;
          existing.type = type;
          created.push({ id: existing.id, key });
        } else {
          const entry: VercelEntry = { id: `env_${next++}`, key, value, type, target: targets };
          entries.push(entry);
          created.push({ id: entry.id, key });
        }
      }
      return { status: 201, body: { created, failed } };
    }
    expectShape(false, `${request.method} ${url.pathname} is not an endpoint of this API`);
  };

  const double = await startDouble(handle);
  return Object.assign(double, { entries, refuseKeys });
}
