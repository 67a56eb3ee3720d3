/**
 * The server's logger configuration: JSON lines (fastify's pino) that never carry a credential. Requests are
 * logged by method and path with every query value replaced (OAuth codes, states and tokens travel in query
 * strings), and the headers that carry credentials are redacted wherever a log call might include them.
 *
 * One line per request: fastify's default writes two ("incoming request", then "request completed"), which at
 * thousands of requests a second is a large share of the server's work. The one line is written when the
 * request ends and carries what both did: the request (method, redacted path), status and response time.
 */
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import pino from "pino";

/** What replaces a redacted value in the logs. */
export const REDACTED = "[redacted]";

/** Header names whose values are credentials. */
const SECRET_HEADERS = [
  "authorization",
  "cookie",
  "set-cookie",
  "proxy-authorization",
  "x-latchkey-signature",
];

const REDACT_PATHS = [
  ...SECRET_HEADERS.flatMap((h) => [
    `req.headers["${h}"]`,
    `res.headers["${h}"]`,
    `request.headers["${h}"]`,
    `reply.headers["${h}"]`,
    `headers["${h}"]`,
  ]),
];

/** Keeps the path and the query's keys, never its values: `/cb?code=[redacted]&state=[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q === -1) return url;
  const keys = url
    .slice(q + 1)
    .split("&")
    .filter((part) => part !== "")
    .map((part) => {
      const eq = part.indexOf("=");
      return eq === -1 ? part : `${part.slice(0, eq)}=${REDACTED}`;
    });
  return `${url.slice(0, q)}?${keys.join("&")}`;
}

interface LoggedRequest {
  method: string;
  url: string;
  id?: string;
  ip?: string;
}

/**
 * Logger options for fastify: level and JSON output to `stream` (default stdout). Tests pass a stream to read
 * the lines back.
 *
 * Stdout is written asynchronously and in batches (bufferedStdout): a write per line is a system call on the
 * event loop for every request.
 */
export function loggerOptions(options: {
  level?: string;
  stream?: NodeJS.WritableStream;
}): NonNullable<FastifyServerOptions["logger"]> {
  return {
    level: options.level ?? "info",
    stream: options.stream ?? bufferedStdout(),
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: {
      // Replaces pino's default request serializer, which logs the full URL (query string included).
      req(request: LoggedRequest) {
        return {
          method: request.method,
          url: redactUrl(request.url),
          id: request.id,
          remoteAddress: request.ip,
        };
      },
    },
  };
}

/** How long a log line may wait in the buffer before it is written. */
const LOG_FLUSH_MS = 100;

/**
 * Stdout through pino's sonic-boom, asynchronous and buffered: lines are written once 4 KiB have gathered, or at
 * the latest LOG_FLUSH_MS after they were logged, so a busy server makes one write system call for dozens of
 * requests instead of one each (~7% of a push's time on the event loop). pino flushes synchronously at exit.
 */
function bufferedStdout(): ReturnType<typeof pino.destination> {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  return destination;
}

/**
 * fastify's request logging with one line per request: nothing on arrival, and the completion line (info, or
 * error with the error) carrying the request as well. Errors, 404s and the other lines fastify writes are
 * unchanged. Pass an instance as fastify's `logController` option.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {
    // Logged with the completion line instead.
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        "request errored",
      );
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, "request completed");
    }
  }
}

/** An error's name and message for a log line, never its other fields (a driver's can quote the failing row). */
export function errorSummary(err: unknown): { name: string; message: string } {
  return err instanceof Error
    ? { name: err.name, message: err.message }
    : { name: "Error", message: String(err) };
}
