/**
 * The identity slice's routes: the hand-off of /oidc to oidc-provider, and the sign-in pages it sends users to
 * (/interaction/:uid: login, TOTP, sign-up, cancel). Each page route reads its form, calls the service and maps
 * the outcome to a page (pages.ts) or to the provider's next step.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { DASHBOARD_CLIENT_ID, OIDC_PATH } from "@latchkey/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type Provider from "oidc-provider";
import { loginPage, messagePage, signupPage, totpPage } from "./pages.js";
import type { IdentityService, RateLimited, SignInStep } from "./service.js";

/** What the routes need. */
export interface IdentityRouteDeps {
  service: IdentityService;
  /** The provider; throws before the server knows its public URL. */
  provider: () => Provider;
  /** The provider's request handler, or undefined before the server knows its public URL (then: 503). */
  handler: () => ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  /** --open-signup: the login page links to a sign-up form. */
  openSignup: boolean;
}

type RawRequest = IncomingMessage & { originalUrl?: string };
type Form = Record<string, string | undefined>;
type UidRequest = FastifyRequest<{ Params: { uid: string }; Body: Form }>;

/** Mounts the provider under OIDC_PATH and the sign-in pages on `app`. */
export function registerIdentityRoutes(app: FastifyInstance, deps: IdentityRouteDeps): void {
  // The provider reads the raw request itself (bodies included), so the hand-off happens in onRequest, before
  // fastify would parse (and refuse) a form body; hijack tells fastify the response is not its business.
  app.route({
    method: ["GET", "POST", "HEAD", "OPTIONS", "DELETE", "PUT"],
    url: `${OIDC_PATH}/*`,
    onRequest: async (request, reply) => {
      const handle = deps.handler();
      if (!handle) {
        return reply.code(503).send({ error: "unavailable", message: "The identity service is starting." });
      }
      reply.hijack();
      const raw = request.raw as RawRequest;
      const full = raw.url ?? "/";
      raw.originalUrl = full;
      raw.url = full.slice(OIDC_PATH.length) || "/";
      await handle(raw, reply.raw);
    },
    // Never reached: onRequest hijacks every request.
    handler: () => undefined,
  });
  void app.register((pages, _options, done) => {
    pages.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string", bodyLimit: 16 * 1024 },
      (_request, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      },
    );
    registerPages(pages, deps);
    done();
  });
}

/** "N seconds" or "N minutes", rounded up. */
function aboutHowLong(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? "1 second" : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return (
    reply
      .code(status)
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header("x-frame-options", "DENY")
      // No form-action: browsers apply it to the redirects after a submission, and the last one goes to the
      // CLI's loopback listener.
      .header(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      )
      .send(body)
  );
}

/** The 429 page of an attempt a sign-in limit refused, logged without the email or the credential. */
function rateLimited(request: UidRequest, reply: FastifyReply, step: SignInStep, outcome: RateLimited) {
  request.log.warn(
    { event: "auth.rate_limited", limit: outcome.limit, step },
    "sign-in attempt rate-limited",
  );
  const seconds = outcome.retryAfterSeconds;
  return html(
    reply.header("retry-after", String(seconds)),
    429,
    messagePage(
      "Too many attempts",
      `Too many failed sign-in attempts. Try again in ${aboutHowLong(seconds)}.`,
    ),
  );
}

function loginFailed(request: UidRequest, step: SignInStep): void {
  request.log.info({ event: "auth.login_failed", step }, "sign-in attempt failed");
}

