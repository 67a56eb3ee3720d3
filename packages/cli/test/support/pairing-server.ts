// An in-process stand-in for the server's pairing and step-up routes (docs/pairing.md), and the sharing-key state
// route (docs/teams.md) a new machine asks about the sharing key it receives, for the CLI's pairing tests: a fetch that keeps the pairings in memory, moves them through their states as the contract says, tells
// the two machines apart by their access tokens, and signs every 2xx answer for the request that asked, as
// callApi requires. A test can step in before any request (`intercept`) to answer it otherwise. The e2e suite
// runs the same flows against the real server.
import { randomFillSync, randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  CLI_CLIENT_ID,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  STEP_UP_HEADER,
  checkSchema,
  fromBase64,
  generatePairingCode,
  pairingApproveRequestSchema,
  pairingCommitmentMatches,
  pairingCreateRequestSchema,
  pairingJoinRequestSchema,
  pairingRevealRequestSchema,
  sharingKeyFingerprint,
  toBase64,
  x25519PublicKey,
  type PairingStatus,
  type PairingView,
  type WireSchema,
} from "@latchkey/core";
import type { Prompts } from "../../src/context.js";
import { createMemoryKeystore } from "../../src/keystore/memory.js";
import type { KeystoreResolution } from "../../src/keystore/resolve.js";
import type { Keystore } from "../../src/keystore/types.js";
import { resolvePaths } from "../../src/paths.js";
import { serverAccount, type ServerSession } from "../../src/server/session.js";
import { signResponse } from "../../src/server/signature.js";
import { createTestContext } from "./context.js";

/** The fake server's URL. */
export const PAIRING_SERVER = "https://lk.pairing.example";
/** The one user both machines are signed in as. */
export const PAIRING_USER = "user-1";
const PROOF = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ2YXVsdDpwYWlyIn0.c2lnbmF0dXJl";

/** One request as the fake saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  /** The access token it carried: which machine sent it. */
  token: string;
  body: unknown;
  stepUp: string | null;
  /** What the answer's signature covers besides the status and the body. */
  signed: { method: string; path: string; requestId: string };
}

interface Row {
  view: PairingView;
  code: string;
  creator: string;
  approver: string | null;
  sealedKey: string | null;
}

/** The fake and what it saw. */
export interface FakePairingServer {
  readonly fetch: typeof fetch;
  readonly requests: SeenRequest[];
  readonly pairings: Map<string, Row>;
  /** Answers a request instead of the fake (return undefined to let it answer). */
  intercept?: (request: SeenRequest) => Promise<Response | undefined> | Response | undefined;
  /** The status of the one pairing there is (tests make one at a time). */
  status(): PairingStatus | undefined;
  /** The account's registered sharing key, as the state route answers it; null: the account has none yet. */
  sharingKey: { publicKey: string; fingerprint: string } | null;
}

/** `value` as the answer to `request`, signed for it as the server signs its 2xx answers. */
export function signedAnswer(request: SeenRequest, value: unknown, status = 200): Response {
  const bytes = Buffer.from(JSON.stringify(value));
  const signature = signResponse(request.token, { ...request.signed, status }, bytes);
  return new Response(bytes, {
    status,
    headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
  });
}

