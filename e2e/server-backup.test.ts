// `latchkey-server admin backup` and `admin restore` as an operator runs them, on both databases: the built server
// takes 100 pushes, then the built admin command backs it up while 8 clients keep pushing; the backup is restored
// into a fresh data directory (and, on PostgreSQL, a fresh database) and a server started on it. Every version
// acknowledged before the backup command started must be there — the head pullable with a valid response
// signature, its history and audit rows — and the copy must be one consistent instant: no vault's history has a
// gap or a row without its audit row. Pushes acknowledged after the backup finished are not required (and those
// that started after it are asserted absent: the backup really was taken under load, not after it).
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  apiErrorBodySchema,
  backupManifestSchema,
  pullResponseSchema,
  pushResponseSchema,
  toBase64,
} from "@latchkey/core";
import { afterAll, expect, it } from "vitest";
import { openDatabase, type DatabaseConfig } from "../packages/server/src/db/index.js";
import { MIGRATIONS } from "../packages/server/src/db/migrations.js";
import { createIdentity } from "../packages/server/src/identity/identity.js";
import { listVersions } from "../packages/server/src/sync/data.js";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import {
  createTestUser,
  mintAccessToken,
  TEST_ESCROW_KEY,
  TEST_SERVER_SECRET,
} from "../packages/server/test/support/identity.js";
import {
  apiHeaders,
  expectedSignature,
  fakeWrappedKey,
  openMigrated,
} from "../packages/server/test/sync-support.js";
import { runServerAdmin, startLatchkeyServer, type LatchkeyServer } from "./support/latchkey-server.js";

/** Versions pushed before the clients start. */
const FIRST_PUSHES = 100;
/** Clients pushing while the backup runs, each on its own vault (client 0 continues the first vault). */
const CLIENTS = 8;
/** Pushes each client must have acknowledged, started after the backup finished, before the clients stop. */
const PUSHES_AFTER = 2;

const PUBLIC_URL = "http://latchkey.test";
const ALL = Object.keys(MIGRATIONS).sort();

/** One acknowledged push. */
interface Ack {
  version: number;
  blob: string;
  sha256: string;
}

const servers: LatchkeyServer[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const server of servers.splice(0)) await server.stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * Where the test reaches `server`: its loopback port. Its url is PUBLIC_URL, the issuer the tokens were minted for,
 * which both the original and the restored server share.
 */
function loopback(server: LatchkeyServer): string {
  const line = server.logLines().find((l) => l.event === "server.listening");
  return `http://127.0.0.1:${String(line?.port)}`;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** One versioned push of a fresh random blob; the ack (its signature checked) or null on a 409. */
async function push(url: string, token: string, vaultId: string, base: number): Promise<Ack | null> {
  const path = `/api/v1/vaults/${vaultId}`;
  const blob = randomBytes(64).toString("base64");
  const headers = apiHeaders(token);
  const response = await fetch(`${url}${path}`, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({
      encryptedBlob: blob,
      wrappedKey: fakeWrappedKey(),
      name: "backup",
      baseVersion: base,
    }),
  });
  const text = await response.text();
  if (response.status === 409) {
    expect(apiErrorBodySchema.parse(JSON.parse(text)).code).toBe("LK_VAULT_CONFLICT");
    return null;
  }
  if (response.status !== 200) throw new Error(`push ${vaultId} on ${base}: ${response.status} ${text}`);
  const requestId = headers["x-latchkey-request-id"];
  expect(response.headers.get("x-latchkey-signature")).toBe(
    expectedSignature(token, { method: "PUT", path, requestId, status: 200 }, text),
  );
  const { version } = pushResponseSchema.parse(JSON.parse(text));
  expect(version).toBe(base + 1);
  return { version, blob, sha256: createHash("sha256").update(blob, "base64").digest("hex") };
}

/** The head pulled from `url`, its response signature checked. */
async function pull(url: string, token: string, vaultId: string): Promise<{ version: number; blob: string }> {
  const path = `/api/v1/vaults/${vaultId}`;
  const headers = apiHeaders(token);
  const response = await fetch(`${url}${path}`, { headers });
  const text = await response.text();
  expect(response.status, text).toBe(200);
  const requestId = headers["x-latchkey-request-id"];
  expect(response.headers.get("x-latchkey-signature")).toBe(
    expectedSignature(token, { method: "GET", path, requestId, status: 200 }, text),
  );
  const body = pullResponseSchema.parse(JSON.parse(text));
  return { version: body.version, blob: body.encryptedBlob };
}