function registerPages(app: FastifyInstance, deps: IdentityRouteDeps): void {
  const { service } = deps;

  /** The interaction of the request (by its cookie), or a page saying it expired. */
  const details = async (request: UidRequest, reply: FastifyReply) => {
    try {
      const interaction = await deps.provider().interactionDetails(request.raw, reply.raw);
      if (interaction.uid !== request.params.uid) throw new Error("uid mismatch");
      return interaction;
    } catch {
      await html(
        reply,
        400,
        messagePage(
          "Sign-in expired",
          "This sign-in page has expired or was opened in another browser. Start the sign-in again from your terminal.",
        ),
      );
      return undefined;
    }
  };

  const finish = async (
    request: UidRequest,
    reply: FastifyReply,
    result: Parameters<Provider["interactionResult"]>[2],
  ): Promise<void> => {
    const returnTo = await deps.provider().interactionResult(request.raw, reply.raw, result, {
      mergeWithLastSubmission: false,
    });
    await reply.code(303).header("cache-control", "no-store").redirect(returnTo, 303);
  };

  const isDevice = (interaction: { params: Record<string, unknown> }): boolean =>
    interaction.params.response_type === undefined;
  const isDashboard = (interaction: { params: Record<string, unknown> }): boolean =>
    interaction.params.client_id === DASHBOARD_CLIENT_ID;

  app.get("/interaction/:uid", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    if (interaction.prompt.name === "login") {
      return html(
        reply,
        200,
        loginPage({
          uid: interaction.uid,
          signup: deps.openSignup,
          deviceFlow: isDevice(interaction),
          dashboard: isDashboard(interaction),
        }),
      );
    }
    // Consent for the first-party CLI is implicit (loadExistingGrant); any other prompt is finished as such.
    const provider = deps.provider();
    const accountId = interaction.session?.accountId;
    const clientId = interaction.params.client_id;
    if (!accountId || typeof clientId !== "string") return finish(request, reply, { error: "access_denied" });
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(typeof interaction.params.scope === "string" ? interaction.params.scope : "openid");
    return finish(request, reply, { consent: { grantId: await grant.save() } });
  });

  app.post("/interaction/:uid/login", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    const form = request.body ?? {};
    const typed = (form.email ?? "").slice(0, 300);
    const outcome = await service.signInWithPassword({
      uid: interaction.uid,
      email: typed,
      password: form.password ?? "",
      ip: request.ip,
    });
    const again = (status: number, email: string, error: string) =>
      html(
        reply,
        status,
        loginPage({
          uid: interaction.uid,
          email,
          error,
          signup: deps.openSignup,
          deviceFlow: isDevice(interaction),
          dashboard: isDashboard(interaction),
        }),
      );
    switch (outcome.kind) {
      case "invalid-email":
        return again(400, typed, "Enter the email address of your account.");
      case "rate-limited":
        return rateLimited(request, reply, "password", outcome);
      case "wrong":
        loginFailed(request, "password");
        return again(401, outcome.email, "Wrong email or password.");
      case "totp-required":
        return html(reply, 200, totpPage({ uid: interaction.uid, ticket: outcome.ticket }));
      case "signed-in":
        return finish(request, reply, { login: { accountId: outcome.accountId } });
    }
  });

  app.post("/interaction/:uid/totp", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    const form = request.body ?? {};
    const outcome = await service.signInWithTotp({
      uid: interaction.uid,
      ticket: form.ticket,
      code: form.code ?? "",
      ip: request.ip,
    });
    switch (outcome.kind) {
      case "expired":
        return html(
          reply,
          400,
          messagePage(
            "Sign-in expired",
            "The verification step expired. Start the sign-in again from your terminal.",
          ),
        );
      case "rate-limited":
        return rateLimited(request, reply, "totp", outcome);
      case "wrong":
        loginFailed(request, "totp");
        return html(
          reply,
          401,
          totpPage({
            uid: interaction.uid,
            ticket: form.ticket ?? "",
            error: "That code is not right. Try the current one.",
          }),
        );
      case "signed-in":
        return finish(request, reply, { login: { accountId: outcome.accountId } });
    }
  });

  app.get("/interaction/:uid/abort", async (request: UidRequest, reply) => {
    const interaction = await details(request, reply);
    if (!interaction) return;
    return finish(request, reply, {
      error: "access_denied",
      error_description: "The user cancelled the sign-in.",
    });
  });

  if (deps.openSignup) {
    app.get("/interaction/:uid/signup", async (request: UidRequest, reply) => {
      const interaction = await details(request, reply);
      if (!interaction) return;
      return html(reply, 200, signupPage({ uid: interaction.uid }));
    });
    app.post("/interaction/:uid/signup", async (request: UidRequest, reply) => {
      const interaction = await details(request, reply);
      if (!interaction) return;
      const form = request.body ?? {};
      const typed = (form.email ?? "").slice(0, 300);
      const outcome = await service.signUp({ email: typed, password: form.new_password ?? "" });
      if (outcome.kind === "created")
        return finish(request, reply, { login: { accountId: outcome.accountId } });
      const message = {
        exists: "An account with this email already exists. Sign in instead.",
        email: "Enter a valid email address.",
        password: "Choose a password of at least 12 characters: a few words make a good one.",
      }[outcome.reason];
      return html(reply, 400, signupPage({ uid: interaction.uid, email: typed, error: message }));
    });
  }

  // Old attempts are only noise for the counts; drop them now and then.
  let served = 0;
  app.addHook("onResponse", async () => {
    if (++served % 200 === 0) await service.purge();
  });
}
