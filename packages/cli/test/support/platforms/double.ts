// What every loopback platform double shares: a node:http server on 127.0.0.1 that records each request, answers
// faults queued by the test (a 429 with Retry-After, a 5xx, a 401) before it looks at a request, and refuses with
// 400 and a reason anything its platform's documented shape does not allow. A refusal is also kept in `refusals`,
// so a test can assert that none happened: a double that silently accepted a wrong request would prove nothing.
//
// Imported by vitest suites only: node: builtins only.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a double received. */
export interface RecordedRequest {
  readonly method: string;
  /** The path with its query. */
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
}

/** An answer queued by a test, sent instead of the next request's normal answer. */
export interface Fault {
  readonly status: number;
  readonly retryAfter?: string;
  /** Only requests whose method and path start match (e.g. "PUT /repos"); default every request. */
  readonly match?: string;
}

/** A refused request: the double's reason, for the test to read. */
export class Refused extends Error {}

/** What a double's handler returns: a status and a JSON body (or none). */
export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  /** Headers beside the content type (which they may replace, as AWS's application/x-amz-json-1.1). */
  readonly headers?: Record<string, string>;
}

/** A running double. */
export interface Double {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Reasons of the requests refused with 400; a passing test expects it empty unless it sent a bad request. */
  readonly refusals: string[];
  /** Queues answers for the next matching requests, in order. */
  fault(...faults: Fault[]): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, answer: Answer, headers: Record<string, string> = {}): void {
  if (answer.body === undefined) {
    res.writeHead(answer.status, { ...headers, ...answer.headers });
    res.end();
    return;
  }
  res.writeHead(answer.status, { "content-type": "application/json", ...headers, ...answer.headers });
  res.end(JSON.stringify(answer.body));
}

/** Throws {@link Refused} with `reason` unless `condition` holds. */
export function expectShape(condition: boolean, reason: string): asserts condition {
  if (!condition) throw new Refused(reason);
}

/** The JSON of a request body, or a refusal. */
export function jsonBody(request: RecordedRequest): unknown {
  expectShape(
    (request.headers["content-type"] ?? "").startsWith("application/json"),
    "content-type must be application/json",
  );
  try {
    const body: unknown = JSON.parse(request.body);
    return body;
  } catch {
    throw new Refused("the body is not JSON");
  }
}

/** True for a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Starts a double whose `handle` answers each request that passed the queued faults. */
export async function startDouble(
  handle: (request: RecordedRequest) => Answer | Promise<Answer>,
): Promise<Double> {
  const requests: RecordedRequest[] = [];
  const refusals: string[] = [];
  const faults: Fault[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const request: RecordedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: await readBody(req),
      };
      requests.push(request);
      const at = faults.findIndex(
        (f) => f.match === undefined || `${request.method} ${request.url}`.startsWith(f.match),
      );
      if (at >= 0) {
        const [fault] = faults.splice(at, 1);
        send(
          res,
          { status: fault!.status, body: { error: { message: "fault injected by the test" } } },
          fault!.retryAfter === undefined ? {} : { "retry-after": fault!.retryAfter },
        );
        return;
      }
      try {
        send(res, await handle(request));
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        refusals.push(`${request.method} ${request.url}: ${error.message}`);
        send(res, { status: 400, body: { error: { message: error.message } } });
      }
    })().catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refusals,
    fault: (...more) => faults.push(...more),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
