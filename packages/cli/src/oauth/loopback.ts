// The one-shot redirect listener of a native app's authorization code flow (RFC 8252 §7.3): loopback only, an
// OS-chosen port, exactly one callback on one path, then closed.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LatchkeyError } from "@latchkey/core";

/** How long the listener waits for the browser by default: five minutes, then the login ends. */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5 * 60_000;

/** The hosts the listener may bind: IP literals only (RFC 8252 §8.3 advises against `localhost`). */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1"]);

/** Options of {@link startLoopbackListener}. */
export interface LoopbackOptions {
  /** The `state` sent in the authorization request; a callback carrying any other value ends the flow. */
  readonly expectedState: string;
  /** The redirect path registered with the provider. Default `/callback`. */
  readonly path?: string;
  /** Default {@link DEFAULT_CALLBACK_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** `127.0.0.1` (default) or `::1`; anything else is refused before a socket is opened. */
  readonly host?: string;
}

/** A listening redirect endpoint. */
export interface LoopbackListener {
  /** The redirect URI to send in the authorization request, e.g. `http://127.0.0.1:53124/callback`. */
  readonly redirectUri: string;
  /**
   * Settles once: with the full callback URL (code and state) after a callback whose state matched; rejected with
   * LK_OAUTH_STATE_MISMATCH, LK_OAUTH_DENIED (an `error` callback) or LK_OAUTH_TIMEOUT. The listener is closed
   * by then.
   */
  readonly callback: Promise<URL>;
  /** Closes the listener early (idempotent); a still pending `callback` rejects with LK_OAUTH_TIMEOUT. */
  close(): Promise<void>;
}

const PAGE_STYLE =
  "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}";

function page(title: string, text: string): string {
  // Only fixed strings reach the page: nothing from the request (code, state, the provider's error text) is echoed.
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
    `<style>${PAGE_STYLE}</style></head><body><h1>${title}</h1><p>${text}</p></body></html>`
  );
}

function answer(response: ServerResponse, status: number, html: string): void {
  response.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // The page must not pass the callback URL (which holds the code) on to anything it loads.
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    connection: "close",
  });
  response.end(html);
}

/** Provider error codes are short ASCII tokens (RFC 6749 §4.1.2.1); anything else is not repeated to the user. */
function safeErrorCode(value: string | null): string {
  return value !== null && /^[\w.-]{1,64}$/.test(value) ? value : "unknown_error";
}

/** Descriptions are shown, but bounded and stripped of control characters so a callback cannot forge output. */
function safeDescription(value: string | null): string | undefined {
  if (value === null) return undefined;
  // eslint-disable-next-line no-control-regex
  const cleaned = value.replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return cleaned === "" ? undefined : cleaned.slice(0, 200);
}

/**
 * Starts the redirect listener on a loopback address and an OS-assigned port. Only a GET on `path` can settle it;
 * other paths get 404 and change nothing, and after the first callback the server stops accepting connections.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8252#section-7.3
 */
export async function startLoopbackListener(options: LoopbackOptions): Promise<LoopbackListener> {
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The login listener binds only to a loopback address (127.0.0.1 or ::1), not ${host}.`,
      hint: "Nothing to configure: the SSO redirect listener always binds 127.0.0.1.",
    });
  }
  const path = options.path ?? "/callback";
  const timeoutMs = options.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;

  let settled = false;
  let resolveCallback!: (url: URL) => void;
  let rejectCallback!: (error: unknown) => void;
  const callback = new Promise<URL>((resolve, reject) => {
    resolveCallback = resolve;
    rejectCallback = reject;
  });
  // The caller may stop listening for `callback` (e.g. after a spawn failure); the rejection must not go unhandled.
  callback.catch(() => undefined);

  const server = createServer();
  // Set once the port is bound; shutdown may run before that (a failed bind) and then has no timer to clear.
  const timer: { handle?: NodeJS.Timeout } = {};
  const shutdown = (): Promise<void> =>
    new Promise((resolve) => {
      clearTimeout(timer.handle);
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      // Browsers keep connections alive; the one-shot listener must not stay reachable through them.
      server.closeAllConnections();
    });
  const settle = (outcome: { url: URL } | { error: LatchkeyError }): void => {
    if (settled) return;
    settled = true;
    if ("url" in outcome) resolveCallback(outcome.url);
    else rejectCallback(outcome.error);
  };

  let origin = "";
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    // Joined as text, not resolved: a request target like `//evil.example/callback` must not become another origin.
    const url = new URL(`${origin}${request.url ?? "/"}`);
    if (settled) {
      answer(response, 410, page("Login already finished", "This login link has been used. Close this tab."));
      return;
    }
    if (request.method !== "GET" || url.pathname !== path) {
      answer(response, 404, page("Not found", "This address only accepts the login callback."));
      return;
    }
    const params = url.searchParams;
    if (params.get("state") !== options.expectedState) {
      answer(
        response,
        400,
        page("Login failed", "The login response does not belong to this login. Return to the terminal."),
      );
      settle({ error: new LatchkeyError("LK_OAUTH_STATE_MISMATCH") });
    } else if (params.has("error")) {
      const code = safeErrorCode(params.get("error"));
      const description = safeDescription(params.get("error_description"));
      answer(
        response,
        400,
        page("Login failed", "The identity provider refused the login. Return to the terminal."),
      );
      settle({
        error: new LatchkeyError("LK_OAUTH_DENIED", {
          message: `The identity provider refused the login: ${code}${description ? ` (${description})` : ""}.`,
          details: { error: code },
        }),
      });
    } else if (!params.has("code")) {
      answer(
        response,
        400,
        page("Login failed", "The login response carries no code. Return to the terminal."),
      );
      settle({
        error: new LatchkeyError("LK_OAUTH_DENIED", {
          message: "The identity provider redirected back without an authorization code.",
        }),
      });
    } else {
      answer(response, 200, page("Logged in", "Latchkey has your login. You can close this tab."));
      settle({ url });
    }
    void shutdown();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;

  timer.handle = setTimeout(() => {
    settle({
      error: new LatchkeyError("LK_OAUTH_TIMEOUT", {
        message: `No login arrived within ${Math.round(timeoutMs / 1000)} s; the login listener was closed.`,
      }),
    });
    void shutdown();
  }, timeoutMs);
  // The listener alone must not keep a finished CLI alive.
  timer.handle.unref();

  return {
    redirectUri: `${origin}${path}`,
    callback,
    close: async () => {
      settle({
        error: new LatchkeyError("LK_OAUTH_TIMEOUT", {
          message: "The login was stopped before it finished.",
        }),
      });
      await shutdown();
    },
  };
}
