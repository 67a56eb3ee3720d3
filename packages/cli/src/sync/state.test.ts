import { randomFillSync } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { getSyncEntry, listSyncEntries, readSyncBase, recordSync, syncDir, writeSyncBase } from "./state.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
async function home(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lk-sync-state-"));
  dirs.push(dir);
  return join(dir, "latchkey");
}
const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
const S = "http://127.0.0.1:8787";
const V = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

describe("sync state", () => {
  it("keeps the highest version seen per (server, user, vault) in a 0600 file, never lowering it", async () => {
    const h = await home();
    expect(await getSyncEntry(h, S, "u1", V)).toBeNull();
    await recordSync(h, S, "u1", V, 3);
    await recordSync(h, S, "u1", V, 5);
    const lowered = await recordSync(h, S, "u1", V, 4);
    expect(lowered).toMatchObject({ highestVersion: 5, syncedVersion: 4 });
    await recordSync(h, S, "u2", V, 1);
    await recordSync(h, "http://127.0.0.1:9999", "u1", V, 7);
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ highestVersion: 5, syncedVersion: 4 });
    expect(await listSyncEntries(h)).toHaveLength(3);
    expect((await stat(join(syncDir(h), "state.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(syncDir(h))).mode & 0o777).toBe(0o700);
  });

  it("finds an entry recorded under another spelling of its vault id, and records it in lower case", async () => {
    const h = await home();
    await recordSync(h, S, "u1", V, 1);
    // As a CLI that kept latchkey.json's spelling recorded it: its anti-rollback record must still count.
    const upper = { server: S, userId: "u1", vaultId: V.toUpperCase(), highestVersion: 4, syncedVersion: 4 };
    await writeFile(join(syncDir(h), "state.json"), JSON.stringify({ format: 1, entries: [upper] }));
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ highestVersion: 4 });
    await recordSync(h, S, "u1", V, 5);
    expect(await listSyncEntries(h)).toEqual([
      { server: S, userId: "u1", vaultId: V, highestVersion: 5, syncedVersion: 5 },
    ]);
  });

  it("concurrent records from several processes' worth of calls keep every entry", async () => {
    const h = await home();
    await Promise.all(Array.from({ length: 16 }, (_, i) => recordSync(h, S, "u", `vault-${i}`, i + 1)));
    expect((await listSyncEntries(h)).map((e) => e.vaultId).sort()).toHaveLength(16);
  });

  it("refuses a state file that is not its own format", async () => {
    const h = await home();
    await recordSync(h, S, "u", V, 1);
    await writeFile(join(syncDir(h), "state.json"), '{"format":1,"entries":[{"server":1}]}');
    await expect(getSyncEntry(h, S, "u", V)).rejects.toMatchObject({ code: "LK_STORE_CORRUPT" });
  });

  it("keeps the merge base sealed with the vault key: another key or vault reads as no base", async () => {
    const h = await home();
    const key = random.bytes(32);
    const base = { server: S, userId: "u", version: 2, document: { default: { CANARY: "value-xyz" } } };
    await writeSyncBase(h, V, key, base, random);
    expect(await readSyncBase(h, V, key)).toEqual(base);
    expect(await readSyncBase(h, V, random.bytes(32))).toBeNull();
    expect(await readSyncBase(h, "other", key)).toBeNull();
    const file = join(syncDir(h), `${V}.base.enc`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
