// Shared pieces of the sync suites (sync-*.test.ts): opening a migrated database of either kind, building an app
// with the sync routes, users with tokens, sealed blobs as the CLI makes them, and the canary scanner.
import { spawn } from "node:child_process";
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { randomKey, sealEnvelope, syncBlobContext, toBase64, utf8Encode } from "@latchkey/core";
import type {
  FastifyInstance,
  FastifyServerOptions,
  LightMyRequestResponse as InjectResponse,
} from "fastify";
import type { CiIssuer } from "../src/ci/issuers.js";
import { openDatabase, type DatabaseConfig, type OpenDatabase } from "../src/db/index.js";
import { migrateToLatest } from "../src/db/migrations.js";
import type { Identity } from "../src/identity/identity.js";
import {
  buildTestApp,
  createTestUser,
  mintAccessToken,
  startTestServer,
  TEST_PUBLIC_URL,
} from "./support/identity.js";

/** Opens and migrates the database `config` names. */
export async function openMigrated(config: DatabaseConfig): Promise<OpenDatabase> {
  const database = await openDatabase(config);
  await migrateToLatest(database.db);
  return database;
}

/** A fresh X-Latchkey-Request-Id as the CLI makes one: 16 random bytes, base64url. */
export const newRequestId = (): string => randomBytes(16).toString("base64url");

/** The headers every API request carries: the bearer token and a fresh request id. */
export function apiHeaders(token: string): { authorization: string; "x-latchkey-request-id": string } {
  return { authorization: `Bearer ${token}`, "x-latchkey-request-id": newRequestId() };
}

/** What a response signature covers besides the body. */
export interface SignedAs {
  method: string;
  /** The request target as sent: path and query. */
  path: string;
  requestId: string;
  status: number;
}

/**
 * Independent check of a response signature: the signed bytes spelled out here (docs/sync-protocol.md) and
 * node:crypto, neither the server's module nor core's preamble.
 */
export function expectedSignature(token: string, request: SignedAs, body: string | Uint8Array): string {
  const key = createHash("sha256").update(token, "utf8").digest();
  const { method, path, requestId, status } = request;
  return createHmac("sha256", key)
    .update(`latchkey-sig-v2\n${method}\n${path}\n${requestId}\n${status}\n`, "utf8")
    .update(body)
    .digest("base64");
}

/** The signature the answer `res` of app.inject must carry under `token`: for the request it answered. */
export function injectedSignature(token: string, res: InjectResponse): string {
  const req = res.raw.req;
  const requestId = req.headers["x-latchkey-request-id"];
  if (typeof requestId !== "string") throw new Error("the request had no x-latchkey-request-id");
  const signed = { method: req.method ?? "", path: req.url ?? "", requestId, status: res.statusCode };
  return expectedSignature(token, signed, res.rawPayload);
}

/** A pushed blob sealed as the CLI seals it: vault key, associated data of (vault, version). */
export async function sealBlob(
  vaultKey: Uint8Array,
  vaultId: string,
  version: number,
  plaintext: string,
): Promise<string> {
  return toBase64(await sealEnvelope(vaultKey, utf8Encode(plaintext), syncBlobContext(vaultId, version)));
}

/** A fresh random vault key. */
export const newVaultKey = (): Uint8Array => randomKey();

/** An opaque wrapped key as the server sees one. */
export const fakeWrappedKey = (): string => randomBytes(60).toString("base64");

/** A push body. */
export function pushBody(
  encryptedBlob: string,
  baseVersion: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { encryptedBlob, wrappedKey: fakeWrappedKey(), name: "demo-project", baseVersion, ...extra };
}

/** A signed-in user of the suites: a real account and a real access token from the server's provider. */
export interface Caller {
  userId: string;
  email: string;
  token: string;
}

