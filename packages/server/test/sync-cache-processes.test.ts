// The read caches (src/db/read-cache.ts: accepted tokens, pull answers) against changes they did not make: TWO
// built `latchkey-server` processes sharing one SQLite file, plus this process's own connection to it. Every
// request below first warms the cache it then tests, so an answer from a cache that missed a change would be
// caught: a revoked token accepted, or an older version pulled.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PullResponse, PushResponse } from "@latchkey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { createIdentity, type Identity } from "../src/identity/identity.js";
import { createTestUser, mintAccessToken, revokeToken, TEST_SERVER_SECRET } from "./support/identity.js";
import {
  apiHeaders,
  expectedSignature,
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startServerProcess,
  type ServerProcess,
} from "./sync-support.js";

const SIGNATURE = "x-latchkey-signature";

describe("read caches, two server processes and a third connection on one SQLite file", () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  let database: OpenDatabase;
  let identity: Identity;
  let a: ServerProcess;
  let b: ServerProcess;

  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "lk-cache-"));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    const dataDir = await tempDir();
    const publicUrl = "http://latchkey.test";
    database = await openMigrated({ dataDir });
    identity = createIdentity({ db: database.db, secret: TEST_SERVER_SECRET, publicUrl });
    const env = { LATCHKEY_SERVER_SECRET: TEST_SERVER_SECRET, PUBLIC_URL: publicUrl };
    a = await startServerProcess(dataDir, env);
    servers.push(a);
    b = await startServerProcess(dataDir, env);
    servers.push(b);
  });
  afterAll(async () => {
    for (const server of servers.splice(0)) await server.stop();
    await database?.close();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  const newToken = async (): Promise<{ userId: string; token: string }> => {
    const user = await createTestUser(database.db, `${randomUUID()}@example.test`, `pw-${randomUUID()}`);
    return { userId: user.userId, token: await mintAccessToken(identity, { userId: user.userId }) };
  };
  const me = (server: ServerProcess, token: string): Promise<Response> =>
    fetch(`${server.url}/api/v1/me`, { headers: apiHeaders(token) });
  const pull = async (server: ServerProcess, token: string, vaultId: string) => {
    const headers = apiHeaders(token);
    const path = `/api/v1/vaults/${vaultId}`;
    const response = await fetch(`${server.url}${path}`, { headers });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    // Every answer, cached or not, is signed for the token and the request that asked.
    const requestId = headers["x-latchkey-request-id"];
    expect(response.headers.get(SIGNATURE)).toBe(
      expectedSignature(token, { method: "GET", path, requestId, status: 200 }, text),
    );
    return JSON.parse(text) as PullResponse;
  };
  const push = async (server: ServerProcess, token: string, vaultId: string, baseVersion: number) => {
    const blob = await sealBlob(newVaultKey(), vaultId, baseVersion + 1, `v${baseVersion + 1}`);
    const response = await fetch(`${server.url}/api/v1/vaults/${vaultId}`, {
      method: "PUT",
      headers: { ...apiHeaders(token), "content-type": "application/json" },
      body: JSON.stringify(pushBody(blob, baseVersion)),
    });
    expect(response.status, await response.clone().text()).toBe(200);
    return ((await response.json()) as PushResponse).version;
  };

  it("refuses a token at once when a third connection revokes it", async () => {
    const { token } = await newToken();
    for (let i = 0; i < 3; i++) expect((await me(a, token)).status).toBe(200);
    await revokeToken(identity, token);
    expect((await me(a, token)).status).toBe(401);
    expect((await me(b, token)).status).toBe(401);
  });

  it("answers with the account as a third connection last changed it", async () => {
    const { userId, token } = await newToken();
    const email = async () => ((await (await me(a, token)).json()) as { email: string }).email;
    expect(await email()).toMatch(/@example\.test$/);
    await database.db
      .updateTable("users")
      .set({ email: "renamed@example.test" })
      .where("id", "=", userId)
      .execute();
    expect(await email()).toBe("renamed@example.test");
  });

  it("pulls the version another process pushed, never the one it answered before", async () => {
    const { token } = await newToken();
    const vaultId = randomUUID();
    expect(await push(a, token, vaultId, 0)).toBe(1);
    for (let version = 1; version <= 5; version++) {
      // Warm A's answer for this version, then change it through B (odd) or A itself (even).
      expect((await pull(a, token, vaultId)).version).toBe(version);
      expect((await pull(a, token, vaultId)).version).toBe(version);
      expect(await push(version % 2 === 1 ? b : a, token, vaultId, version)).toBe(version + 1);
      expect((await pull(a, token, vaultId)).version).toBe(version + 1);
      expect((await pull(b, token, vaultId)).version).toBe(version + 1);
    }
  });

  it("signs a cached answer for each token that asks, not for the one that asked first", async () => {
    const { userId, token } = await newToken();
    const second = await mintAccessToken(identity, { userId });
    const vaultId = randomUUID();
    await push(a, token, vaultId, 0);
    // pull() checks each answer's signature against the token it sent.
    for (const t of [token, second, token, second, second])
      expect((await pull(a, t, vaultId)).version).toBe(1);
  });
});
