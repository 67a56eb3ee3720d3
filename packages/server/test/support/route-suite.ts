// What the in-process route suites of the API slices share: the app on a fresh migrated database of the matrix,
// accounts signed in with real access tokens, one request with its step-up proof, and the checks of a signed
// answer and of a refusal (never signed).
import { randomUUID } from "node:crypto";
import {
  checkSchema,
  DASHBOARD_CLIENT_ID,
  STEP_UP_HEADER,
  type ApiErrorBody,
  type WireSchema,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse as InjectResponse } from "fastify";
import { expect } from "vitest";
import type { DatabaseTarget } from "../databases.js";
import type { OpenDatabase } from "../../src/db/index.js";
import type { Identity } from "../../src/identity/identity.js";
import { apiHeaders, injectedSignature, openMigrated } from "../sync-support.js";
import { buildTestApp, createTestUser, mintAccessToken, type TestAppOptions } from "./identity.js";

/** One signed-in machine of a user: its own OAuth grant. */
export interface Session {
  userId: string;
  token: string;
}

/** The app on its own database, ready for `app.inject`. */
export interface RouteApp {
  database: OpenDatabase;
  app: FastifyInstance;
  identity: Identity;
  /** Closes the app and its database. */
  close(): Promise<void>;
}

/** The app on a fresh migrated database of `target` (call it in a beforeAll; close it in the afterAll). */
export async function openRouteApp(
  target: DatabaseTarget,
  options: Omit<TestAppOptions, "db"> = {},
): Promise<RouteApp> {
  const database = await openMigrated(await target.fresh());
  const { app, identity } = buildTestApp({ ...options, db: database.db });
  await app.ready();
  return {
    database,
    app,
    identity,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}

/** A new account, signed in once (a token of `expiresInSeconds` when given, the default lifetime otherwise). */
export async function newAccount(routeApp: RouteApp, expiresInSeconds?: number): Promise<Session> {
  const user = await createTestUser(
    routeApp.database.db,
    `${randomUUID()}@example.test`,
    `pw-${randomUUID()}`,
  );
  const token = await mintAccessToken(routeApp.identity, {
    userId: user.userId,
    ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }),
  });
  return { userId: user.userId, token };
}

/** A sign-in of the browser dashboard: its own grant and access token, as the authorization code grant makes. */
export async function dashboardSignIn(identity: Identity, userId: string): Promise<Session> {
  const provider = identity.provider();
  const client = await provider.Client.find(DASHBOARD_CLIENT_ID);
  if (!client) throw new Error(`client ${DASHBOARD_CLIENT_ID} is not registered`);
  const grant = new provider.Grant({ accountId: userId, clientId: DASHBOARD_CLIENT_ID });
  grant.addOIDCScope("openid email");
  const grantId = await grant.save();
  const token = await new provider.AccessToken({
    accountId: userId,
    client,
    grantId,
    gty: "authorization_code",
    scope: "openid email",
  }).save();
  return { userId, token };
}

/** One API request as `session`, with the step-up proof when given. */
export function callAs(
  app: FastifyInstance,
  session: Session,
  method: "GET" | "PUT" | "POST" | "PATCH" | "DELETE",
  url: string,
  payload?: object,
  stepUpProof?: string,
): Promise<InjectResponse> {
  return app.inject({
    method,
    url,
    headers: {
      ...apiHeaders(session.token),
      ...(stepUpProof === undefined ? {} : { [STEP_UP_HEADER]: stepUpProof }),
    },
    ...(payload === undefined ? {} : { payload }),
  });
}

/** A 2xx answer: signed for `session`'s token over this request, and of the schema's shape. */
export function answer<T>(res: InjectResponse, session: Session, schema: WireSchema<T>, status = 200): T {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(session.token, res));
  const checked = checkSchema(schema, res.json());
  if (!checked.ok) throw new Error(checked.message);
  return checked.value;
}

/** A refusal with `status` and the catalogue `code`, unsigned. */
export function refused(res: InjectResponse, status: number, code: string): ApiErrorBody {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["x-latchkey-signature"]).toBeUndefined();
  const body = res.json<ApiErrorBody>();
  expect(body.code).toBe(code);
  return body;
}
