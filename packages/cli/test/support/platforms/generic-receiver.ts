// A loopback generic receiver, written from docs/platforms.md's recipe alone: it checks the signature over the
// exact body bytes in constant time, refuses a timestamp more than 5 minutes from its clock or different from the
// document's, refuses an id it has already taken (a replay), refuses a document that is not the documented format
// (401 for a bad signature or timestamp, 400 for the shape), and applies `values` and `remove` to its state.
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

/** How far a timestamp may be from the receiver's clock, in seconds. */
export const TOLERANCE_SECONDS = 300;

/** A running receiver. */
export interface GenericReceiver extends Double {
  readonly state: Map<string, string>;
  /** Why the requests answered 401 were refused. */
  readonly rejected: string[];
}

/** Starts a receiver verifying with `secret` against `now()` (milliseconds). */
export async function startGenericReceiver(options: {
  secret: string;
  now: () => number;
}): Promise<GenericReceiver> {
  const state = new Map<string, string>();
  const rejected: string[] = [];
  const seen = new Set<string>();
  const reject = (reason: string): Answer => {
    rejected.push(reason);
    return { status: 401, body: { error: reason } };
  };

  const handle = (request: RecordedRequest): Answer => {
    expectShape(request.method === "POST", "only POST");
    const timestamp = request.headers["x-latchkey-timestamp"];
    const signature = request.headers["x-latchkey-signature"];
    if (typeof timestamp !== "string" || !/^\d+$/.test(timestamp)) return reject("no timestamp");
    if (typeof signature !== "string" || !signature.startsWith("v1=")) return reject("no signature");
    const expected = createHmac("sha256", options.secret).update(`${timestamp}.${request.body}`).digest();
    const given = Buffer.from(signature.slice(3), "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reject("bad signature");
    if (Math.abs(Math.floor(options.now() / 1000) - Number(timestamp)) > TOLERANCE_SECONDS)
      return reject("timestamp outside the window");
    const doc = jsonBody(request);
    expectShape(isObject(doc), "the document is an object");
    expectShape(
      Object.keys(doc).sort().join() === "format,id,remove,timestamp,values",
      "members: format, id, timestamp, values, remove",
    );
    expectShape(doc.format === "latchkey-push-v1", "format latchkey-push-v1");
    expectShape(doc.timestamp === Number(timestamp), "the document's timestamp is the header's");
    expectShape(typeof doc.id === "string" && /^[0-9a-f]{32}$/.test(doc.id), "id: 32 hex digits");
    if (seen.has(doc.id)) return reject("replayed id");
    const { values, remove } = doc;
    expectShape(
      isObject(values) && Object.values(values).every((v) => typeof v === "string"),
      "values: strings",
    );
    expectShape(Array.isArray(remove) && remove.every((n) => typeof n === "string"), "remove: names");
    seen.add(doc.id);
    for (const [name, value] of Object.entries(values)) state.set(name, value as string);
    for (const name of remove) state.delete(name);
    return { status: 204 };
  };

  const double = await startDouble(handle);
  return Object.assign(double, { state, rejected });
}