describeEachDatabase("admin backup under load, restored into a fresh database", (target) => {
  it(`keeps every version acknowledged before the backup of ${FIRST_PUSHES} + ${CLIENTS} pushing clients`, async () => {
    const source = await target.fresh();
    // The account and its token are written by the server's own identity code before the process starts.
    const setup = await openMigrated(source);
    let token: string;
    let userId: string;
    try {
      const identity = createIdentity({ db: setup.db, secret: TEST_SERVER_SECRET, publicUrl: PUBLIC_URL });
      ({ userId } = await createTestUser(setup.db, "backup@example.test", `pw-${randomUUID()}`));
      token = await mintAccessToken(identity, { userId });
    } finally {
      await setup.close();
    }
    const server = await startLatchkeyServer({
      dataDir: source.dataDir,
      ...(source.databaseUrl ? { databaseUrl: source.databaseUrl } : {}),
      secret: TEST_SERVER_SECRET,
      env: { LATCHKEY_ESCROW_KEY: toBase64(TEST_ESCROW_KEY.privateKey), PUBLIC_URL },
    });
    servers.push(server);
    const url = loopback(server);

    const vaults = Array.from({ length: CLIENTS }, () => randomUUID());
    const acked = new Map<string, Map<number, Ack>>(vaults.map((v) => [v, new Map()]));
    const highest = (vaultId: string): number => Math.max(0, ...acked.get(vaultId)!.keys());
    for (let i = 0; i < FIRST_PUSHES; i++) {
      const ack = await push(url, token, vaults[0]!, i);
      acked.get(vaults[0]!)!.set(ack!.version, ack!);
    }

    // The clients: each pushes on its own vault until told to stop, counting the pushes it began after the backup.
    let backupDone = false;
    let stop = false;
    const after = new Array<number>(CLIENTS).fill(0);
    const failures: Error[] = [];
    const clients = vaults.map(async (vaultId, c) => {
      try {
        while (!stop) {
          const startedAfter = backupDone;
          const ack = await push(url, token, vaultId, highest(vaultId));
          if (ack === null) throw new Error(`client ${c} met a conflict on its own vault`);
          acked.get(vaultId)!.set(ack.version, ack);
          if (startedAfter) after[c]!++;
        }
      } catch (err) {
        failures.push(err instanceof Error ? err : new Error(String(err)));
        stop = true;
      }
    });
    /** Polls `done` every 20 ms until it holds; a client's failure ends the wait with that failure. */
    const until = async (done: () => boolean): Promise<void> => {
      while (!done()) {
        if (failures[0]) throw failures[0];
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const totalAcks = (): number => [...acked.values()].reduce((n, m) => n + m.size, 0);
    // Every client is under way before the backup starts.
    await until(() => vaults.every((v, c) => highest(v) >= (c === 0 ? FIRST_PUSHES : 0) + 2));

    const point = new Map(vaults.map((v) => [v, highest(v)]));
    const acksAtStart = totalAcks();
    const file = join(await tempDir("lk-backup-"), "latchkey.backup");
    const backup = await runServerAdmin(server, ["backup", file, "--include-secret"]);
    expect(backup.code, backup.stderr).toBe(0);
    const acksDuring = totalAcks() - acksAtStart;
    backupDone = true;
    await until(() => after.every((n) => n >= PUSHES_AFTER));
    stop = true;
    await Promise.all(clients);
    if (failures[0]) throw failures[0];
    await server.stop();
    console.log(
      `[server-backup] ${target.kind}: ${acksAtStart} pushes acknowledged before the backup, ${acksDuring} during it, ` +
        `${totalAcks()} in all`,
    );
    // The clients kept pushing while the backup ran.
    expect(acksDuring).toBeGreaterThan(0);

    for (const path of [file, `${file}.manifest.json`, `${file}.secrets.json`]) {
      expect((await stat(path)).mode & 0o777).toBe(0o600);
    }
    const manifest = backupManifestSchema.parse(JSON.parse(await readFile(`${file}.manifest.json`, "utf8")));
    expect(manifest).toMatchObject({ database: target.kind, migrations: ALL, includesSecrets: true });

    // The restore: a fresh data directory (and database), the secrets from the backup's secrets file only.
    const restored: DatabaseConfig = {
      dataDir: await tempDir("lk-restored-"),
      ...(target.kind === "postgres" ? { databaseUrl: await target.cluster()!.createDatabase() } : {}),
    };
    const restore = await runServerAdmin({ dataDir: restored.dataDir, env: target.env(restored) }, [
      "restore",
      file,
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    const again = await startLatchkeyServer({
      dataDir: restored.dataDir,
      ...(restored.databaseUrl ? { databaseUrl: restored.databaseUrl } : {}),
      // Empty is unset: the restored server reads DATA_DIR/server-secret and escrow.key, as restore wrote them.
      env: { LATCHKEY_SERVER_SECRET: "", LATCHKEY_ESCROW_KEY: "", PUBLIC_URL },
    });
    servers.push(again);

    const database = await openDatabase(restored);
    try {
      for (const vaultId of vaults) {
        const pushed = acked.get(vaultId)!;
        const head = await pull(loopback(again), token, vaultId);
        // Everything acknowledged before the backup started is there; what began after it finished is not.
        expect(head.version).toBeGreaterThanOrEqual(point.get(vaultId)!);
        expect(head.version).toBeLessThanOrEqual(highest(vaultId) - PUSHES_AFTER);
        expect(head.blob).toBe(pushed.get(head.version)!.blob);
        // One instant: versions 1..head, each with the blob that was acknowledged, each with its audit row.
        const history = await listVersions(database.db, vaultId, userId);
        expect(history.map((h) => [h.version, h.blobSha256])).toEqual(
          Array.from({ length: head.version }, (_, i) => [i + 1, pushed.get(i + 1)!.sha256]),
        );
        const audits = await database.db
          .selectFrom("audit_events")
          .select("version")
          .where("vault_id", "=", vaultId)
          .where("action", "=", "vault.push")
          .orderBy("version")
          .execute();
        expect(audits.map((a) => Number(a.version))).toEqual(
          Array.from({ length: head.version }, (_, i) => i + 1),
        );
      }
    } finally {
      await database.close();
    }
  }, 240_000);
});
