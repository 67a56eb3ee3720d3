// `-v` / `-vv` HTTP traces for OAuth traffic. -v prints each request line and the response status; -vv adds
// headers and bodies. Credentials are redacted by shape, never by trusting the caller: Authorization and cookie
// headers, every form or JSON field whose name ends in token, secret, password, code, assertion or verifier, and
// then output.ts's pattern-based redaction over the whole text as a second net.
import type { Context } from "../context.js";
import { redact } from "../output/output.js";

const SECRET_FIELD = /(^|_)(token|secret|password|code|assertion|verifier|otp|pin)$/i;
const REDACTED = "[REDACTED]";

/** The fetch signature openid-client's customFetch and authFetch both accept. */
export type TraceableFetch = (url: string, init: RequestInit) => Promise<Response>;

function redactForm(text: string): string {
  const params = new URLSearchParams(text);
  const out: string[] = [];
  for (const [key, value] of params) {
    out.push(`${key}=${SECRET_FIELD.test(key) ? REDACTED : encodeURIComponent(value)}`);
  }
  return out.join("&");
}

function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value))
      out[key] = SECRET_FIELD.test(key) && v !== null ? REDACTED : redactJson(v);
    return out;
  }
  return value;
}

/** A body as trace text: forms and JSON field by field, anything else only by its length. */
export function redactBody(text: string, contentType: string | null): string {
  const type = (contentType ?? "").toLowerCase();
  if (type.includes("application/x-www-form-urlencoded")) return redactForm(text);
  if (type.includes("json") || /^\s*[[{]/.test(text)) {
    try {
      return JSON.stringify(redactJson(JSON.parse(text)));
    } catch {
      // not JSON after all
    }
  }
  return `(${text.length} characters)`;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    for (const key of [...parsed.searchParams.keys()])
      if (SECRET_FIELD.test(key)) parsed.searchParams.set(key, REDACTED);
    parsed.username = parsed.username ? REDACTED : "";
    parsed.password = "";
    return parsed.href;
  } catch {
    return REDACTED;
  }
}

function headerLines(prefix: string, headers: Headers): string[] {
  const lines: string[] = [];
  headers.forEach((value, name) => {
    let shown = value;
    // The scheme (Bearer, Basic, DPoP) helps debugging; what follows it is the credential.
    if (/^(authorization|proxy-authorization|dpop)$/i.test(name))
      shown = `${value.split(" ")[0]} ${REDACTED}`;
    else if (/^(cookie|set-cookie)$/i.test(name)) shown = REDACTED;
    lines.push(`${prefix} ${name}: ${shown}`);
  });
  return lines;
}

function bodyText(body: RequestInit["body"]): string | null {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  return null;
}

/**
 * Wraps `ctx.fetch` so each request is traced on stderr at `verbose` ≥ 1 (request line, status) or ≥ 2 (headers
 * and redacted bodies). At verbose 0 it is `ctx.fetch` itself. Pass the result as openid-client's customFetch.
 */
export function traceFetch(ctx: Context, verbose: number): TraceableFetch {
  const base = ctx.fetch;
  if (verbose < 1) return (url, init) => base(url, init);
  const write = (lines: string[]): void => ctx.stderr.write(`${redact(lines.join("\n"), ctx.env)}\n`);
  return async (url, init) => {
    const method = (init.method ?? "GET").toUpperCase();
    const request = [`> ${method} ${redactUrl(url)}`];
    if (verbose >= 2) {
      const headers = new Headers(init.headers);
      request.push(...headerLines(">", headers));
      const text = bodyText(init.body);
      if (text !== null) request.push(`> ${redactBody(text, headers.get("content-type"))}`);
    }
    write(request);
    const response = await base(url, init);
    const status = response.statusText
      ? `${response.status} ${response.statusText}`
      : String(response.status);
    const lines = [`< ${status} (${method} ${redactUrl(url)})`];
    if (verbose >= 2) {
      lines.push(...headerLines("<", response.headers));
      const text = await response
        .clone()
        .text()
        .catch(() => null);
      if (text) lines.push(`< ${redactBody(text, response.headers.get("content-type"))}`);
    }
    write(lines);
    return response;
  };
}
