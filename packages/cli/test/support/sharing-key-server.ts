// A machine signed in to a fake server that answers the sharing-key and step-up routes as the real ones do
// (packages/server/src/sharing-keys, step-up): signed 2xx answers, unsigned errors, a proof per scope that a write
// spends, the initial set refused over an existing key, a rotation that drops the account's wrapped keys. For the
// in-process tests of sharing/ (and of any command that calls ensureSharingKey first).
import { randomFillSync } from "node:crypto";
import {
  CLI_CLIENT_ID,
  LatchkeyError,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  STEP_UP_HEADER,
  checkSchema,
  fromBase64,
  sharingKeyFingerprint,
  sharingKeyRotateRequestSchema,
  sharingKeySetRequestSchema,
  stepUpRequestSchema,
  type SharingKeyImpactOrg,
  type StepUpScope,
  type WireSchema,
} from "@latchkey/core";
import type { Context } from "../../src/context.js";
import { createMemoryKeystore } from "../../src/keystore/memory.js";
import type { KeystoreResolution } from "../../src/keystore/resolve.js";
import type { Keystore } from "../../src/keystore/types.js";
import { resolvePaths } from "../../src/paths.js";
import { serverAccount, type ServerSession } from "../../src/server/session.js";
import { signResponse } from "../../src/server/signature.js";
import { createTestContext, type CapturedStream } from "./context.js";

/** The server every machine of these tests is signed in to. */
export const SHARING_SERVER = "https://lk.sharing.example";
/** The account's password at the step-up prompt. */
export const SHARING_PASSWORD = "correct horse battery staple 7f3a";

/** A request the fake server received. */
export interface SeenRequest {
  method: string;
  /** Path and query. */
  path: string;
  /** The step-up proof it carried, if any. */
  proof: string | null;
  body: string;
}

/** The fake server's state, which tests read and set. */
export interface FakeSharingServer {
  /** The account's registered public key (base64) and fingerprint; null when it has none. */
  key: { publicKey: string; fingerprint: string } | null;
  /** The account's wrapped org vault keys, by org (what a rotation drops). */
  impact: SharingKeyImpactOrg[];
  /** Every request, in order. */
  seen: SeenRequest[];
  /** Proofs minted, by proof, and whether spent. */
  proofs: Map<string, { scope: StepUpScope; spent: boolean }>;
  /**
   * Called before a write is answered, after it took effect: throwing there loses the answer on the way back (the
   * server has the change, the client sees a network failure).
   */
  afterWrite?: (path: string) => void;
  /** Called before each request is answered: lets a test change the server behind the client's back. */
  before?: (seen: SeenRequest) => void;
  /**
   * Answers the routes this fake does not know (test/support/org-server.ts serves the organisation routes here);
   * null passes the request on to this fake's own routes.
   */
  extra?: (seen: SeenRequest) => Promise<{ status: number; body: unknown } | null>;
}

/** A machine: its context, its keystore and what it showed on stderr. */
export interface SharingMachine {
  ctx: Context & { stderr: CapturedStream };
  keystore: Keystore;
  server: FakeSharingServer;
  /** What the machine was asked at its prompts, in order. */
  asked: string[];
  /** The crash-test steps it passed (Context.afterRotateStep), in order. */
  steps: string[];
}

/** Options of {@link sharingMachine}. */
export interface SharingMachineOptions {
  /** Shared with another machine of the same account; default a new server with no key. */
  server?: FakeSharingServer;
  /** What the person types at the password prompts, in order; default the right password, as often as asked. */
  passwords?: string[];
  /** What the person types at text prompts, in order. */
  typed?: string[];
  /**
   * What the person answers at yes/no prompts, in order, taken from this very array (a test may push answers
   * later); a prompt with no answer left fails the test.
   */
  confirms?: boolean[];
  /** Whether stdin and stderr are a terminal; default true. */
  tty?: boolean;
  /** The keystore's entries before the test. */
  stored?: Record<string, string>;
  /** Called at each crash-test step, after it is recorded. */
  onStep?: (step: string) => void;
  /** The account's user id at the server (the session's subject); default "user-1". */
  subject?: string;
  /** The directory commands run in. */
  cwd?: string;
  /** More environment. */
  env?: Record<string, string>;
}

