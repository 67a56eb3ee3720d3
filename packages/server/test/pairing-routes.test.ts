// Route tests of the pairing API in-process with app.inject, on SQLite and PostgreSQL, through the real app: real
// accounts, real access tokens (two sign-ins of one user are two OAuth grants, the two sessions a pairing binds its
// roles to) and real step-up proofs of the server's key (support/step-up.ts).
import { createHash, randomUUID } from "node:crypto";
import {
  fromBase64,
  openPairingKey,
  randomBytes,
  toBase64,
  PAIRINGS_PATH,
  pairingComparisonValue,
  pairingConsumeResponseSchema,
  pairingCreateResponseSchema,
  pairingListResponseSchema,
  pairingRevokeAllResponseSchema,
  pairingViewSchema,
  PAIRING_TTL_SECONDS,
  type PairingCreateResponse,
  type StepUpScope,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse as InjectResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import type { Identity } from "../src/identity/identity.js";
import { JOIN_FAILURE_LIMIT, JOIN_WINDOW_MS, MAX_UNFINISHED_PAIRINGS } from "../src/pairing/service.js";
import { describeEachDatabase } from "./databases.js";
import {
  answer,
  callAs,
  newAccount,
  openRouteApp,
  refused,
  type RouteApp,
  type Session,
} from "./support/route-suite.js";
import { approverKeys, newDevice, sealedWrappingKey, type NewDevice } from "./pairing-support.js";
import { mintAccessToken } from "./support/identity.js";
import { stepUpProofFor } from "./support/step-up.js";

describeEachDatabase("pairing routes", (target) => {
  let routeApp: RouteApp;
  let database: OpenDatabase;
  let app: FastifyInstance;
  let identity: Identity;
  // The server's clock runs `offset` ms ahead of the real one (expiry and the join window are tested by moving it).
  let offset = 0;
  const now = () => new Date(Date.now() + offset);

  beforeAll(async () => {
    routeApp = await openRouteApp(target, { now });
    ({ database, app, identity } = routeApp);
  });
  afterAll(async () => {
    await routeApp?.close();
  });

  /** A new account, signed in once. Tokens outlive the clock moves. */
  const account = (): Promise<Session> => newAccount(routeApp, 3600);
  /** Another sign-in of the same account: a new grant, i.e. another machine. Tokens outlive the clock moves. */
  async function signIn(of: Session): Promise<Session> {
    return { ...of, token: await mintAccessToken(identity, { userId: of.userId, expiresInSeconds: 3600 }) };
  }

  const stepUp = (session: Session, scope: StepUpScope = "vault:pair"): Promise<string> =>
    stepUpProofFor(identity, session.token, scope, { now: now() });

  const call = (
    session: Session,
    method: "GET" | "POST",
    path: string,
    payload?: object,
    proof?: string,
  ): Promise<InjectResponse> => callAs(app, session, method, `${PAIRINGS_PATH}${path}`, payload, proof);

  async function create(
    session: Session,
    device: NewDevice,
    label = "new laptop",
  ): Promise<PairingCreateResponse> {
    const res = await call(
      session,
      "POST",
      "",
      { label, commitment: device.commitment },
      await stepUp(session),
    );
    return answer(res, session, pairingCreateResponseSchema, 201);
  }
  const join = async (session: Session, code: string, publicKey?: string) =>
    call(session, "POST", "/join", { code, publicKey: publicKey ?? (await approverKeys()).publicKey });

  const auditRows = (userId: string, action: string) =>
    database.db
      .selectFrom("audit_events")
      .select(["metadata", "count"])
      .where("user_id", "=", userId)
      .where("action", "=", action)
      .execute();
  const storedRow = (id: string) =>
    database.db.selectFrom("pairings").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

  it("pairs two sessions of one user: the sealed key opens on the new device, once, and the server keeps none of it", async () => {
    const n = await account();
    const a = await signIn(n);
    const device = await newDevice();
    const created = await create(n, device, "new laptop");
    expect(created.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/);
    expect(Date.parse(created.expiresAt) - Date.now()).toBeGreaterThan((PAIRING_TTL_SECONDS - 60) * 1000);

    // Before anyone joins, only the creating session sees it.
    const early = answer(await call(n, "GET", `/${created.pairingId}`), n, pairingViewSchema);
    expect(early).toMatchObject({ status: "pending", label: "new laptop", commitment: device.commitment });
    expect(early.approverKey).toBeNull();
    refused(await call(a, "GET", `/${created.pairingId}`), 404, "LK_PAIRING_NOT_FOUND");

    // A joins with the code as a person might type it.
    const approver = await approverKeys();
    const typed = `${created.code.slice(0, 3).toLowerCase()}-${created.code.slice(3)}`;
    const joined = answer(await join(a, typed, approver.publicKey), a, pairingViewSchema);
    expect(joined).toMatchObject({
      pairingId: created.pairingId,
      status: "joined",
      approverKey: approver.publicKey,
    });
    expect(joined.newDeviceKey).toBeNull();

    // N waits for the join, then reveals.
    const seen = answer(await call(n, "GET", `/${created.pairingId}`), n, pairingViewSchema);
    expect(seen.approverKey).toBe(approver.publicKey);
    const revealed = answer(
      await call(n, "POST", `/${created.pairingId}/reveal`, device.reveal),
      n,
      pairingViewSchema,
    );
    expect(revealed).toMatchObject({
      status: "revealed",
      newDeviceKey: device.reveal.publicKey,
      nonce: device.reveal.nonce,
    });

    // Both sides compute the same comparison value: N from what it knows and the approver key relayed to it, A
    // from what the server relayed to A.
    const onA = answer(await call(a, "GET", `/${created.pairingId}`), a, pairingViewSchema);
    const onN = await pairingComparisonValue({
      code: created.code,
      newDeviceKey: device.keys.publicKey,
      approverKey: fromBase64(seen.approverKey!),
      nonce: device.nonce,
    });
    expect(
      await pairingComparisonValue({
        code: created.code,
        newDeviceKey: fromBase64(onA.newDeviceKey!),
        approverKey: approver.keys.publicKey,
        nonce: fromBase64(onA.nonce!),
      }),
    ).toBe(onN);

    const { sealedKey, wrappingKey } = await sealedWrappingKey(
      approver.keys,
      device,
      onA.label,
      created.code,
    );
    const approved = answer(
      await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey }),
      a,
      pairingViewSchema,
    );
    expect(approved.status).toBe("approved");

    const consumed = answer(
      await call(n, "POST", `/${created.pairingId}/consume`),
      n,
      pairingConsumeResponseSchema,
    );
    const binding = {
      label: "new laptop",
      code: created.code,
      newDeviceKey: device.keys.publicKey,
      approverKey: approver.keys.publicKey,
    };
    expect(await openPairingKey(device.keys, binding, fromBase64(consumed.sealedKey))).toEqual({
      wrappingKey,
      sharingKey: null,
    });
    expect(await storedRow(created.pairingId)).toMatchObject({ status: "consumed", sealed_key: null });

    const listed = answer(await call(n, "GET", ""), n, pairingListResponseSchema);
    expect(listed.pairings[0]).toMatchObject({ pairingId: created.pairingId, status: "consumed" });

    // Every step is audited, with the code's hash and never the code, a key or the sealed key.
    const [createRow] = await auditRows(n.userId, "pairing.create");
    expect(JSON.parse(createRow!.metadata)).toEqual({
      pairingId: created.pairingId,
      codeHash: createHash("sha256").update(created.code).digest("hex"),
      label: "new laptop",
      stepUpMethod: "password",
      ip: "127.0.0.1",
    });
    for (const action of ["pairing.join", "pairing.reveal", "pairing.approve", "pairing.consume"]) {
      expect(await auditRows(n.userId, action), action).toHaveLength(1);
    }
    const everything = (
      await database.db
        .selectFrom("audit_events")
        .select("metadata")
        .where("user_id", "=", n.userId)
        .execute()
    )
      .map((r) => r.metadata)
      .join("\n");
    for (const secret of [
      created.code,
      sealedKey,
      approver.publicKey,
      device.reveal.publicKey,
      device.reveal.nonce,
    ]) {
      expect(everything).not.toContain(secret);
    }
  });

  it("answers a wrong code with 404 and a coalesced audit row", async () => {
    const n = await account();
    const a = await signIn(n);
    const created = await create(n, await newDevice());
    const wrong = created.code.startsWith("2") ? `3${created.code.slice(1)}` : `2${created.code.slice(1)}`;
    refused(await join(a, wrong), 404, "LK_PAIRING_NOT_FOUND");
    refused(await join(a, wrong), 404, "LK_PAIRING_NOT_FOUND");
    const rows = await auditRows(n.userId, "pairing.join_refused");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.count).toBe(2);
    expect(JSON.parse(rows[0]!.metadata)).toEqual({ reason: "wrong_code", ip: "127.0.0.1" });
    expect((await storedRow(created.pairingId)).status).toBe("pending");
  });

  it("refuses an expired pairing at join and at every later step", async () => {
    const n = await account();
    const a = await signIn(n);
    const created = await create(n, await newDevice());
    offset += PAIRING_TTL_SECONDS * 1000;
    try {
      const body = refused(await join(a, created.code), 409, "LK_PAIRING_FAILED");
      expect(body.message).toMatch(/expired/);
      const view = answer(await call(n, "GET", `/${created.pairingId}`), n, pairingViewSchema);
      expect(view.status).toBe("expired");
      refused(await call(n, "POST", `/${created.pairingId}/revoke`), 409, "LK_PAIRING_FAILED");
    } finally {
      offset -= PAIRING_TTL_SECONDS * 1000;
    }
  });

  it("refuses a code once its pairing is consumed, and a second consume finds no key", async () => {
    const { n, a, created } = await throughApproval();
    answer(await call(n, "POST", `/${created.pairingId}/consume`), n, pairingConsumeResponseSchema);
    expect((await storedRow(created.pairingId)).sealed_key).toBeNull();
    const again = refused(await call(n, "POST", `/${created.pairingId}/consume`), 409, "LK_PAIRING_FAILED");
    expect(again.message).toMatch(/consumed/);
    const reused = refused(await join(await signIn(n), created.code), 409, "LK_PAIRING_FAILED");
    expect(reused.message).toMatch(/consumed/);
    refused(await join(a, created.code), 409, "LK_PAIRING_FAILED");
  });

  it("lets a second approver of the same code get 409, naming the state", async () => {
    const n = await account();
    const created = await create(n, await newDevice());
    const first = await signIn(n);
    answer(await join(first, created.code), first, pairingViewSchema);
    const second = refused(await join(await signIn(n), created.code), 409, "LK_PAIRING_FAILED");
    expect(second.message).toMatch(/joined/);
  });

  it("lets exactly one of two approvers racing for one code join", async () => {
    const n = await account();
    for (let round = 0; round < 4; round++) {
      const created = await create(n, await newDevice());
      const racers = await Promise.all([signIn(n), signIn(n)]);
      const keys = await Promise.all([approverKeys(), approverKeys()]);
      const answers = await Promise.all(
        racers.map((racer, i) => join(racer, created.code, keys[i]!.publicKey)),
      );
      const statuses = answers.map((res) => res.statusCode).sort();
      expect(statuses, answers.map((res) => res.body).join("\n")).toEqual([200, 409]);
      const winner = answers.findIndex((res) => res.statusCode === 200);
      const row = await storedRow(created.pairingId);
      expect(row.approver_key).toBe(keys[winner]!.publicKey);
      expect(await auditRows(n.userId, "pairing.join")).toHaveLength(round + 1);
      answer(await call(n, "POST", `/${created.pairingId}/revoke`), n, pairingViewSchema);
    }
  });

  it("revokes a pairing whose reveal does not match the commitment; nothing can be approved", async () => {
    const n = await account();
    const a = await signIn(n);
    const device = await newDevice();
    const created = await create(n, device);
    answer(await join(a, created.code), a, pairingViewSchema);
    const other = await newDevice();
    const body = refused(
      await call(n, "POST", `/${created.pairingId}/reveal`, other.reveal),
      409,
      "LK_PAIRING_FAILED",
    );
    expect(body.message).toMatch(/commitment/);
    expect(await storedRow(created.pairingId)).toMatchObject({ status: "revoked", new_device_key: null });
    expect(answer(await call(a, "GET", `/${created.pairingId}`), a, pairingViewSchema).status).toBe(
      "revoked",
    );
    // The right key is too late now, and there is nothing to approve.
    refused(await call(n, "POST", `/${created.pairingId}/reveal`, device.reveal), 409, "LK_PAIRING_FAILED");
    const approver = await approverKeys();
    const { sealedKey } = await sealedWrappingKey(approver.keys, device, "new laptop", created.code);
    refused(await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey }), 409, "LK_PAIRING_FAILED");
    const [mismatch] = await auditRows(n.userId, "pairing.reveal_mismatch");
    expect(JSON.parse(mismatch!.metadata)).toMatchObject({
      pairingId: created.pairingId,
      check: "commitment",
    });
  });

  it("never finds another user's pairing: not by code, not by id", async () => {
    const alice = await account();
    const bob = await account();
    const created = await create(alice, await newDevice());
    refused(await join(bob, created.code), 404, "LK_PAIRING_NOT_FOUND");
    refused(await call(bob, "GET", `/${created.pairingId}`), 404, "LK_PAIRING_NOT_FOUND");
    refused(await call(bob, "POST", `/${created.pairingId}/revoke`), 404, "LK_PAIRING_NOT_FOUND");
    expect(answer(await call(bob, "GET", ""), bob, pairingListResponseSchema).pairings).toEqual([]);
    expect(answer(await call(bob, "POST", "/revoke-all"), bob, pairingRevokeAllResponseSchema).revoked).toBe(
      0,
    );
    expect(await storedRow(created.pairingId)).toMatchObject({ status: "pending", approver_grant: null });
    // Alice's own second machine still can.
    const laptop = await signIn(alice);
    answer(await join(laptop, created.code), laptop, pairingViewSchema);
  });

  it("refuses a join from the session that created the pairing; another session then joins", async () => {
    const n = await account();
    const created = await create(n, await newDevice());
    const body = refused(await join(n, created.code), 409, "LK_PAIRING_FAILED");
    expect(body.message).toMatch(/another machine/);
    expect((await storedRow(created.pairingId)).status).toBe("pending");
    const other = await signIn(n);
    answer(await join(other, created.code), other, pairingViewSchema);
  });

  it("binds each step to its session: the approver cannot reveal or consume, the creator cannot approve", async () => {
    const { n, a, created, sealedKey } = await throughApproval({ stopBefore: "approve" });
    refused(await call(n, "POST", `/${created.pairingId}/approve`, { sealedKey }), 409, "LK_PAIRING_FAILED");
    const third = await signIn(n);
    refused(
      await call(third, "POST", `/${created.pairingId}/approve`, { sealedKey }),
      404,
      "LK_PAIRING_NOT_FOUND",
    );
    answer(await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey }), a, pairingViewSchema);
    refused(await call(a, "POST", `/${created.pairingId}/consume`), 409, "LK_PAIRING_FAILED");
    refused(await call(third, "POST", `/${created.pairingId}/consume`), 404, "LK_PAIRING_NOT_FOUND");
    answer(await call(n, "POST", `/${created.pairingId}/consume`), n, pairingConsumeResponseSchema);
  });

  it("revoke-all cancels every unfinished pairing of the account and drops sealed keys", async () => {
    const { n, created: approved } = await throughApproval();
    const pending = await create(n, await newDevice());
    const other = await account();
    const untouched = await create(other, await newDevice());
    const elsewhere = await signIn(n);
    const all = answer(
      await call(elsewhere, "POST", "/revoke-all", {}),
      elsewhere,
      pairingRevokeAllResponseSchema,
    );
    expect(all.revoked).toBe(2);
    expect(await storedRow(approved.pairingId)).toMatchObject({ status: "revoked", sealed_key: null });
    expect((await storedRow(pending.pairingId)).status).toBe("revoked");
    expect((await storedRow(untouched.pairingId)).status).toBe("pending");
    refused(await call(n, "POST", `/${approved.pairingId}/consume`), 409, "LK_PAIRING_FAILED");
    const [row] = await auditRows(n.userId, "pairing.revoke_all");
    expect(JSON.parse(row!.metadata)).toMatchObject({ count: 2 });
  });

  it(`answers 429 after ${JOIN_FAILURE_LIMIT} wrong codes, even to the right one, until the window passes`, async () => {
    const n = await account();
    const a = await signIn(n);
    const created = await create(n, await newDevice());
    const wrong = created.code.startsWith("2") ? `3${created.code.slice(1)}` : `2${created.code.slice(1)}`;
    for (let i = 0; i < JOIN_FAILURE_LIMIT; i++) refused(await join(a, wrong), 404, "LK_PAIRING_NOT_FOUND");
    const limited = await join(a, created.code);
    refused(limited, 429, "LK_RATE_LIMITED");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect((await storedRow(created.pairingId)).status).toBe("pending");
    const [row] = await auditRows(n.userId, "pairing.join_refused").then((rows) =>
      rows.filter((r) => r.metadata.includes("rate_limited")),
    );
    expect(row).toBeDefined();
    // Another user is not limited by this one's guesses.
    const other = await account();
    refused(await join(other, wrong), 404, "LK_PAIRING_NOT_FOUND");

    offset += JOIN_WINDOW_MS;
    try {
      const late = await create(n, await newDevice());
      answer(await join(a, late.code), a, pairingViewSchema);
    } finally {
      offset -= JOIN_WINDOW_MS;
    }
  });

  it("counts concurrent wrong codes one by one: no more than the limit get an answer", async () => {
    const n = await account();
    const a = await signIn(n);
    const created = await create(n, await newDevice());
    const wrong = created.code.startsWith("2") ? `3${created.code.slice(1)}` : `2${created.code.slice(1)}`;
    const key = (await approverKeys()).publicKey;
    const answers = await Promise.all(
      Array.from({ length: 2 * JOIN_FAILURE_LIMIT }, () => join(a, wrong, key)),
    );
    const statuses = answers.map((res) => res.statusCode);
    expect(statuses.filter((s) => s === 404)).toHaveLength(JOIN_FAILURE_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(JOIN_FAILURE_LIMIT);
  });

  describe("step-up", () => {
    it("refuses create without a proof, or with one for another scope, with 403 LK_STEP_UP_REQUIRED", async () => {
      const n = await account();
      const device = await newDevice();
      const body = { label: "laptop", commitment: device.commitment };
      refused(await call(n, "POST", "", body), 403, "LK_STEP_UP_REQUIRED");
      refused(
        await call(n, "POST", "", body, await stepUp(n, "vault:ci:enable")),
        403,
        "LK_STEP_UP_REQUIRED",
      );
      // A proof of another session of the same user is worthless here.
      refused(await call(n, "POST", "", body, await stepUp(await signIn(n))), 403, "LK_STEP_UP_REQUIRED");
      expect(await auditRows(n.userId, "pairing.create")).toEqual([]);
    });

    it("spends a proof once, and only on a create that succeeds", async () => {
      const n = await account();
      const body = async () => ({ label: "laptop", commitment: (await newDevice()).commitment });
      for (let i = 0; i < MAX_UNFINISHED_PAIRINGS; i++) await create(n, await newDevice());
      const proof = await stepUp(n);
      const full = await call(n, "POST", "", await body(), proof);
      refused(full, 429, "LK_RATE_LIMITED");
      answer(await call(n, "POST", "/revoke-all"), n, pairingRevokeAllResponseSchema);
      answer(await call(n, "POST", "", await body(), proof), n, pairingCreateResponseSchema, 201);
      refused(await call(n, "POST", "", await body(), proof), 403, "LK_STEP_UP_REQUIRED");
    });
  });

  it("answers every pairing route without a bearer token with 401, before anything else", async () => {
    const id = randomUUID();
    const routes: [string, string][] = [
      ["POST", ""],
      ["GET", ""],
      ["POST", "/join"],
      ["POST", "/revoke-all"],
      ["GET", `/${id}`],
      ...["reveal", "approve", "consume", "revoke"].map((step): [string, string] => [
        "POST",
        `/${id}/${step}`,
      ]),
    ];
    for (const [method, path] of routes) {
      const res = await app.inject({ method: method as "GET", url: `${PAIRINGS_PATH}${path}`, payload: {} });
      expect(res.statusCode, `${method} ${path}`).toBe(401);
    }
  });

  it("carries a sealed key with the sharing key (96 bytes) to the new device intact; 80 bytes is a 400", async () => {
    const { n, a, created, device, approver } = await throughApproval({ stopBefore: "approve" });
    const odd = toBase64(randomBytes(80));
    refused(
      await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey: odd }),
      400,
      "LK_SERVER_ERROR",
    );
    expect((await storedRow(created.pairingId)).status).toBe("revealed");
    const { sealedKey, wrappingKey, sharingKey } = await sealedWrappingKey(
      approver.keys,
      device,
      "new laptop",
      created.code,
      { withSharingKey: true },
    );
    expect(fromBase64(sealedKey)).toHaveLength(96);
    answer(await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey }), a, pairingViewSchema);
    const consumed = answer(
      await call(n, "POST", `/${created.pairingId}/consume`),
      n,
      pairingConsumeResponseSchema,
    );
    expect(consumed.sealedKey).toBe(sealedKey);
    const binding = {
      label: "new laptop",
      code: created.code,
      newDeviceKey: device.keys.publicKey,
      approverKey: approver.keys.publicKey,
    };
    expect(await openPairingKey(device.keys, binding, fromBase64(consumed.sealedKey))).toEqual({
      wrappingKey,
      sharingKey,
    });
    expect(await storedRow(created.pairingId)).toMatchObject({ status: "consumed", sealed_key: null });
  });

  it("validates bodies and ids at the route", async () => {
    const n = await account();
    const device = await newDevice();
    const proof = await stepUp(n);
    const extra = await call(
      n,
      "POST",
      "",
      { label: "x", commitment: device.commitment, code: "222222" },
      proof,
    );
    expect(extra.statusCode).toBe(400);
    refused(await call(n, "GET", "/not-a-uuid"), 400, "LK_SERVER_ERROR");
    refused(await call(n, "POST", `/${randomUUID()}/consume`, { sealedKey: "x" }), 400, "LK_SERVER_ERROR");
    // A 65-byte public key that is no point on P-256.
    const offCurve = Buffer.alloc(65, 1);
    offCurve[0] = 4;
    refused(await join(n, "222222", offCurve.toString("base64")), 400, "LK_SERVER_ERROR");
    // The proof was not spent by the refused create.
    answer(
      await call(n, "POST", "", { label: "x", commitment: device.commitment }, proof),
      n,
      pairingCreateResponseSchema,
      201,
    );
  });

  /** A pairing of a fresh account taken to `approved` (or to `revealed`, with the sealed key it would approve). */
  async function throughApproval(options: { stopBefore?: "approve" } = {}) {
    const n = await account();
    const a = await signIn(n);
    const device = await newDevice();
    const created = await create(n, device);
    const approver = await approverKeys();
    answer(await join(a, created.code, approver.publicKey), a, pairingViewSchema);
    answer(await call(n, "POST", `/${created.pairingId}/reveal`, device.reveal), n, pairingViewSchema);
    const { sealedKey } = await sealedWrappingKey(approver.keys, device, "new laptop", created.code);
    if (options.stopBefore !== "approve") {
      answer(await call(a, "POST", `/${created.pairingId}/approve`, { sealedKey }), a, pairingViewSchema);
    }
    return { n, a, created, sealedKey, device, approver };
  }
});
