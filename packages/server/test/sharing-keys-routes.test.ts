// Route tests of the sharing-key API in-process with app.inject, on SQLite and PostgreSQL, through the real app:
// real accounts, real access tokens and real step-up proofs of the server's key (support/step-up.ts). The state a
// machine is told, the initial set (a proof of its own scope, never over an existing key), the rotation (a proof
// of its own scope) and what each leaves in the database and the audit log.
import {
  fromHex,
  generateX25519KeyPair,
  sharingKeyFingerprint,
  SHARING_KEY_PATH,
  sharingKeyImpactResponseSchema,
  sharingKeyResponseSchema,
  sharingKeyRotateResponseSchema,
  sharingKeyStateResponseSchema,
  toBase64,
  type StepUpScope,
} from "@latchkey/core";
import type { FastifyInstance, LightMyRequestResponse as InjectResponse } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import type { Identity } from "../src/identity/identity.js";
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
import { mintAccessToken } from "./support/identity.js";
import { stepUpProofFor } from "./support/step-up.js";

/** A fresh X25519 public key, as the CLI uploads it, with its fingerprint. */
async function newKey(): Promise<{ publicKey: string; fingerprint: string }> {
  const { publicKey } = await generateX25519KeyPair();
  return { publicKey: toBase64(publicKey), fingerprint: await sharingKeyFingerprint(publicKey) };
}

// A low-order point (the u-coordinate 1): every wrap for it would fail.
const LOW_ORDER = toBase64(fromHex(`01${"00".repeat(31)}`));

