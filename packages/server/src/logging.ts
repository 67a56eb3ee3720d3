/**
 * The server's logger configuration: JSON lines (fastify's pino) that never carry a credential. Requests are
 * logged by method and path with every query value replaced (OAuth codes, states and tokens travel in query
 * strings), and the headers that carry credentials are redacted wherever a log call might include them.
 */
import type { FastifyServerOptions } from "fastify";

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
 */
export function loggerOptions(options: {
  level?: string;
  stream?: NodeJS.WritableStream;
}): NonNullable<FastifyServerOptions["logger"]> {
  return {
    level: options.level ?? "info",
    ...(options.stream ? { stream: options.stream } : {}),
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
