import { randomBytes } from "node:crypto";
import { chmod, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fromBase64,
  randomKey,
  sealEnvelope,
  sharingKeyFingerprint,
  syncBlobContext,
  toBase64,
  utf8Encode,
  wrapKeyForRecipient,
  x25519PublicKey,
} from "@latchkey/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "./db/index.js";
import { migrateToLatest } from "./db/migrations.js";
import {
  ESCROW_KEY_FILE,
  escrowKeyFrom,
  loadEscrowKey,
  openWithEscrow,
  recordEscrowKey,
} from "./escrow-key.js";

let dir: string;
const random = (n: number) => new Uint8Array(randomBytes(n));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latchkey-escrow-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadEscrowKey", () => {
  it("generates a key pair once into escrow.key with mode 0600 whatever the umask, then reuses it", async () => {
    const old = process.umask(0o000);
    let first;
    try {
      first = await loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random });
    } finally {
      process.umask(old);
    }
    expect(first.source).toBe("file-created");
    expect((await stat(join(dir, ESCROW_KEY_FILE))).mode & 0o777).toBe(0o600);
    const file = (await readFile(join(dir, ESCROW_KEY_FILE), "utf8")).trim();
    expect(fromBase64(file)).toEqual(first.key.privateKey);
    expect(first.key.publicKey).toEqual(await x25519PublicKey(first.key.privateKey));
    expect(first.key.fingerprint).toBe(await sharingKeyFingerprint(first.key.publicKey));
    const second = await loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random });
    expect(second.source).toBe("file");
    expect(second.key).toEqual(first.key);
  });

  it("gives every concurrent first start the same key", async () => {
    const keys = await Promise.all(
      Array.from({ length: 6 }, () => loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random })),
    );
    expect(new Set(keys.map((k) => k.key.fingerprint)).size).toBe(1);
    expect(keys.filter((k) => k.source === "file-created")).toHaveLength(1);
  });

  it("takes LATCHKEY_ESCROW_KEY over the file and writes nothing", async () => {
    const privateKey = random(32);
    const loaded = await loadEscrowKey({
      env: { LATCHKEY_ESCROW_KEY: toBase64(privateKey) },
      dataDir: dir,
      randomBytes: random,
    });
    expect(loaded.source).toBe("env");
    expect(loaded.key).toEqual(await escrowKeyFrom(privateKey));
    await expect(stat(join(dir, ESCROW_KEY_FILE))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses a LATCHKEY_ESCROW_KEY that is not 32 bytes of standard base64, without echoing it", async () => {
    for (const bad of [toBase64(random(31)), Buffer.from(random(32)).toString("base64url"), "not a key"]) {
      const err = await loadEscrowKey({
        env: { LATCHKEY_ESCROW_KEY: bad },
        dataDir: dir,
        randomBytes: random,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "LK_CONFIG_INVALID" });
      expect(String((err as Error).message)).not.toContain(bad);
    }
  });

  it("refuses an escrow.key other users can read, a symbolic link, and one that holds no key", async () => {
    const path = join(dir, ESCROW_KEY_FILE);
    await writeFile(path, `${toBase64(random(32))}\n`);
    await chmod(path, 0o644);
    await expect(loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random })).rejects.toMatchObject({
      code: "LK_FILE_PERMISSIONS",
    });
    await rm(path);
    await writeFile(join(dir, "elsewhere"), toBase64(random(32)), { mode: 0o600 });
    await symlink(join(dir, "elsewhere"), path);
    await expect(loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random })).rejects.toMatchObject({
      code: "LK_FILE_SYMLINK",
    });
    await rm(path);
    await writeFile(path, "truncated", { mode: 0o600 });
    await expect(loadEscrowKey({ env: {}, dataDir: dir, randomBytes: random })).rejects.toMatchObject({
      code: "LK_FILE_IO",
    });
  });
});

describe("recordEscrowKey", () => {
  let database: OpenDatabase;
  beforeEach(async () => {
    database = await openDatabase({ dataDir: dir });
    await migrateToLatest(database.db);
  });
  afterEach(async () => {
    await database.close();
  });

  it("records the first key and refuses another with a message that says what to do", async () => {
    const first = await escrowKeyFrom(random(32));
    await recordEscrowKey(database.db, first);
    await recordEscrowKey(database.db, first);
    const other = await escrowKeyFrom(random(32));
    const err = await recordEscrowKey(database.db, other).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "LK_CONFIG_INVALID",
      message: expect.stringContaining("every process must use the same LATCHKEY_ESCROW_KEY"),
      hint: expect.stringContaining("docs/ci.md"),
    });
  });
});

describe("openWithEscrow", () => {
  it("opens a blob with the escrowed vault key, and answers null for another key, blob or context", async () => {
    const key = await escrowKeyFrom(random(32));
    const vaultKey = randomKey();
    const vaultId = crypto.randomUUID();
    const blob = await sealEnvelope(vaultKey, utf8Encode("{}"), syncBlobContext(vaultId, 3));
    const escrowed = await wrapKeyForRecipient(vaultKey, key.publicKey);
    expect(await openWithEscrow(key, escrowed, blob, syncBlobContext(vaultId, 3))).toEqual(utf8Encode("{}"));
    expect(await openWithEscrow(key, escrowed, blob, syncBlobContext(vaultId, 4))).toBeNull();
    expect(await openWithEscrow(key, escrowed, blob, syncBlobContext(vaultId, 3, "acme"))).toBeNull();
    const otherKey = await escrowKeyFrom(random(32));
    expect(await openWithEscrow(otherKey, escrowed, blob, syncBlobContext(vaultId, 3))).toBeNull();
    const forOther = await wrapKeyForRecipient(randomKey(), key.publicKey);
    expect(await openWithEscrow(key, forOther, blob, syncBlobContext(vaultId, 3))).toBeNull();
    expect(await openWithEscrow(key, "not:a:wrap", blob, syncBlobContext(vaultId, 3))).toBeNull();
  });
});
