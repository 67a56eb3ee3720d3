/**
 * The JSON body parser of every route: fastify's own (its prototype-poisoning checks included), behind a scan of
 * the raw bytes that refuses a body nesting arrays and objects too deeply or holding too many of them and their
 * items. JSON.parse makes a heap object of dozens of bytes for every array and object, so within the body limit
 * alone an 8 MiB body of `[[[[…` or `[{},{},…]` costs hundreds of megabytes and a second of blocked event loop,
 * and a deep value overflows the stack of anything that recurses over it (JSON.stringify). The scan is linear,
 * allocates nothing and runs before the body is even decoded to a string, so a refused body costs about its size.
 */
import type { FastifyInstance } from "fastify";

/** Deepest nesting of arrays and objects a request body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 64;
/**
 * Most arrays, objects, array elements and object members a request body may have together. A push's only
 * structured field is its schema, at most 64 KiB of JSON, which cannot hold half as many.
 */
export const MAX_JSON_ITEMS = 65_536;

/** Why a body was refused before parsing. */
export type JsonShapeProblem = "depth" | "items";

/** A JSON body refused by the scan: a 400 whose message names the limit, never the body. */
export class JsonBodyRefused extends Error {
  readonly statusCode = 400;
  readonly code: string;

  constructor(readonly problem: JsonShapeProblem) {
    super(
      problem === "depth"
        ? `The request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels.`
        : `The request body holds more than ${MAX_JSON_ITEMS} arrays, objects, elements and members.`,
    );
    this.name = "JsonBodyRefused";
    this.code = problem === "depth" ? "ERR_JSON_TOO_DEEP" : "ERR_JSON_TOO_MANY_ITEMS";
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * What makes `body` (UTF-8 JSON text) too costly to parse, or null. Every item but the first of an array or
 * object follows a comma, so containers plus commas bound the items. Only valid JSON is judged exactly: text
 * JSON.parse would refuse anyway may pass (it is refused there).
 */
export function jsonShapeProblem(body: Buffer): JsonShapeProblem | null {
  let depth = 0;
  let items = 0;
  const length = body.length;
  for (let i = 0; i < length; i++) {
    const byte = body[i];
    if (byte === QUOTE) {
      // Strings are skipped with indexOf (most of a push is one long base64 string). A quote after an odd run
      // of backslashes is escaped; the run lies inside the string, so each byte is looked at a bounded number
      // of times. Multi-byte UTF-8 sequences never contain bytes below 0x80, so no structural byte hides in one.
      let end = i;
      for (;;) {
        end = body.indexOf(QUOTE, end + 1);
        if (end === -1) return null;
        let backslashes = 0;
        while (body[end - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      i = end;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > MAX_JSON_DEPTH) return "depth";
      if (++items > MAX_JSON_ITEMS) return "items";
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    } else if (byte === COMMA) {
      if (++items > MAX_JSON_ITEMS) return "items";
    }
  }
  return null;
}

/**
 * Makes `app` (and every plugin under it) parse application/json with the scan first, then fastify's default
 * parser. Each route's bodyLimit still applies, before any of this.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    const problem = jsonShapeProblem(body as Buffer);
    if (problem !== null) {
      done(new JsonBodyRefused(problem), undefined);
      return;
    }
    void parse(request, (body as Buffer).toString("utf8"), done);
  });
}