/** A fresh fake server with no key for the account. */
export function fakeSharingServer(): FakeSharingServer {
  return { key: null, impact: [], seen: [], proofs: new Map() };
}

let proofs = 0;

async function answer(
  server: FakeSharingServer,
  seen: SeenRequest,
): Promise<{ status: number; body: unknown }> {
  const refused = (status: number, code: string) => ({
    status,
    body: { error: "Refused", code, message: "refused" },
  });
  // What the CLI sends is checked with core's schemas, as the real server checks it: a body the server would
  // refuse must not pass here.
  const request = <T>(schema: WireSchema<T>): T | null => {
    const checked = checkSchema(schema, JSON.parse(seen.body));
    return checked.ok ? checked.value : null;
  };
  const spend = (scope: StepUpScope): boolean => {
    const proof = seen.proof === null ? undefined : server.proofs.get(seen.proof);
    if (proof === undefined || proof.scope !== scope || proof.spent) return false;
    proof.spent = true;
    return true;
  };
  const url = new URL(seen.path, SHARING_SERVER);
  if (seen.method === "GET" && url.pathname === "/api/v1/step-up/method") {
    return { status: 200, body: { method: "password" } };
  }
  if (seen.method === "POST" && url.pathname === "/api/v1/step-up") {
    const body = request(stepUpRequestSchema);
    if (body === null) return refused(400, "LK_SERVER_ERROR");
    if (body.password !== SHARING_PASSWORD) return refused(403, "LK_STEP_UP_FAILED");
    const proof = `eyJhbGciOiJIUzI1NiJ9.eyJwcm9vZiI6${++proofs}fQ.c2lnbmF0dXJl`;
    server.proofs.set(proof, { scope: body.scope, spent: false });
    return { status: 200, body: { proof, scope: body.scope, expiresAt: "2030-01-01T00:05:00.000Z" } };
  }
  if (seen.method === "GET" && url.pathname === "/api/v1/sharing-key") {
    const fingerprint = url.searchParams.get("fingerprint");
    const key = server.key;
    return {
      status: 200,
      body: {
        state:
          key === null
            ? "needs-initial-set"
            : key.fingerprint === fingerprint
              ? "matches"
              : "rotation-required",
        publicKey: key?.publicKey ?? null,
        fingerprint: key?.fingerprint ?? null,
      },
    };
  }
  if (seen.method === "GET" && url.pathname === "/api/v1/sharing-key/impact") {
    return { status: 200, body: { orgs: server.impact } };
  }
  if (seen.method === "PUT" && url.pathname === "/api/v1/sharing-key") {
    const body = request(sharingKeySetRequestSchema);
    if (body === null) return refused(400, "LK_SERVER_ERROR");
    const { publicKey } = body;
    if (server.key !== null) return refused(409, "LK_SHARING_KEY_EXISTS");
    if (!spend("vault:public-key:set")) return refused(403, "LK_STEP_UP_REQUIRED");
    server.key = { publicKey, fingerprint: await sharingKeyFingerprint(fromBase64(publicKey)) };
    server.afterWrite?.(url.pathname);
    return {
      status: 201,
      body: { ...server.key, createdAt: "2030-01-01T00:00:00.000Z", rotatedAt: null },
    };
  }
  if (seen.method === "POST" && url.pathname === "/api/v1/sharing-key/rotate") {
    const body = request(sharingKeyRotateRequestSchema);
    if (body === null) return refused(400, "LK_SERVER_ERROR");
    const { publicKey } = body;
    if (!spend("vault:public-key:rotate")) return refused(403, "LK_STEP_UP_REQUIRED");
    const previousFingerprint = server.key?.fingerprint ?? null;
    const orgs = server.impact;
    server.key = { publicKey, fingerprint: await sharingKeyFingerprint(fromBase64(publicKey)) };
    server.impact = [];
    server.afterWrite?.(url.pathname);
    return {
      status: 200,
      body: {
        ...server.key,
        previousFingerprint,
        rotated: true,
        orgs,
        wrappedKeysDeleted: orgs.reduce((n, org) => n + org.vaults.length, 0),
      },
    };
  }
  return refused(404, "LK_SERVER_ERROR");
}