/** The real application (identity + sync) on `database`, in-process, optionally listening on a real port. */
export interface SyncServer {
  app: FastifyInstance;
  identity: Identity;
  /** The base URL when listening, else TEST_PUBLIC_URL. */
  url: string;
  /** A new account with a fresh valid access token. */
  caller(email?: string): Promise<Caller>;
  /** Another access token for an existing account (expired with `expiresInSeconds: 0`). */
  token(userId: string, expiresInSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

/** Builds the real app (test/support/identity.ts) on a migrated database. */
export async function startSyncServer(
  database: OpenDatabase,
  options: {
    listen?: boolean;
    logger?: FastifyServerOptions["logger"];
    ciIssuers?: readonly CiIssuer[];
  } = {},
): Promise<SyncServer> {
  const appOptions = {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.ciIssuers === undefined ? {} : { ciIssuers: options.ciIssuers }),
  };
  let app: FastifyInstance;
  let identity: Identity;
  let url: string;
  if (options.listen) {
    ({ app, identity, url } = await startTestServer({ db: database.db, ...appOptions }));
  } else {
    ({ app, identity } = buildTestApp({ db: database.db, ...appOptions }));
    url = TEST_PUBLIC_URL;
    await app.ready();
  }
  const token = (userId: string, expiresInSeconds?: number): Promise<string> =>
    mintAccessToken(identity, { userId, ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }) });
  return {
    app,
    identity,
    url,
    token,
    async caller(email = `${randomUUID()}@example.test`): Promise<Caller> {
      const user = await createTestUser(database.db, email, `pw-${randomUUID()}`);
      return { userId: user.userId, email: user.email, token: await token(user.userId) };
    },
    close: () => app.close(),
  };
}

/** The spellings of `canary` the canary suite looks for: raw, base64 (every alignment), hex. */
export function canaryNeedles(canary: string): Buffer[] {
  const raw = Buffer.from(canary, "utf8");
  const needles = [raw, Buffer.from(raw.toString("hex")), Buffer.from(raw.toString("hex").toUpperCase())];
  // Base64 of the canary inside a longer text depends on where it starts modulo 3; the characters that encode
  // only canary bytes are stable for each alignment.
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), raw]).toString("base64");
    const start = shift === 0 ? 0 : 4;
    const stable = encoded.slice(start, encoded.length - 4);
    needles.push(Buffer.from(stable));
    needles.push(Buffer.from(stable.replace(/\+/g, "-").replace(/\//g, "_")));
  }
  return needles;
}

/** How many times any spelling of the canary occurs in `haystack`. */
export function countCanary(haystack: Buffer, needles: readonly Buffer[]): number {
  let count = 0;
  for (const needle of needles) {
    let at = haystack.indexOf(needle);
    while (at !== -1) {
      count++;
      at = haystack.indexOf(needle, at + 1);
    }
  }
  return count;
}

/** A built `latchkey-server` process (needs `npm run build`). */
export interface ServerProcess {
  /** http://127.0.0.1:PORT, from the `server.listening` log line. */
  readonly url: string;
  /** Everything it wrote to stdout and stderr so far (JSON log lines). */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

const SERVER_BIN = fileURLToPath(new URL("../bin/latchkey-server.mjs", import.meta.url));

/** Starts the built server process on a free loopback port. */
export async function startServerProcess(
  dataDir: string,
  env: Record<string, string>,
): Promise<ServerProcess> {
  if (!existsSync(fileURLToPath(new URL("../dist/main.mjs", import.meta.url)))) {
    throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
  }
  const child = spawn(process.execPath, [SERVER_BIN, "--port", "0", "--data-dir", dataDir], {
    env: { PATH: process.env.PATH ?? "", LANG: "C.UTF-8", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      output += d;
      for (const line of output.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const entry: unknown = JSON.parse(line);
          if (isListeningLine(entry)) resolve(entry.port);
        } catch {
          // a line still being written
        }
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    void exited.then((code) =>
      reject(new Error(`latchkey-server exited (${code}) before listening: ${output}`)),
    );
  });
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** True for the JSON log line a server writes once it listens, `{"event":"server.listening","port":N}`. */
function isListeningLine(entry: unknown): entry is { event: "server.listening"; port: number } {
  if (typeof entry !== "object" || entry === null) return false;
  const { event, port } = entry as Record<string, unknown>;
  return event === "server.listening" && typeof port === "number";
}