function failure(status: number, code: string): Response {
  return new Response(JSON.stringify({ error: "Error", code, message: code }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A fake server with no pairings yet. */
export function createFakePairingServer(): FakePairingServer {
  const pairings = new Map<string, Row>();
  const requests: SeenRequest[] = [];
  const fake: FakePairingServer = {
    requests,
    pairings,
    status: () => [...pairings.values()][0]?.view.status,
    sharingKey: null,
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      const path = url.pathname.replace(/^\/api\/v1/, "");
      const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
      const text = await request.text();
      // Unknown until a route checks it with its schema from core.
      const body: unknown = text === "" ? undefined : JSON.parse(text);
      const seen: SeenRequest = {
        method: request.method,
        path,
        token,
        body,
        stepUp: request.headers.get(STEP_UP_HEADER),
        signed: {
          method: request.method,
          path: `${url.pathname}${url.search}`,
          requestId: request.headers.get(REQUEST_ID_HEADER) ?? "",
        },
      };
      requests.push(seen);
      const intercepted = await fake.intercept?.(seen);
      if (intercepted !== undefined) return intercepted;
      const ok = (value: unknown, status = 200) => signedAnswer(seen, value, status);
      // What the CLI sends is checked with core's schemas, as the real server checks it: null (a 400) for a body
      // the server would refuse.
      const bodyOf = <T>(schema: WireSchema<T>): T | null => {
        const checked = checkSchema(schema, seen.body);
        return checked.ok ? checked.value : null;
      };
      const invalid = () => failure(400, "LK_SERVER_ERROR");
      const move = (row: Row, from: PairingStatus, to: PairingStatus): Response | null => {
        if (row.view.status !== from) return failure(409, "LK_PAIRING_FAILED");
        row.view.status = to;
        return null;
      };

      if (seen.method === "GET" && path === "/step-up/method") return ok({ method: "password" });
      if (seen.method === "GET" && path === "/sharing-key") {
        const key = fake.sharingKey;
        const state =
          key === null
            ? "needs-initial-set"
            : key.fingerprint === url.searchParams.get("fingerprint")
              ? "matches"
              : "rotation-required";
        return ok({ state, publicKey: key?.publicKey ?? null, fingerprint: key?.fingerprint ?? null });
      }
      if (seen.method === "POST" && path === "/step-up")
        return ok({ proof: PROOF, scope: "vault:pair", expiresAt: "2099-01-01T00:00:00.000Z" });
      if (seen.method === "POST" && path === "/pairings") {
        if (seen.stepUp !== PROOF) return failure(403, "LK_STEP_UP_REQUIRED");
        const body = bodyOf(pairingCreateRequestSchema);
        if (body === null) return invalid();
        const pairingId = randomUUID();
        const code = generatePairingCode();
        const now = new Date().toISOString();
        pairings.set(pairingId, {
          code,
          creator: token,
          approver: null,
          sealedKey: null,
          view: {
            pairingId,
            status: "pending",
            label: body.label,
            createdAt: now,
            expiresAt: new Date(Date.now() + 300_000).toISOString(),
            commitment: body.commitment,
            approverKey: null,
            newDeviceKey: null,
            nonce: null,
          },
        });
        return ok({ pairingId, code, expiresAt: pairings.get(pairingId)!.view.expiresAt }, 201);
      }
      if (seen.method === "GET" && path === "/pairings")
        return ok({
          pairings: [...pairings.values()].map(({ view }) => ({
            pairingId: view.pairingId,
            status: view.status,
            label: view.label,
            createdAt: view.createdAt,
            expiresAt: view.expiresAt,
          })),
        });
      if (seen.method === "POST" && path === "/pairings/revoke-all") {
        let revoked = 0;
        for (const row of pairings.values()) {
          if (["pending", "joined", "revealed", "approved"].includes(row.view.status)) {
            row.view.status = "revoked";
            revoked++;
          }
        }
        return ok({ revoked });
      }
      if (seen.method === "POST" && path === "/pairings/join") {
        const body = bodyOf(pairingJoinRequestSchema);
        if (body === null) return invalid();
        const row = [...pairings.values()].find((r) => r.code === body.code && r.view.status === "pending");
        if (row === undefined) return failure(404, "LK_PAIRING_NOT_FOUND");
        if (row.creator === token) return failure(409, "LK_PAIRING_FAILED");
        row.view.status = "joined";
        row.approver = token;
        row.view.approverKey = body.publicKey;
        return ok(row.view);
      }
      const match = /^\/pairings\/([^/]+)(?:\/([a-z-]+))?$/.exec(path);
      const row = match === null ? undefined : pairings.get(decodeURIComponent(match[1]!));
      if (row === undefined || (row.creator !== token && row.approver !== token))
        return failure(404, "LK_PAIRING_NOT_FOUND");
      const action = match![2];
      if (seen.method === "GET" && action === undefined) return ok(row.view);
      if (action === "reveal") {
        if (row.view.status !== "joined") return failure(409, "LK_PAIRING_FAILED");
        const body = bodyOf(pairingRevealRequestSchema);
        if (body === null) return invalid();
        const matches = await pairingCommitmentMatches(
          fromBase64(row.view.commitment),
          fromBase64(body.publicKey),
          fromBase64(body.nonce),
        );
        // Checked before the move, as one statement does on the server: nobody sees a revealed pairing without
        // its key.
        if (!matches) {
          row.view.status = "revoked";
          return failure(409, "LK_PAIRING_FAILED");
        }
        const refused = move(row, "joined", "revealed");
        if (refused) return refused;
        row.view.newDeviceKey = body.publicKey;
        row.view.nonce = body.nonce;
        return ok(row.view);
      }
      if (action === "approve") {
        const body = bodyOf(pairingApproveRequestSchema);
        if (body === null) return invalid();
        const refused = move(row, "revealed", "approved");
        if (refused) return refused;
        row.sealedKey = body.sealedKey;
        return ok(row.view);
      }
      if (action === "consume") {
        const refused = move(row, "approved", "consumed");
        if (refused) return refused;
        const sealedKey = row.sealedKey!;
        row.sealedKey = null;
        return ok({ pairingId: row.view.pairingId, sealedKey });
      }
      if (action === "revoke") {
        if (!["pending", "joined", "revealed", "approved"].includes(row.view.status))
          return failure(409, "LK_PAIRING_FAILED");
        row.view.status = "revoked";
        return ok(row.view);
      }
      return failure(404, "LK_NOT_FOUND");
    },
  };
  return fake;
}

/** What {@link pairingMachine} makes: a context on the fake, and its parts a test looks at. */
export interface PairingMachine {
  ctx: ReturnType<typeof createTestContext>;
  /** The access token its requests carry. */
  token: string;
  keystore: Keystore;
  /** Sends Ctrl-C to the machine's listeners. */
  interrupt(): void;
  /** How many Ctrl-C listeners are installed. */
  listeners(): number;
}

/** Options of {@link pairingMachine}. */
export interface PairingMachineOptions {
  /** Its access token, which tells the machines apart. */
  token: string;
  /** stdin and stderr are a terminal. */
  tty?: boolean;
  prompts?: Partial<Prompts>;
  /** Keystore entries besides the session. */
  entries?: Record<string, string>;
  hostname?: string;
  /**
   * Time stands still (a sleep passes no time on the clock, and a fiftieth of it in real time, so the other
   * machine runs): for two machines in one test, whose real speed must not decide whether a deadline passes.
   * Default: each sleep passes its time on the clock at once.
   */
  frozenClock?: boolean;
}

/**
 * A machine signed in to the fake as {@link PAIRING_USER}, with a memory keystore, a clock whose sleeps pass
 * their time at once (and yield, so two machines in one test take turns) and Ctrl-C on demand.
 */
export function pairingMachine(
  server: FakePairingServer,
  root: string,
  options: PairingMachineOptions,
): PairingMachine {
  const env = { LATCHKEY_HOME: join(root, options.token, "home"), LATCHKEY_SERVER: PAIRING_SERVER };
  let now = Date.parse("2030-01-01T00:00:00.000Z");
  const session: ServerSession = {
    access_token: options.token,
    refresh_token: `refresh-${options.token}`,
    expires_at: Math.floor(now / 1000) + 24 * 3600,
    subject: PAIRING_USER,
    issuer: `${PAIRING_SERVER}/oidc`,
    client_id: CLI_CLIENT_ID,
  };
  const keystore = createMemoryKeystore({
    [serverAccount(PAIRING_SERVER)]: JSON.stringify(session),
    ...options.entries,
  });
  const listeners = new Set<() => void>();
  const ctx = createTestContext({
    env,
    cwd: root,
    paths: resolvePaths(env),
    random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
    fetch: server.fetch,
    clock: {
      now: () => now,
      sleep: (ms) => {
        // A fiftieth of the time in real time: the other machine runs meanwhile, and a bound such as the wait for
        // a revocation still lets the fake answer first.
        if (options.frozenClock === true) return new Promise((resolve) => setTimeout(resolve, ms / 50));
        now += ms;
        return new Promise((resolve) => setImmediate(resolve));
      },
    },
    stdin: { isTTY: options.tty === true, readAll: () => Promise.resolve(new Uint8Array()) },
    stderrTTY: options.tty === true,
    prompts: {
      secret: () => Promise.reject(new Error("Unexpected call to prompts.secret")),
      confirm: () => Promise.reject(new Error("Unexpected call to prompts.confirm")),
      ...options.prompts,
    },
    platform: {
      nodeVersion: "24.0.0",
      uid: null,
      machineIdPaths: [],
      ...(options.hostname === undefined ? {} : { hostname: options.hostname }),
    },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
  });
  const withInterrupts: typeof ctx = {
    ...ctx,
    onInterrupt: (listener: () => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    ctx: withInterrupts,
    token: options.token,
    keystore,
    interrupt: () => {
      for (const listener of [...listeners]) listener();
    },
    listeners: () => listeners.size,
  };
}

/** Puts a pairing created by the machine with `token` straight into the fake, in `status`; its id. */
export function seedPairing(server: FakePairingServer, token: string, status: PairingStatus): string {
  const pairingId = randomUUID();
  server.pairings.set(pairingId, {
    code: generatePairingCode(),
    creator: token,
    approver: null,
    sealedKey: null,
    view: {
      pairingId,
      status,
      label: "seeded",
      createdAt: "2030-01-01T00:00:00.000Z",
      expiresAt: "2030-01-01T00:05:00.000Z",
      commitment: toBase64(new Uint8Array(32)),
      approverKey: null,
      newDeviceKey: null,
      nonce: null,
    },
  });
  return pairingId;
}

/** A fresh wrapping key, as the keystore holds it. */
export function wrappingKeyEntry(): string {
  return toBase64(randomFillSync(new Uint8Array(32)));
}

/** A fresh sharing key: its keystore entry (the private scalar) and its public half and fingerprint. */
export async function sharingKeyEntry(): Promise<{ entry: string; publicKey: string; fingerprint: string }> {
  const privateKey = randomFillSync(new Uint8Array(32));
  const publicKey = await x25519PublicKey(privateKey);
  return {
    entry: toBase64(privateKey),
    publicKey: toBase64(publicKey),
    fingerprint: await sharingKeyFingerprint(publicKey),
  };
}
