// A real OpenID provider for the OAuth and SSO suites: oidc-provider (panva) on 127.0.0.1, port 0.
//
// It runs IN the test process, not as a child like verdaccio: the suites need to change token lifetimes between
// steps, count token requests synchronously and read the provider's own record of each request; in-process that is
// a function call instead of a log file and a polling loop. The CLIs under test are still separate processes
// (or in-process runCli with a real Node context), so every request still crosses a real loopback socket.
//
// Clients (secrets are random per start, so a test can search files for them as canaries):
//   confidential  client_credentials (+ refresh_token), client_secret_basic or _post
//   native        public (token_endpoint_auth_method none), authorization_code + PKCE S256 (required for public
//                 clients), redirect http://127.0.0.1/callback, http://127.0.0.1/ and http://[::1]/callback on
//                 any port (RFC 8252 §7.3: oidc-provider ignores the port of loopback redirects for native clients)
//   device        public, device_code (RFC 8628) + refresh_token
//   password      confidential, the resource owner password grant + refresh_token. oidc-provider has no password
//                 grant (RFC 9700 forbids it); it is registered with registerGrantType here ONLY for Latchkey's
//                 legacy `grant = "password"` test, and checks the one test account.
// Test account: "alice" / "password". The browser steps use oidc-provider's devInteractions pages (login form
// then consent form, plain HTML forms an HTTP client can submit); devInteractions accepts any login name, so only
// "alice" is known to findAccount, and the password grant checks the password.
// Refresh tokens rotate on every use (rotateRefreshToken), revocation (RFC 7009) and introspection are on, and
// resource indicators (RFC 8707) turn `resource` into a JWT access token whose `aud` is the resource.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from "oidc-provider";

/** The test account the interactive flows and the password grant accept. */
export const TEST_USER = { login: "alice", password: "password" } as const;

/** Scopes a resource server (any `resource` indicator) grants. */
export const RESOURCE_SCOPES = ["api:read", "api:write"] as const;

/** One registered client. `secret` is undefined for public clients. */
export interface TestClient {
  readonly id: string;
  readonly secret?: string;
}

/** The provider's record of one token-endpoint request (no secret values: only parameter names and targets). */
export interface TokenRequest {
  readonly grantType: string;
  readonly clientId: string | undefined;
  /** The HTTP status the provider answered with. */
  readonly status: number;
  /** The OAuth error code of a failed request (e.g. invalid_grant). */
  readonly error?: string;
  readonly scope?: string;
  /** Every `resource` value sent (RFC 8707). */
  readonly resource: readonly string[];
  /** The non-standard `audience` parameter (Auth0 style), when sent; the provider ignores it. */
  readonly audience?: string;
  /** Names of every body parameter sent, for asserting what was (not) sent. */
  readonly parameters: readonly string[];
}

/** Options for startOidcProvider. */
export interface OidcProviderOptions {
  /** Lifetime in seconds of access tokens (all grants) issued from now on; default 3600. Change with setAccessTokenTtl. */
  readonly accessTokenTtl?: number;
  /** Lifetime in seconds of refresh tokens; default 86400. */
  readonly refreshTokenTtl?: number;
}

/** A running provider. */
export interface OidcProvider {
  /** `http://127.0.0.1:PORT`: the issuer, whose discovery document is at /.well-known/openid-configuration. */
  readonly issuer: string;
  readonly port: number;
  /** The token endpoint's URL, for `token_endpoint` configurations that skip discovery. */
  readonly tokenEndpoint: string;
  readonly clients: {
    readonly confidential: TestClient & { readonly secret: string };
    readonly native: TestClient & { readonly redirectUris: readonly string[] };
    readonly device: TestClient;
    readonly password: TestClient & { readonly secret: string };
  };
  /** How many token-endpoint requests were made, by grant type (e.g. { client_credentials: 1 }), since start or reset. */
  tokenRequests(): Record<string, number>;
  /** Every token-endpoint request since start or reset, oldest first. */
  tokenRequestLog(): readonly TokenRequest[];
  /** Forgets the counted requests. */
  resetTokenRequests(): void;
  /**
   * Holds every token-endpoint request from now on until the returned function is called, so a test can pile up
   * concurrent clients behind the first request. `arrived()` resolves when the first held request comes in.
   */
  holdTokenRequests(): { arrived: Promise<void>; release: () => void };
  /** Changes the lifetime of access tokens issued from now on. */
  setAccessTokenTtl(seconds: number): void;
  /** The underlying oidc-provider instance, for anything not wrapped here. */
  readonly provider: Provider;
  /** Stops the server. Safe to call twice. */
  stop(): Promise<void>;
}

function secret(): string {
  // A recognisable prefix lets a canary search find it, and random bytes keep two runs apart.
  return `canary-secret-${randomBytes(18).toString("base64url")}`;
}

