// The writer thread (src/sync/writer-thread.ts) with the BUILT worker (dist/sync-writer.mjs, as the server bin runs
// it; needs `npm run build`): outcomes come back as the in-thread service gives them, commits are visible to the
// main connection at once, errors keep their message and code, and a closed writer refuses further writes.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, SQLITE_FILE, type OpenDatabase } from "../src/db/index.js";
import { dataVersionOf } from "../src/db/index.js";
import { listVersions } from "../src/sync/data.js";
import type { ValidPush } from "../src/sync/service.js";
import { startWriterThread, type ThreadWriter } from "../src/sync/writer-thread.js";
import { createTestUser } from "./support/identity.js";
import { fakeWrappedKey, openMigrated } from "./sync-support.js";

const WORKER = new URL("../dist/sync-writer.mjs", import.meta.url);

function validPush(baseVersion: number): ValidPush {
  const blobBytes = Buffer.from(`blob ${randomUUID()}`);
  return {
    encryptedBlob: blobBytes.toString("base64"),
    blobBytes,
    wrappedKey: fakeWrappedKey(),
    schema: undefined,
    name: "demo",
    baseVersion,
  };
}

describe("the sync writer thread", () => {
  let dir: string;
  let database: OpenDatabase | undefined;
  let writer: ThreadWriter | undefined;

  beforeEach(async () => {
    if (!existsSync(fileURLToPath(WORKER)))
      throw new Error("packages/server/dist is missing: run `npm run build`");
    dir = await mkdtemp(join(tmpdir(), "lk-writer-thread-"));
  });
  afterEach(async () => {
    await writer?.close();
    await database?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("pushes as the service does, visible to the main connection as soon as the answer arrives", async () => {
    database = await openMigrated({ dataDir: dir });
    const user = await createTestUser(database.db, "writer@example.test", `pw-${randomUUID()}`);
    writer = startWriterThread(WORKER, join(dir, SQLITE_FILE));
    const actor = { userId: user.userId, clientId: "latchkey-cli" };
    const vaultId = randomUUID();
    const version = dataVersionOf(database.db)!;
    const before = version();

    const first = await writer.push(actor, vaultId, validPush(0));
    expect(first).toMatchObject({ kind: "pushed", version: 1 });
    expect(version()).not.toBe(before);
    expect(await writer.push(actor, vaultId, validPush(0))).toEqual({ kind: "conflict", currentVersion: 1 });
    const concurrent = await Promise.all(
      Array.from({ length: 20 }, () => writer!.push(actor, vaultId, validPush(1))),
    );
    expect(concurrent.filter((o) => o.kind === "pushed")).toHaveLength(1);
    expect(concurrent.filter((o) => o.kind === "conflict")).toHaveLength(19);
    expect((await listVersions(database.db, vaultId, user.userId)).map((v) => v.version)).toEqual([1, 2]);
    expect(await writer.rewrap(actor, vaultId, { wrappedKey: fakeWrappedKey(), version: 2 })).toEqual({
      kind: "rewrapped",
      version: 2,
    });
    const stranger = { userId: randomUUID(), clientId: "latchkey-cli" };
    expect(await writer.push(stranger, vaultId, validPush(2))).toEqual({ kind: "not-found" });
  });

  it("rejects with the thread's error, message and code kept, and refuses writes once closed", async () => {
    // A file without the schema: the service's first statement fails inside the thread.
    database = await openDatabase({ dataDir: dir });
    writer = startWriterThread(WORKER, join(dir, SQLITE_FILE));
    const actor = { userId: randomUUID(), clientId: "latchkey-cli" };
    const failure = await writer.push(actor, randomUUID(), validPush(0)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Error);
    // The data layer's own error, and SQLite's beneath it, as the failure log of the route describes them.
    expect((failure as Error).message).toMatch(/^database: /);
    const cause = (failure as Error).cause as Error & { code?: string };
    expect(cause.message).toMatch(/no such table/);
    expect(cause.code).toBe("ERR_SQLITE_ERROR");
    await writer.close();
    await expect(writer.push(actor, randomUUID(), validPush(0))).rejects.toThrow(/closed/);
  });
});