describeEachDatabase("sharing-key routes", (target) => {
  let routeApp: RouteApp;
  let database: OpenDatabase;
  let app: FastifyInstance;
  let identity: Identity;

  beforeAll(async () => {
    routeApp = await openRouteApp(target);
    ({ database, app, identity } = routeApp);
  });
  afterAll(async () => {
    await routeApp?.close();
  });

  const account = (): Promise<Session> => newAccount(routeApp);

  const proof = (session: Session, scope: StepUpScope): Promise<string> =>
    stepUpProofFor(identity, session.token, scope);

  const call = (
    session: Session,
    method: "GET" | "PUT" | "POST",
    path: string,
    payload?: object,
    stepUp?: string,
  ): Promise<InjectResponse> => callAs(app, session, method, `${SHARING_KEY_PATH}${path}`, payload, stepUp);

  const state = async (session: Session, fingerprint?: string) =>
    answer(
      await call(session, "GET", fingerprint === undefined ? "" : `?fingerprint=${fingerprint}`),
      session,
      sharingKeyStateResponseSchema,
    );
  const stored = (userId: string) =>
    database.db.selectFrom("user_public_keys").selectAll().where("user_id", "=", userId).executeTakeFirst();
  const auditRows = (userId: string) =>
    database.db
      .selectFrom("audit_events")
      .select(["action", "metadata"])
      .where("user_id", "=", userId)
      .where("action", "like", "%public_key%")
      .orderBy("created_at")
      .execute();

  it("answers the state a machine's key is in: none, matching, another", async () => {
    const alice = await account();
    const key = await newKey();
    const other = await newKey();
    expect(await state(alice)).toEqual({ state: "needs-initial-set", publicKey: null, fingerprint: null });
    expect((await state(alice, key.fingerprint)).state).toBe("needs-initial-set");

    answer(
      await call(alice, "PUT", "", { publicKey: key.publicKey }, await proof(alice, "vault:public-key:set")),
      alice,
      sharingKeyResponseSchema,
      201,
    );
    expect(await state(alice, key.fingerprint)).toEqual({ state: "matches", ...key });
    expect(await state(alice, other.fingerprint)).toEqual({ state: "rotation-required", ...key });
    // A machine with no key at all (another machine of the same account) must not overwrite it either.
    expect(await state(alice)).toEqual({ state: "rotation-required", ...key });

    // Another account sees its own state only.
    const bob = await account();
    expect((await state(bob, key.fingerprint)).state).toBe("needs-initial-set");

    refused(await call(alice, "GET", "?fingerprint=ABC"), 400, "LK_SERVER_ERROR");
    refused(
      await call(alice, "GET", `?fingerprint=${key.fingerprint.toUpperCase()}`),
      400,
      "LK_SERVER_ERROR",
    );
    refused(await call(alice, "GET", `?fingerprint=${key.fingerprint}&x=1`), 400, "LK_SERVER_ERROR");
    refused(
      await call(alice, "GET", `?fingerprint=${key.fingerprint}&fingerprint=${other.fingerprint}`),
      400,
      "LK_SERVER_ERROR",
    );
  });

  it("sets the first key only with a proof of its own scope, and never over an existing key", async () => {
    const alice = await account();
    const key = await newKey();
    const body = { publicKey: key.publicKey };

    // A stolen bearer token alone, or with a proof for anything else, plants nothing.
    refused(await call(alice, "PUT", "", body), 403, "LK_STEP_UP_REQUIRED");
    refused(
      await call(alice, "PUT", "", body, await proof(alice, "vault:public-key:rotate")),
      403,
      "LK_STEP_UP_REQUIRED",
    );
    refused(await call(alice, "PUT", "", body, await proof(alice, "vault:pair")), 403, "LK_STEP_UP_REQUIRED");
    const otherSession = { ...alice, token: await mintAccessToken(identity, { userId: alice.userId }) };
    refused(
      await call(alice, "PUT", "", body, await proof(otherSession, "vault:public-key:set")),
      403,
      "LK_STEP_UP_REQUIRED",
    );
    expect(await stored(alice.userId)).toBeUndefined();
    expect(await auditRows(alice.userId)).toEqual([]);

    const set = answer(
      await call(alice, "PUT", "", body, await proof(alice, "vault:public-key:set")),
      alice,
      sharingKeyResponseSchema,
      201,
    );
    expect(set).toMatchObject({ ...key, rotatedAt: null });
    expect(await stored(alice.userId)).toMatchObject({
      public_key: key.publicKey,
      fingerprint: key.fingerprint,
      rotated_at: null,
    });
    const rows = await auditRows(alice.userId);
    expect(rows.map((r) => r.action)).toEqual(["vault.public_key_set"]);
    expect(JSON.parse(rows[0]!.metadata)).toMatchObject({ fingerprint: key.fingerprint, stepUp: "password" });

    // A second set, even with a good proof, and even of the same key, is refused: only a rotation replaces it.
    const planted = await newKey();
    refused(
      await call(
        alice,
        "PUT",
        "",
        { publicKey: planted.publicKey },
        await proof(alice, "vault:public-key:set"),
      ),
      409,
      "LK_SHARING_KEY_EXISTS",
    );
    refused(
      await call(alice, "PUT", "", body, await proof(alice, "vault:public-key:set")),
      409,
      "LK_SHARING_KEY_EXISTS",
    );
    expect((await stored(alice.userId))?.fingerprint).toBe(key.fingerprint);
    expect((await auditRows(alice.userId)).length).toBe(1);
  });

  it("refuses a key nobody can wrap for, or a malformed one, before writing anything", async () => {
    const alice = await account();
    const setProof = await proof(alice, "vault:public-key:set");
    refused(await call(alice, "PUT", "", { publicKey: LOW_ORDER }, setProof), 400, "LK_SERVER_ERROR");
    const key = await newKey();
    for (const publicKey of [
      key.publicKey.replaceAll("+", "-").replaceAll("/", "_").replace("=", ""),
      ` ${key.publicKey}`,
      toBase64(new Uint8Array(31)),
    ]) {
      refused(await call(alice, "PUT", "", { publicKey }, setProof), 400, "LK_SERVER_ERROR");
    }
    refused(
      await call(alice, "PUT", "", { publicKey: key.publicKey, extra: 1 }, setProof),
      400,
      "LK_SERVER_ERROR",
    );
    refused(
      await call(
        alice,
        "POST",
        "/rotate",
        { publicKey: LOW_ORDER },
        await proof(alice, "vault:public-key:rotate"),
      ),
      400,
      "LK_SERVER_ERROR",
    );
    expect(await stored(alice.userId)).toBeUndefined();
    // The proof was not spent by the refusals: it still sets the key.
    answer(
      await call(alice, "PUT", "", { publicKey: key.publicKey }, setProof),
      alice,
      sharingKeyResponseSchema,
      201,
    );
  });

  it("rotates only with a proof of its own scope, once per proof; the same key again changes nothing", async () => {
    const alice = await account();
    const first = await newKey();
    answer(
      await call(
        alice,
        "PUT",
        "",
        { publicKey: first.publicKey },
        await proof(alice, "vault:public-key:set"),
      ),
      alice,
      sharingKeyResponseSchema,
      201,
    );
    const second = await newKey();
    const body = { publicKey: second.publicKey };
    refused(await call(alice, "POST", "/rotate", body), 403, "LK_STEP_UP_REQUIRED");
    refused(
      await call(alice, "POST", "/rotate", body, await proof(alice, "vault:public-key:set")),
      403,
      "LK_STEP_UP_REQUIRED",
    );
    expect((await stored(alice.userId))?.fingerprint).toBe(first.fingerprint);

    const rotateProof = await proof(alice, "vault:public-key:rotate");
    const rotated = answer(
      await call(alice, "POST", "/rotate", body, rotateProof),
      alice,
      sharingKeyRotateResponseSchema,
    );
    expect(rotated).toEqual({
      ...second,
      previousFingerprint: first.fingerprint,
      rotated: true,
      orgs: [],
      wrappedKeysDeleted: 0,
    });
    const row = await stored(alice.userId);
    expect(row).toMatchObject({ public_key: second.publicKey, fingerprint: second.fingerprint });
    expect(row?.rotated_at).not.toBeNull();
    expect((await state(alice, second.fingerprint)).state).toBe("matches");
    expect((await state(alice, first.fingerprint)).state).toBe("rotation-required");

    // The proof is spent: replaying it for a third key is refused.
    const third = await newKey();
    refused(
      await call(alice, "POST", "/rotate", { publicKey: third.publicKey }, rotateProof),
      403,
      "LK_STEP_UP_REQUIRED",
    );
    // The key that is registered already: an answer lost on the way is asked for again, and nothing changes.
    const again = answer(
      await call(alice, "POST", "/rotate", body, await proof(alice, "vault:public-key:rotate")),
      alice,
      sharingKeyRotateResponseSchema,
    );
    expect(again).toMatchObject({ ...second, rotated: false, wrappedKeysDeleted: 0 });

    const rows = await auditRows(alice.userId);
    expect(rows.map((r) => r.action)).toEqual(["vault.public_key_set", "vault.public_key_rotated"]);
    expect(JSON.parse(rows[1]!.metadata)).toMatchObject({
      fingerprint: second.fingerprint,
      previousFingerprint: first.fingerprint,
      stepUp: "password",
    });
  });

  it("a rotation sets the key of an account that has none", async () => {
    const alice = await account();
    const key = await newKey();
    const rotated = answer(
      await call(
        alice,
        "POST",
        "/rotate",
        { publicKey: key.publicKey },
        await proof(alice, "vault:public-key:rotate"),
      ),
      alice,
      sharingKeyRotateResponseSchema,
    );
    expect(rotated).toMatchObject({ ...key, previousFingerprint: null, rotated: true });
    expect((await stored(alice.userId))?.rotated_at).toBeNull();
  });

  it("answers the impact of a rotation for an account in no organisation", async () => {
    const alice = await account();
    expect(answer(await call(alice, "GET", "/impact"), alice, sharingKeyImpactResponseSchema)).toEqual({
      orgs: [],
    });
  });
});