/** Starts oidc-provider on 127.0.0.1 with a free port and the clients above. */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<OidcProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const clients = {
    confidential: { id: "lk-service", secret: secret() },
    native: {
      id: "lk-native",
      redirectUris: ["http://127.0.0.1/callback", "http://127.0.0.1/", "http://[::1]/callback"],
    },
    device: { id: "lk-device" },
    password: { id: "lk-legacy-password", secret: secret() },
  };

  let accessTokenTtl = options.accessTokenTtl ?? 3600;
  const refreshTokenTtl = options.refreshTokenTtl ?? 86_400;
  const log: TokenRequest[] = [];
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" };

  const configuration: Configuration = {
    clients: [
      {
        client_id: clients.confidential.id,
        client_secret: clients.confidential.secret,
        grant_types: ["client_credentials", "refresh_token"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
        scope: `openid ${RESOURCE_SCOPES.join(" ")}`,
      },
      {
        client_id: clients.native.id,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: clients.native.redirectUris,
      },
      {
        client_id: clients.device.id,
        application_type: "native",
        token_endpoint_auth_method: "none",
        grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: clients.password.id,
        client_secret: clients.password.secret,
        grant_types: ["password", "refresh_token"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    scopes: ["openid", "offline_access", "profile", "email", ...RESOURCE_SCOPES],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    findAccount: (_ctx, sub) =>
      sub === TEST_USER.login
        ? {
            accountId: sub,
            claims: () => ({ sub, email: "alice@example.test", email_verified: true, name: "Alice" }),
          }
        : undefined,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => ({
          scope: RESOURCE_SCOPES.join(" "),
          audience: resourceIndicator,
          accessTokenFormat: "jwt",
          accessTokenTTL: accessTokenTtl,
        }),
      },
    },
    // Every client allowed the refresh_token grant gets one, without the offline_access + prompt=consent dance:
    // the suites test Latchkey's refresh handling, not the provider's offline-access policy.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => accessTokenTtl,
      ClientCredentials: () => accessTokenTtl,
      RefreshToken: () => refreshTokenTtl,
      Grant: refreshTokenTtl,
      Session: refreshTokenTtl,
      Interaction: 600,
      DeviceCode: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
    },
  };

  const provider = new Provider(issuer, configuration);
  registerPasswordGrant(provider);

  let gate: { open: Promise<void>; onArrival: () => void } | undefined;
  // Counts token-endpoint requests after oidc-provider has answered, successful or not.
  provider.use(async (ctx, next) => {
    if (gate !== undefined && ctx.method === "POST" && ctx.path === "/token") {
      gate.onArrival();
      await gate.open;
    }
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC["oidc"] | undefined;
    if (oidc?.route !== "token") return;
    const body = (oidc.body ?? {}) as Record<string, unknown>;
    const resource = body.resource;
    const answer = ctx.body as Record<string, unknown> | undefined;
    log.push({
      grantType: typeof body.grant_type === "string" ? body.grant_type : "(none)",
      clientId: oidc.client?.clientId,
      status: ctx.status,
      ...(typeof answer?.error === "string" ? { error: answer.error } : {}),
      ...(typeof body.scope === "string" ? { scope: body.scope } : {}),
      resource: Array.isArray(resource)
        ? resource.map(String)
        : typeof resource === "string"
          ? [resource]
          : [],
      ...(typeof body.audience === "string" ? { audience: body.audience } : {}),
      parameters: Object.keys(body).sort(),
    });
  });

  const handle = provider.callback();
  server.on("request", (req, res) => void handle(req, res));
  // Keep-alive sockets from the suites' clients must not hold stop() open.
  server.keepAliveTimeout = 1000;

  let stopped: Promise<void> | undefined;
  return {
    issuer,
    port,
    tokenEndpoint: `${issuer}/token`,
    clients,
    provider,
    tokenRequests() {
      const counts: Record<string, number> = {};
      for (const entry of log) counts[entry.grantType] = (counts[entry.grantType] ?? 0) + 1;
      return counts;
    },
    tokenRequestLog: () => [...log],
    resetTokenRequests() {
      log.length = 0;
    },
    holdTokenRequests() {
      let release!: () => void;
      let onArrival!: () => void;
      const open = new Promise<void>((resolve) => (release = resolve));
      const arrived = new Promise<void>((resolve) => (onArrival = resolve));
      gate = { open, onArrival };
      return {
        arrived,
        release: () => {
          gate = undefined;
          release();
        },
      };
    },
    setAccessTokenTtl(seconds: number) {
      accessTokenTtl = seconds;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

/**
 * The resource owner password credentials grant (RFC 6749 §4.3), which oidc-provider deliberately lacks. For the
 * legacy-grant test only: it checks the one test account and issues an access token and a refresh token on a new
 * grant, so refreshing it goes through oidc-provider's own refresh_token grant (with rotation).
 */
function registerPasswordGrant(provider: Provider): void {
  provider.registerGrantType(
    "password",
    async (ctx) => {
      const params = ctx.oidc.params as Record<string, string | undefined>;
      const client = ctx.oidc.client;
      if (client === undefined) throw new errors.InvalidClient("client authentication failed");
      if (params.username !== TEST_USER.login || params.password !== TEST_USER.password) {
        throw new errors.InvalidGrant("invalid resource owner credentials");
      }
      const scope = params.scope ?? "openid";
      const grant = new provider.Grant({ accountId: TEST_USER.login, clientId: client.clientId });
      grant.addOIDCScope(
        scope
          .split(" ")
          .filter((s) => ["openid", "offline_access", "profile", "email"].includes(s))
          .join(" ") || "openid",
      );
      const grantId = await grant.save();
      const at = new provider.AccessToken({
        accountId: TEST_USER.login,
        client,
        grantId,
        gty: "password",
        scope: grant.getOIDCScope(),
      });
      const accessToken = await at.save();
      const rt = new provider.RefreshToken({
        accountId: TEST_USER.login,
        client,
        grantId,
        gty: "password",
        scope: grant.getOIDCScope(),
        rotations: 0,
      });
      const refreshToken = await rt.save();
      ctx.body = {
        access_token: accessToken,
        token_type: "Bearer",
        expires_in: at.expiration,
        refresh_token: refreshToken,
        scope: at.scope,
      };
    },
    ["username", "password", "scope"],
  );
}