/** A machine signed in to {@link SHARING_SERVER}, its fetch answered by `options.server`. */
export function sharingMachine(
  root: string,
  name: string,
  options: SharingMachineOptions = {},
): SharingMachine {
  const server = options.server ?? fakeSharingServer();
  const env = { LATCHKEY_HOME: `${root}/${name}`, LATCHKEY_SERVER: SHARING_SERVER, ...options.env };
  const session: ServerSession = {
    access_token: `at-${name}`,
    refresh_token: `rt-${name}`,
    expires_at: Date.parse("2030-01-01T00:15:00.000Z") / 1000,
    subject: options.subject ?? "user-1",
    issuer: `${SHARING_SERVER}/oidc`,
    client_id: CLI_CLIENT_ID,
  };
  const keystore = createMemoryKeystore({
    [serverAccount(SHARING_SERVER)]: JSON.stringify(session),
    ...options.stored,
  });
  const asked: string[] = [];
  const steps: string[] = [];
  // The test's own array: it may push answers after the machine is made.
  const confirms = options.confirms ?? [];
  const passwords = options.passwords === undefined ? null : [...options.passwords];
  const typed = [...(options.typed ?? [])];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const seen: SeenRequest = {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      proof: request.headers.get(STEP_UP_HEADER),
      body: await request.text(),
    };
    server.seen.push(seen);
    server.before?.(seen);
    const reply = (await server.extra?.(seen)) ?? (await answer(server, seen));
    const bytes = Buffer.from(JSON.stringify(reply.body));
    if (reply.status < 200 || reply.status > 299) {
      return new Response(bytes, { status: reply.status, headers: { "content-type": "application/json" } });
    }
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const signature = signResponse(
      token,
      {
        method: request.method,
        path: seen.path,
        requestId: request.headers.get(REQUEST_ID_HEADER) ?? "",
        status: reply.status,
      },
      bytes,
    );
    return new Response(bytes, {
      status: reply.status,
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
    });
  };
  const tty = options.tty ?? true;
  const base = createTestContext({
    env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    paths: resolvePaths(env),
    fetch,
    random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
    clock: { now: () => Date.parse("2030-01-01T00:00:00.000Z"), sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
    stdin: { isTTY: tty, readAll: () => Promise.reject(new Error("stdin is a terminal")) },
    stderrTTY: tty,
    prompts: {
      secret: (message) => {
        asked.push(message);
        if (passwords === null) return Promise.resolve(SHARING_PASSWORD);
        const next = passwords.shift();
        return next === undefined ? Promise.reject(new LatchkeyError("LK_CANCELLED")) : Promise.resolve(next);
      },
      confirm: (message) => {
        asked.push(message);
        const next = confirms.shift();
        return next === undefined
          ? Promise.reject(new Error("no confirmation expected"))
          : Promise.resolve(next);
      },
      text: (message) => {
        asked.push(message);
        const next = typed.shift();
        return next === undefined ? Promise.reject(new LatchkeyError("LK_CANCELLED")) : Promise.resolve(next);
      },
    },
  });
  const ctx = {
    ...base,
    afterRotateStep: (step: string) => {
      steps.push(step);
      options.onStep?.(step);
    },
  };
  return { ctx, keystore, server, asked, steps };
}
