// The browser dashboard's OAuth client `latchkey-dashboard` as the provider registers it: a public web client with
// exactly one redirect URI and one post-logout URI under PUBLIC_URL, PKCE required, no refresh token; an
// authorization request naming any other redirect, or none of PKCE, is refused before any sign-in page.
import { randomUUID } from "node:crypto";
import { DASHBOARD_CLIENT_ID } from "@latchkey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import { buildTestApp } from "./support/identity.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Identity } from "../src/identity/identity.js";

const PUBLIC_URL = "https://latchkey.example.test";

let dir: string;
let database: OpenDatabase;
let app: FastifyInstance;
let identity: Identity;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-dashboard-client-"));
  database = await openDatabase({ dataDir: dir });
  await migrateToLatest(database.db);
  ({ app, identity } = buildTestApp({ db: database.db, publicUrl: PUBLIC_URL }));
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

const authorize = (params: Record<string, string>) =>
  app.inject({
    method: "GET",
    url: `/oidc/auth?${new URLSearchParams({
      client_id: DASHBOARD_CLIENT_ID,
      response_type: "code",
      scope: "openid email",
      state: randomUUID(),
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
      ...params,
    }).toString()}`,
    headers: { "x-forwarded-proto": "https" },
  });

describe("the dashboard's client", () => {
  it("is a public web client of the authorization code grant alone, its URIs exactly under PUBLIC_URL", async () => {
    const client = await identity.provider().Client.find(DASHBOARD_CLIENT_ID);
    expect(client).toBeDefined();
    expect(client!.metadata()).toMatchObject({
      application_type: "web",
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      redirect_uris: [`${PUBLIC_URL}/dashboard/callback`],
      post_logout_redirect_uris: [`${PUBLIC_URL}/dashboard/`],
    });
    expect(client!.grantTypeAllowed("refresh_token")).toBe(false);
  });

  it("sends a good authorization request on to the sign-in page", async () => {
    const res = await authorize({ redirect_uri: `${PUBLIC_URL}/dashboard/callback` });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(/^\/interaction\//);
  });

  it("refuses any other redirect URI, and a request without PKCE, before any sign-in page", async () => {
    for (const redirect of [
      `${PUBLIC_URL}/dashboard/callback/`,
      `${PUBLIC_URL}/dashboard/callback?x=1`,
      `${PUBLIC_URL}:8443/dashboard/callback`,
      `http://latchkey.example.test/dashboard/callback`,
      `https://evil.example.test/dashboard/callback`,
      `${PUBLIC_URL}/dashboard/`,
    ]) {
      const res = await authorize({ redirect_uri: redirect });
      expect(res.statusCode, redirect).toBe(400);
      expect(res.headers.location, redirect).toBeUndefined();
    }
    const noPkce = await app.inject({
      method: "GET",
      url: `/oidc/auth?${new URLSearchParams({
        client_id: DASHBOARD_CLIENT_ID,
        response_type: "code",
        scope: "openid",
        state: "s",
        redirect_uri: `${PUBLIC_URL}/dashboard/callback`,
      }).toString()}`,
      headers: { "x-forwarded-proto": "https" },
    });
    // PKCE missing is an error sent back to the (registered) redirect, never a sign-in page.
    expect(noPkce.headers.location ?? "").not.toMatch(/^\/interaction\//);
    expect(noPkce.headers.location ?? "").toMatch(/error=invalid_request/);
  });
});
