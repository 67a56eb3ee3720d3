import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { keystoreContract } from "./contract.js";
import { createFileKeystore, type FileStoreOptions } from "./file-store.js";

const dirs: string[] = [];
const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
// Tests use a small Argon2id cost; the real default is exercised by the CLI process tests.
const cheapArgon2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

async function tempHome(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lk-filestore-"));
  dirs.push(dir);
  return join(dir, "home");
}

function options(home: string, extra: Partial<FileStoreOptions> = {}): FileStoreOptions {
  return {
    home,
    store: join(home, "store.enc"),
    storeKey: join(home, "store.key"),
    machineIdPaths: ["/etc/machine-id"],
    random,
    argon2: cheapArgon2,
    ...extra,
  };
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

keystoreContract("file store (machine-bound key)", async () => createFileKeystore(options(await tempHome())));
keystoreContract("file store (passphrase)", async () =>
  createFileKeystore(options(await tempHome(), { passphrase: "correct horse battery staple" })),
);

describe("file store", () => {
  it("writes store.enc and store.key 0600 in a 0700 home, with no plaintext", async () => {
    const home = await tempHome();
    const store = createFileKeystore(options(home));
    const canary = "CANARY-plaintext-must-not-appear-9f3a";
    await store.set("canary-account", canary);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    for (const name of await readdir(home)) {
      const path = join(home, name);
      expect((await stat(path)).mode & 0o777, name).toBe(0o600);
      const bytes = await readFile(path);
      expect(bytes.includes(Buffer.from(canary)), name).toBe(false);
      expect(bytes.includes(Buffer.from("canary-account")), name).toBe(false);
    }
    expect(await store.describe()).toEqual({ exists: true, protection: "machine-key" });
  });

  it("refuses a wrong passphrase with LK_STORE_DECRYPT_FAILED and never overwrites the file", async () => {
    const home = await tempHome();
    await createFileKeystore(options(home, { passphrase: "right" })).set("a", "1");
    const before = await readFile(join(home, "store.enc"));
    const wrong = createFileKeystore(options(home, { passphrase: "wrong" }));
    await expect(wrong.get("a")).rejects.toMatchObject({ code: "LK_STORE_DECRYPT_FAILED" });
    await expect(wrong.set("b", "2")).rejects.toMatchObject({ code: "LK_STORE_DECRYPT_FAILED" });
    expect(await readFile(join(home, "store.enc"))).toEqual(before);
    expect(await createFileKeystore(options(home, { passphrase: "right" })).get("a")).toBe("1");
  });

  it("asks for the passphrase when the store has one and none is given", async () => {
    const home = await tempHome();
    await createFileKeystore(options(home, { passphrase: "pw" })).set("a", "1");
    const error = await createFileKeystore(options(home))
      .get("a")
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LK_STORE_DECRYPT_FAILED" });
    expect((error as Error & { hint: string }).hint).toContain("LATCHKEY_PASSPHRASE");
  });

  it("upgrades a machine-bound store to the passphrase on the next write", async () => {
    const home = await tempHome();
    await createFileKeystore(options(home)).set("a", "1");
    const withPassphrase = createFileKeystore(options(home, { passphrase: "pw" }));
    await withPassphrase.set("b", "2");
    expect(await withPassphrase.describe()).toEqual({ exists: true, protection: "passphrase" });
    expect(await withPassphrase.list()).toEqual(["a", "b"]);
  });

  it("reports tampering as a decrypt failure and a foreign file as corrupt, leaving both untouched", async () => {
    const home = await tempHome();
    const store = createFileKeystore(options(home));
    await store.set("a", "1");
    const path = join(home, "store.enc");
    const bytes = await readFile(path);
    bytes[bytes.length - 1]! ^= 0x01;
    await writeFile(path, bytes, { mode: 0o600 });
    await expect(createFileKeystore(options(home)).get("a")).rejects.toMatchObject({
      code: "LK_STORE_DECRYPT_FAILED",
    });
    await writeFile(path, "not a store", { mode: 0o600 });
    await expect(createFileKeystore(options(home)).get("a")).rejects.toMatchObject({
      code: "LK_STORE_CORRUPT",
    });
    await expect(createFileKeystore(options(home)).set("a", "2")).rejects.toMatchObject({
      code: "LK_STORE_CORRUPT",
    });
    expect(await readFile(path, "utf8")).toBe("not a store");
  });

  it("cannot be opened with another machine id (the key file alone is not enough)", async () => {
    const home = await tempHome();
    await createFileKeystore(options(home)).set("a", "1");
    const otherId = join(home, "..", "other-machine-id");
    await writeFile(otherId, "0123456789abcdef0123456789abcdef\n");
    await expect(
      createFileKeystore(options(home, { machineIdPaths: [otherId] })).get("a"),
    ).rejects.toMatchObject({
      code: "LK_STORE_DECRYPT_FAILED",
    });
  });

  it("names the missing key file instead of failing opaquely", async () => {
    const home = await tempHome();
    await createFileKeystore(options(home)).set("a", "1");
    await rm(join(home, "store.key"));
    await expect(createFileKeystore(options(home)).get("a")).rejects.toThrow(/store\.key/);
  });

  it("fails clearly without a machine id", async () => {
    const home = await tempHome();
    const store = createFileKeystore(options(home, { machineIdPaths: [join(home, "..", "no-such-id")] }));
    await expect(store.set("a", "1")).rejects.toMatchObject({ code: "LK_MACHINE_ID_MISSING" });
  });

  it("destroy() removes the store and its key", async () => {
    const home = await tempHome();
    const store = createFileKeystore(options(home));
    await store.set("a", "1");
    await store.destroy();
    expect((await readdir(home)).filter((n) => !n.endsWith(".lock"))).toEqual([]);
    expect(await store.describe()).toEqual({ exists: false, protection: null });
  });
});
