// Route tests of the sync API in-process with app.inject, on SQLite and PostgreSQL: versioning and conflicts,
// validation, signatures over the request and the exact bytes, the audit rows and the log route.
import { randomUUID } from "node:crypto";
import type { ApiErrorBody, AuditLogResponse, PullResponse, PushResponse } from "@latchkey/core";
import { Writable } from "node:stream";
import Fastify, { type FastifyInstance } from "fastify";
import { loggerOptions } from "../src/logging.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Authenticated } from "../src/authenticated.js";
import type { OpenDatabase } from "../src/db/index.js";
import { registerApi, SMALL_BODY_LIMIT } from "../src/api/plugin.js";
import { PUSH_BODY_LIMIT } from "../src/api/params.js";
import { syncRoutes, type SyncDeps } from "../src/sync/routes.js";
import { describeEachDatabase } from "./databases.js";
import {
  apiHeaders,
  fakeWrappedKey,
  injectedSignature,
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

/** The sync routes alone in an API scope of their own, on `app` (the real app registers them with the others). */
function registerSyncAlone(
  app: FastifyInstance,
  deps: SyncDeps & { authenticate: (token: string) => Promise<Authenticated | null> },
): Promise<void> {
  // No sync route takes a step-up proof: any key will do.
  const api = { db: deps.db, now: deps.now, authenticate: deps.authenticate, stepUpKey: new Uint8Array(32) };
  return registerApi(app, api, [syncRoutes(deps)]);
}

describeEachDatabase("sync routes", (target) => {
  let database: OpenDatabase;
  let app: FastifyInstance;
  let server: SyncServer;
  let alice: Caller;
  let bob: Caller;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    alice = await server.caller("alice@example.test");
    bob = await server.caller("bob@example.test");
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
  });

  const auth = (user: Caller) => apiHeaders(user.token);
  const push = (user: Caller, vaultId: string, body: unknown) =>
    app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${vaultId}`,
      headers: auth(user),
      payload: body as object,
    });
  const pull = (user: Caller, vaultId: string) =>
    app.inject({ method: "GET", url: `/api/v1/vaults/${vaultId}`, headers: auth(user) });

  it("GET /me answers who the token belongs to, signed and not cacheable", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/me", headers: auth(alice) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ userId: alice.userId, email: alice.email, clientId: "latchkey-cli" });
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, res));
  });

  it("pushes version 1, pulls it back byte for byte, and signs both over the exact body", async () => {
    const vaultId = randomUUID();
    const blob = await sealBlob(newVaultKey(), vaultId, 1, "API_KEY=one");
    const body = pushBody(blob, 0, { schema: { API_KEY: { required: true } } });
    const pushed = await push(alice, vaultId, body);
    expect(pushed.statusCode).toBe(200);
    const ack = pushed.json<PushResponse>();
    expect(ack).toMatchObject({ vaultId, version: 1 });
    expect(pushed.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, pushed));

    const pulled = await pull(alice, vaultId);
    expect(pulled.statusCode).toBe(200);
    expect(pulled.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, pulled));
    expect(pulled.headers["x-latchkey-signature"]).not.toBe(injectedSignature(bob.token, pulled));
    const copy = pulled.json<PullResponse>();
    expect(copy).toEqual({
      vaultId,
      version: 1,
      encryptedBlob: blob,
      wrappedKey: body.wrappedKey,
      schema: { API_KEY: { required: true } },
      name: "demo-project",
      updatedAt: ack.createdAt,
    });
  });

  it("increments by one, refuses a stale base with 409 and currentVersion, and writes nothing then", async () => {
    const vaultId = randomUUID();
    const key = newVaultKey();
    expect((await push(alice, vaultId, pushBody(await sealBlob(key, vaultId, 1, "A=1"), 0))).statusCode).toBe(
      200,
    );
    expect((await push(alice, vaultId, pushBody(await sealBlob(key, vaultId, 2, "A=2"), 1))).statusCode).toBe(
      200,
    );

    for (const base of [0, 1, 3]) {
      const stale = await push(alice, vaultId, pushBody(await sealBlob(key, vaultId, base + 1, "A=x"), base));
      expect(stale.statusCode).toBe(409);
      expect(stale.headers["x-latchkey-signature"]).toBeUndefined();
      expect(stale.json<ApiErrorBody>()).toEqual({
        error: "VaultConflictError",
        code: "LK_VAULT_CONFLICT",
        message: expect.any(String) as string,
        currentVersion: 2,
      });
    }
    const versions = await database.db
      .selectFrom("vault_versions")
      .select("version")
      .where("vault_id", "=", vaultId)
      .orderBy("version")
      .execute();
    expect(versions.map((v) => Number(v.version))).toEqual([1, 2]);
    const audits = await database.db
      .selectFrom("audit_events")
      .select(["action", "version"])
      .where("vault_id", "=", vaultId)
      .execute();
    expect(audits.map((a) => Number(a.version)).sort()).toEqual([1, 2]);
    expect((await pull(alice, vaultId)).json<PullResponse>().version).toBe(2);
  });

  it("answers a push with a base above 0 to a vault nobody pushed with 409 currentVersion 0", async () => {
    const res = await push(alice, randomUUID(), pushBody("AAAA", 4));
    expect(res.statusCode).toBe(409);
    expect(res.json<ApiErrorBody>().currentVersion).toBe(0);
  });

  it("keeps the last schema when a push carries none", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, pushBody("AAAA", 0, { schema: { X: {} } }));
    await push(alice, vaultId, pushBody("AAAB", 1));
    expect((await pull(alice, vaultId)).json<PullResponse>().schema).toEqual({ X: {} });
    await push(alice, vaultId, pushBody("AAAC", 2, { schema: {} }));
    expect((await pull(alice, vaultId)).json<PullResponse>().schema).toEqual({});
  });

  it("treats another user's vault exactly like an absent one (404, same body), and leaves it alone", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, pushBody("AAAA", 0));
    const absent = await pull(bob, randomUUID());
    const foreign = await pull(bob, vaultId);
    expect(absent.statusCode).toBe(404);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.body).toBe(absent.body);
    expect(absent.json<ApiErrorBody>().code).toBe("LK_VAULT_NOT_SYNCED");
    for (const base of [0, 1])
      expect((await push(bob, vaultId, pushBody("BBBB", base))).statusCode).not.toBe(200);
    expect((await push(bob, vaultId, pushBody("BBBB", 0))).statusCode).toBe(404);
    const rewrap = await app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${vaultId}/key`,
      headers: auth(bob),
      payload: { wrappedKey: fakeWrappedKey(), version: 1 },
    });
    expect(rewrap.statusCode).toBe(404);
    const log = await app.inject({ method: "GET", url: `/api/v1/vaults/${vaultId}/log`, headers: auth(bob) });
    expect(log.statusCode).toBe(404);
    expect((await pull(alice, vaultId)).json<PullResponse>().encryptedBlob).toBe("AAAA");
  });

  it("compares vault ids in lower case, and signs the path as it was sent", async () => {
    const vaultId = randomUUID();
    const pushed = await push(alice, vaultId.toUpperCase(), pushBody("AAAA", 0));
    expect(pushed.json<PushResponse>()).toMatchObject({ vaultId, version: 1 });
    expect(pushed.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, pushed));
    const res = await pull(alice, vaultId);
    expect(res.json<PullResponse>()).toMatchObject({ vaultId, version: 1 });
  });

  it("signs every answer for its own request: a cached pull gets a new signature for each request id", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, pushBody("AAAA", 0));
    const first = await pull(alice, vaultId);
    const again = await pull(alice, vaultId);
    expect(again.rawPayload).toEqual(first.rawPayload);
    expect(first.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, first));
    expect(again.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, again));
    // The same bytes answered to another request carry another signature: one cannot stand in for the other.
    expect(again.headers["x-latchkey-signature"]).not.toBe(first.headers["x-latchkey-signature"]);
  });

  it("refuses a request without a well-formed X-Latchkey-Request-Id with 400, unsigned, before any write", async () => {
    const vaultId = randomUUID();
    const bearer = { authorization: `Bearer ${alice.token}` };
    for (const requestId of [
      undefined,
      "",
      "short",
      `${"A".repeat(22)}=`,
      "A".repeat(65),
      "A".repeat(22) + " x",
    ]) {
      const headers = requestId === undefined ? bearer : { ...bearer, "x-latchkey-request-id": requestId };
      const res = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${vaultId}`,
        headers,
        payload: pushBody("AAAA", 0),
      });
      expect(res.statusCode, String(requestId)).toBe(400);
      expect(res.json<ApiErrorBody>()).toMatchObject({ error: "ValidationError", code: "LK_SERVER_ERROR" });
      expect(res.json<ApiErrorBody>().message).toContain("X-Latchkey-Request-Id");
      expect(res.headers["x-latchkey-signature"]).toBeUndefined();
    }
    expect(await database.db.selectFrom("vaults").select("id").where("id", "=", vaultId).execute()).toEqual(
      [],
    );
  });

  describe("validation", () => {
    const cases: Array<[string, unknown]> = [
      ["a non-object body", [1, 2]],
      ["a missing blob", { wrappedKey: "AAAA", name: "n", baseVersion: 0 }],
      ["a blob that is not base64", pushBody("AA$A", 0)],
      ["unpadded base64", pushBody("AAA", 0)],
      ["non-canonical base64 (non-zero pad bits)", pushBody("AB==", 0)],
      ["url-safe base64", pushBody("AA-_", 0)],
      ["base64 with whitespace", pushBody("AAAA AAAA", 0)],
      ["an empty wrapped key", { ...pushBody("AAAA", 0), wrappedKey: "" }],
      ["a negative base", pushBody("AAAA", -1)],
      ["a fractional base", pushBody("AAAA", 1.5)],
      ["a string base", pushBody("AAAA", 0, { baseVersion: "1" })],
      ["an unsafe base", pushBody("AAAA", 2 ** 53)],
      ["a schema array", pushBody("AAAA", 0, { schema: [] })],
      ["a null schema", pushBody("AAAA", 0, { schema: null })],
      ["an empty name", pushBody("AAAA", 0, { name: "" })],
      ["a name with a newline", pushBody("AAAA", 0, { name: "a\nb" })],
      ["a long name", pushBody("AAAA", 0, { name: "n".repeat(257) })],
      ["an unknown field", pushBody("AAAA", 0, { note: "ignored?" })],
    ];
    it.each(cases)("refuses %s with 400 and writes nothing", async (_name, body) => {
      const vaultId = randomUUID();
      const res = await push(alice, vaultId, body);
      expect(res.statusCode).toBe(400);
      expect(res.json<ApiErrorBody>()).toMatchObject({ error: "ValidationError", code: "LK_SERVER_ERROR" });
      expect(res.headers["x-latchkey-signature"]).toBeUndefined();
      expect(await database.db.selectFrom("vaults").select("id").where("id", "=", vaultId).execute()).toEqual(
        [],
      );
    });

    // The push's schema is checked for its structure: a client other than the CLI (which checks it whole first)
    // must not store a schema a CLI would refuse, say one whose misspelt property silently switches a check off.
    const badSchemas: Array<[string, unknown, string]> = [
      [
        "a property rules do not have",
        { API_URL: { requird: true } },
        "an envSchema rule may only have the properties required, format, pattern, default, secret, description",
      ],
      [
        "a required that is not true or false",
        { API_URL: { required: "yes" } },
        `an envSchema rule's "required" must be true or false`,
      ],
    ];
    it.each(badSchemas)(
      "refuses a schema rule with %s with 400, and stores nothing",
      async (_name, schema, message) => {
        const vaultId = randomUUID();
        const fresh = await push(alice, vaultId, pushBody("AAAA", 0, { schema }));
        expect([fresh.statusCode, fresh.json<ApiErrorBody>()]).toEqual([
          400,
          { error: "ValidationError", code: "LK_SERVER_ERROR", message },
        ]);
        expect(
          await database.db.selectFrom("vaults").select("id").where("id", "=", vaultId).execute(),
        ).toEqual([]);
        // Nor on a vault that exists: the version and the schema stay as they were.
        expect(
          (await push(alice, vaultId, pushBody("AAAA", 0, { schema: { API_URL: {} } }))).statusCode,
        ).toBe(200);
        expect((await push(alice, vaultId, pushBody("AAAB", 1, { schema }))).statusCode).toBe(400);
        expect((await pull(alice, vaultId)).json<PullResponse>()).toMatchObject({
          version: 1,
          encryptedBlob: "AAAA",
          schema: { API_URL: {} },
        });
      },
    );

    it("takes a schema whose pattern would backtrack on its default without running it", async () => {
      // Running "(a+)+$" on this default takes time exponential in its length: a fraction of a second at 20
      // characters, minutes at a few more. The default does not match, so a server that ran the pattern would
      // refuse the push; it must take it as a structure, and hand it back as it is.
      const vaultId = randomUUID();
      const schema = { TOKEN: { pattern: "(a+)+$", default: `${"a".repeat(20)}!`, secret: true } };
      const res = await push(alice, vaultId, pushBody("AAAA", 0, { schema }));
      expect(res.statusCode).toBe(200);
      expect((await pull(alice, vaultId)).json<PullResponse>().schema).toEqual(schema);
    });

    it("still pulls a schema stored before pushes were checked for their structure", async () => {
      const vaultId = randomUUID();
      expect((await push(alice, vaultId, pushBody("AAAA", 0, { schema: {} }))).statusCode).toBe(200);
      const old = { API_URL: { requird: true, format: "URL" }, "not-a-name": "x" };
      await database.db
        .updateTable("vault_heads")
        .set({ schema_json: JSON.stringify(old) })
        .where("vault_id", "=", vaultId)
        .execute();
      const pulled = await pull(alice, vaultId);
      expect(pulled.statusCode).toBe(200);
      expect(pulled.json<PullResponse>().schema).toEqual(old);
    });

    it("refuses a vault id that is not a UUID", async () => {
      for (const id of ["not-a-uuid", `${randomUUID()}x`, "{vaultId}"]) {
        const res = await pull(alice, encodeURIComponent(id));
        expect(res.statusCode).toBe(400);
      }
    });

    it("refuses bodies over the limit with 413 before parsing them", async () => {
      const big = JSON.stringify(pushBody("A".repeat(PUSH_BODY_LIMIT), 0));
      const res = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${randomUUID()}`,
        headers: { ...auth(alice), "content-type": "application/json" },
        payload: big,
      });
      expect(res.statusCode).toBe(413);
      expect(res.json<ApiErrorBody>()).toMatchObject({
        error: "PayloadTooLargeError",
        message: `The request body is larger than ${PUSH_BODY_LIMIT} bytes.`,
      });
      const rewrap = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${randomUUID()}/key`,
        headers: { ...auth(alice), "content-type": "application/json" },
        payload: JSON.stringify({ wrappedKey: "A".repeat(SMALL_BODY_LIMIT), version: 1 }),
      });
      expect(rewrap.statusCode).toBe(413);
      expect(rewrap.json<ApiErrorBody>().message).toContain(String(SMALL_BODY_LIMIT));
    });

    it("refuses malformed JSON without echoing it, and non-JSON content types", async () => {
      const res = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${randomUUID()}`,
        headers: { ...auth(alice), "content-type": "application/json" },
        payload: '{"encryptedBlob": "SECRETVALUE',
      });
      expect(res.statusCode).toBe(400);
      expect(res.body).not.toContain("SECRETVALUE");
      const text = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${randomUUID()}`,
        headers: { ...auth(alice), "content-type": "application/xml" },
        payload: "<hello/>",
      });
      expect(text.statusCode).toBe(415);
    });

    it("refuses a deeply nested schema with 400 before parsing it, not a crash", async () => {
      const vaultId = randomUUID();
      const fields = JSON.stringify(pushBody("AAAA", 0)).slice(1, -1);
      const res = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${vaultId}`,
        headers: { ...auth(alice), "content-type": "application/json" },
        payload: `{${fields},"schema":{"k":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json<ApiErrorBody>()).toMatchObject({
        error: "ValidationError",
        code: "LK_SERVER_ERROR",
        message: "The request body nests arrays and objects deeper than 64 levels.",
      });
      expect(await database.db.selectFrom("vaults").select("id").where("id", "=", vaultId).execute()).toEqual(
        [],
      );
    });

    it("refuses a body with an unknown field at the route, before the service is called", async () => {
      const calls: string[] = [];
      const guarded = Fastify();
      await registerSyncAlone(guarded, {
        db: database.db,
        now: () => new Date(),
        randomId: randomUUID,
        authenticate: (token) => server.identity.authenticate(token),
        writes: {
          push: () => {
            calls.push("push");
            return Promise.resolve({ kind: "not-found" });
          },
          rewrap: () => {
            calls.push("rewrap");
            return Promise.resolve({ kind: "not-found" });
          },
        },
      });
      try {
        const vaultId = randomUUID();
        const send = (path: string, payload: object) =>
          guarded.inject({
            method: "PUT",
            url: `/api/v1/vaults/${vaultId}${path}`,
            headers: auth(alice),
            payload,
          });
        const rewrap = { wrappedKey: fakeWrappedKey(), version: 1 };
        const refused = [
          await send("", pushBody("AAAA", 0, { note: "x" })),
          await send("/key", { ...rewrap, note: "x" }),
        ];
        expect(refused.map((res) => [res.statusCode, res.json<ApiErrorBody>().message])).toEqual([
          [
            400,
            "The body may only have the fields encryptedBlob, wrappedKey, schema, name, baseVersion, escrow.",
          ],
          [400, "The body may only have the fields wrappedKey, version."],
        ]);
        expect(calls).toEqual([]);
        // The same bodies without the field do reach the service.
        expect((await send("", pushBody("AAAA", 0))).statusCode).toBe(404);
        expect((await send("/key", rewrap)).statusCode).toBe(404);
        expect(calls).toEqual(["push", "rewrap"]);
      } finally {
        await guarded.close();
      }
    });

    it("refuses a rewrap with an unknown field and changes nothing", async () => {
      const vaultId = randomUUID();
      await push(alice, vaultId, pushBody("AAAA", 0));
      const before = (await pull(alice, vaultId)).json<PullResponse>();
      const res = await app.inject({
        method: "PUT",
        url: `/api/v1/vaults/${vaultId}/key`,
        headers: auth(alice),
        payload: { wrappedKey: fakeWrappedKey(), version: 1, extra: true },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json<ApiErrorBody>().message).toBe("The body may only have the fields wrappedKey, version.");
      expect((await pull(alice, vaultId)).json<PullResponse>().wrappedKey).toBe(before.wrappedKey);
    });

    it("checks the log limit", async () => {
      const vaultId = randomUUID();
      await push(alice, vaultId, pushBody("AAAA", 0));
      for (const limit of ["0", "51", "-1", "1.5", "x"]) {
        const res = await app.inject({
          method: "GET",
          url: `/api/v1/vaults/${vaultId}/log?limit=${limit}`,
          headers: auth(alice),
        });
        expect(res.statusCode, limit).toBe(400);
      }
    });
  });

  it("rewraps the current version's key without a new version, audited; refuses a stale version", async () => {
    const vaultId = randomUUID();
    await push(alice, vaultId, pushBody("AAAA", 0));
    await push(alice, vaultId, pushBody("AAAB", 1));
    const newKey = fakeWrappedKey();
    const stale = await app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${vaultId}/key`,
      headers: auth(alice),
      payload: { wrappedKey: newKey, version: 1 },
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json<ApiErrorBody>().currentVersion).toBe(2);
    const ok = await app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${vaultId}/key`,
      headers: auth(alice),
      payload: { wrappedKey: newKey, version: 2 },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ vaultId, version: 2 });
    expect(ok.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, ok));
    const copy = (await pull(alice, vaultId)).json<PullResponse>();
    expect(copy).toMatchObject({ version: 2, wrappedKey: newKey, encryptedBlob: "AAAB" });
    const absent = await app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${randomUUID()}/key`,
      headers: auth(alice),
      payload: { wrappedKey: newKey, version: 1 },
    });
    expect(absent.statusCode).toBe(404);
  });

  it("logs every mutation with its actor, newest first, at most 50, without values", async () => {
    const vaultId = randomUUID();
    for (let v = 0; v < 55; v++) {
      expect((await push(alice, vaultId, pushBody("AAAAAAAA", v, { schema: { K: {} } }))).statusCode).toBe(
        200,
      );
    }
    const wrappedKey = fakeWrappedKey();
    await app.inject({
      method: "PUT",
      url: `/api/v1/vaults/${vaultId}/key`,
      headers: auth(alice),
      payload: { wrappedKey, version: 55 },
    });
    const res = await app.inject({
      method: "GET",
      url: `/api/v1/vaults/${vaultId}/log`,
      headers: auth(alice),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-latchkey-signature"]).toBe(injectedSignature(alice.token, res));
    const log = res.json<AuditLogResponse>();
    expect(log.vaultId).toBe(vaultId);
    expect(log.entries).toHaveLength(50);
    expect(log.entries[0]).toMatchObject({
      action: "vault.rewrap",
      version: 55,
      actor: { userId: alice.userId, email: alice.email },
      metadata: { clientId: "latchkey-cli" },
    });
    expect(log.entries[1]).toMatchObject({
      action: "vault.push",
      version: 55,
      metadata: { blobSize: 6, clientId: "latchkey-cli", baseVersion: 54, schemaKeys: 1 },
    });
    expect(log.entries.slice(1).map((e) => e.version)).toEqual(Array.from({ length: 49 }, (_, i) => 55 - i));
    expect(res.body).not.toContain("AAAAAAAA");
    expect(res.body).not.toContain(wrappedKey);
    const few = await app.inject({
      method: "GET",
      url: `/api/v1/vaults/${vaultId}/log?limit=3`,
      headers: auth(alice),
    });
    expect(few.json<AuditLogResponse>().entries).toHaveLength(3);
  });

  it("answers an unexpected failure with a bare 500 and logs it without the driver's details", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    const failing = Fastify({ logger: loggerOptions({ level: "trace", stream }) });
    await registerSyncAlone(failing, {
      db: database.db,
      now: () => new Date(),
      randomId: randomUUID,
      authenticate: (token) => {
        if (token !== "explode") return server.identity.authenticate(token);
        // Shaped like a pg error: its `detail` quotes the failing row.
        const cause = Object.assign(new Error('null value in column "name"'), {
          code: "23502",
          detail: "Failing row contains (SECRET-BLOB-VALUE).",
        });
        return Promise.reject(new Error("database: read token failed", { cause }));
      },
    });
    try {
      const res = await failing.inject({
        method: "GET",
        url: "/api/v1/me",
        headers: { authorization: "Bearer explode" },
      });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({
        error: "InternalError",
        code: "LK_SERVER_ERROR",
        message: "The server failed to handle the request.",
      });
      const log = lines.join("");
      expect(log).toContain('"event":"api.failed"');
      expect(log).toContain("23502");
      expect(log).not.toContain("SECRET-BLOB-VALUE");
      expect(log).not.toContain("explode");
    } finally {
      await failing.close();
    }
  });

  it("takes the Bearer scheme in any case (RFC 7235 §2.1)", async () => {
    for (const scheme of ["bearer", "BEARER", "bEaReR"]) {
      const headers = { ...auth(alice), authorization: `${scheme} ${alice.token}` };
      const res = await app.inject({ method: "GET", url: "/api/v1/me", headers });
      expect(res.statusCode, scheme).toBe(200);
      expect(res.json<{ userId: string }>().userId).toBe(alice.userId);
    }
  });

  it("answers 401 with WWW-Authenticate for missing, malformed, unknown and expired tokens", async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{}, "LK_NOT_LOGGED_IN"],
      [{ authorization: "Basic abc" }, "LK_SESSION_EXPIRED"],
      [{ authorization: "Bearer a b" }, "LK_SESSION_EXPIRED"],
      [{ authorization: `Bearer ${"x".repeat(5000)}` }, "LK_SESSION_EXPIRED"],
      [{ authorization: "Bearer unknown-token" }, "LK_SESSION_EXPIRED"],
      [{ authorization: `Bearer ${await server.token(alice.userId, 0)}` }, "LK_SESSION_EXPIRED"],
    ];
    for (const [headers, code] of cases) {
      const res = await app.inject({ method: "GET", url: "/api/v1/me", headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers["www-authenticate"]).toMatch(/^Bearer /);
      if (code === "LK_SESSION_EXPIRED")
        expect(res.headers["www-authenticate"]).toContain('error="invalid_token"');
      expect(res.headers["x-latchkey-signature"]).toBeUndefined();
      expect(res.json<ApiErrorBody>().code).toBe(code);
    }
  });
});
