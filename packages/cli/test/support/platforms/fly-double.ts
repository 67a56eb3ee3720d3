// A loopback Fly.io Machines API for app secrets: GET /v1/apps/{app}/secrets (names and digests) and
// POST /v1/apps/{app}/secrets with {"values": {NAME: string | null}} (null deletes), applied whole or not at all.
// It refuses a wrong bearer token (401), another app (404), a body with other members, a value that is neither a
// string nor null, and a name Fly would not take as an environment variable.
import { createHash } from "node:crypto";
import {
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

/** A running Fly double. */
export interface FlyDouble extends Double {
  /** The app's secrets, name → value (tests may seed or inspect it). */
  readonly secrets: Map<string, string>;
  /** Names the double refuses (422, the whole update), to make a failed bulk write. */
  readonly refuseNames: Set<string>;
}

/** Starts a Fly double for `app` accepting `token`. */
export async function startFlyDouble(options: { token: string; app: string }): Promise<FlyDouble> {
  const secrets = new Map<string, string>();
  const refuseNames = new Set<string>();
  let version = 1;
  const listing = () =>
    [...secrets].map(([name, value]) => ({
      name,
      digest: createHash("sha256").update(value).digest("hex").slice(0, 16),
    }));

  const handle = (request: RecordedRequest): Answer => {
    if (request.headers.authorization !== `Bearer ${options.token}`)
      return { status: 401, body: { error: "unauthorized" } };
    const match = /^\/v1\/apps\/([^/?]+)\/secrets$/.exec(request.url);
    expectShape(match !== null, `no such endpoint ${request.url}`);
    if (decodeURIComponent(match[1]!) !== options.app)
      return { status: 404, body: { error: "app not found" } };
    if (request.method === "GET") return { status: 200, body: { secrets: listing() } };
    expectShape(request.method === "POST", `${request.method} is not an endpoint of this API`);
    const body = jsonBody(request);
    expectShape(isObject(body) && Object.keys(body).join() === "values", 'the body is {"values": {…}} only');
    const { values } = body;
    expectShape(isObject(values) && Object.keys(values).length > 0, "values is a non-empty object");
    for (const [name, value] of Object.entries(values)) {
      expectShape(/^[A-Za-z_][A-Za-z0-9_]*$/.test(name), "a secret name is an environment variable name");
      expectShape(typeof value === "string" || value === null, "a value is a string, or null to delete");
    }
    if (Object.keys(values).some((name) => refuseNames.has(name)))
      return { status: 422, body: { error: "refused by the test" } };
    for (const [name, value] of Object.entries(values)) {
      if (value === null) secrets.delete(name);
      else secrets.set(name, value as string);
    }
    version++;
    return { status: 200, body: { secrets: listing(), version } };
  };

  const double = await startDouble(handle);
  return Object.assign(double, { secrets, refuseNames });
}
