import { randomFillSync } from "node:crypto";
import { copyFile, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  getSyncEntry,
  listSyncEntries,
  readSyncBase,
  recordKeyVersion,
  recordSync,
  syncDir,
  writeSyncBase,
} from "./state.js";

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
const T = Date.parse("2030-01-01T00:00:00.000Z");

describe("sync state", () => {
  it("keeps the highest version seen per (server, user, vault) in a 0600 file, never lowering it", async () => {
    const h = await home();
    expect(await getSyncEntry(h, S, "u1", V)).toBeNull();
    await recordSync(h, S, "u1", V, 3, T);
    await recordSync(h, S, "u1", V, 5, T);
    const lowered = await recordSync(h, S, "u1", V, 4, T);
    expect(lowered).toMatchObject({ highestVersion: 5, syncedVersion: 4 });
    await recordSync(h, S, "u2", V, 1, T);
    await recordSync(h, "http://127.0.0.1:9999", "u1", V, 7, T);
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ highestVersion: 5, syncedVersion: 4 });
    expect(await listSyncEntries(h)).toHaveLength(3);
    expect((await stat(join(syncDir(h), "state.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(syncDir(h))).mode & 0o777).toBe(0o700);
  });

  it("keeps an organisation copy's highest key version beside its versions, never lowering it", async () => {
    const h = await home();
    // A rotation on a machine with no record of the copy has nothing to attach its key version to.
    await recordKeyVersion(h, S, "u1", V, "acme", 2);
    expect(await getSyncEntry(h, S, "u1", V, "acme")).toBeNull();
    await recordSync(h, S, "u1", V, 3, T, "acme", 3);
    // A push makes no key: the key version stays.
    expect(await recordSync(h, S, "u1", V, 4, T, "acme")).toMatchObject({ highestKeyVersion: 3 });
    await recordKeyVersion(h, S, "u1", V, "acme", 5);
    await recordKeyVersion(h, S, "u1", V, "acme", 4);
    expect(await recordSync(h, S, "u1", V, 5, T, "acme", 2)).toMatchObject({
      highestVersion: 5,
      syncedVersion: 5,
      highestKeyVersion: 5,
    });
    // The personal copy's entry has none.
    expect(await recordSync(h, S, "u1", V, 1, T)).not.toHaveProperty("highestKeyVersion");
  });

  it("finds an entry recorded under another spelling of its vault id, and records it in lower case", async () => {
    const h = await home();
    await recordSync(h, S, "u1", V, 1, T);
    // As a CLI that kept latchkey.json's spelling recorded it: its anti-rollback record must still count.
    const upper = { server: S, userId: "u1", vaultId: V.toUpperCase(), highestVersion: 4, syncedVersion: 4 };
    await writeFile(join(syncDir(h), "state.json"), JSON.stringify({ format: 1, entries: [upper] }));
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ highestVersion: 4 });
    await recordSync(h, S, "u1", V, 5, T);
    expect(await listSyncEntries(h)).toEqual([
      {
        server: S,
        userId: "u1",
        vaultId: V,
        highestVersion: 5,
        syncedVersion: 5,
        syncedAt: "2030-01-01T00:00:00.000Z",
      },
    ]);
  });

  it("records when each sync happened, per entry; a recorded time that is no date-time reads as none", async () => {
    const h = await home();
    await recordSync(h, S, "u1", V, 1, T);
    await recordSync(h, S, "u2", V, 1, T + 1000);
    await recordSync(h, S, "u1", V, 2, T + 60_000);
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ syncedAt: "2030-01-01T00:01:00.000Z" });
    expect(await getSyncEntry(h, S, "u2", V)).toMatchObject({ syncedAt: "2030-01-01T00:00:01.000Z" });
    const file = join(syncDir(h), "state.json");
    const edited = {
      format: 1,
      entries: [
        { server: S, userId: "u1", vaultId: V, highestVersion: 2, syncedVersion: 2, syncedAt: "yesterday" },
      ],
    };
    await writeFile(file, JSON.stringify(edited));
    const entry = await getSyncEntry(h, S, "u1", V);
    expect(entry).toMatchObject({ highestVersion: 2 });
    expect(entry?.syncedAt).toBeUndefined();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("concurrent records from several processes' worth of calls keep every entry", async () => {
    const h = await home();
    await Promise.all(Array.from({ length: 16 }, (_, i) => recordSync(h, S, "u", `vault-${i}`, i + 1, T)));
    expect((await listSyncEntries(h)).map((e) => e.vaultId).sort()).toHaveLength(16);
  });

  it("refuses a state file that is not its own format", async () => {
    const h = await home();
    await recordSync(h, S, "u", V, 1, T);
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

  it("keeps an organisation copy's record apart from the personal one and from other organisations'", async () => {
    const h = await home();
    await recordSync(h, S, "u1", V, 9, T, "acme");
    // The personal copy has never been synced: the organisation's version 9 must not vouch for it.
    expect(await getSyncEntry(h, S, "u1", V)).toBeNull();
    expect(await getSyncEntry(h, S, "u1", V, "beta")).toBeNull();
    await recordSync(h, S, "u1", V, 2, T);
    await recordSync(h, S, "u1", V, 4, T, "acme");
    expect(await getSyncEntry(h, S, "u1", V)).toMatchObject({ highestVersion: 2, syncedVersion: 2 });
    expect(await getSyncEntry(h, S, "u1", V, "acme")).toMatchObject({
      org: "acme",
      highestVersion: 9,
      syncedVersion: 4,
    });
    expect(await listSyncEntries(h)).toHaveLength(2);
  });

  it("keeps an organisation copy's merge base in a file of its own, bound to the organisation", async () => {
    const h = await home();
    const key = random.bytes(32);
    const personal = { server: S, userId: "u", version: 2, document: { default: { A: "personal" } } };
    const org = { ...personal, version: 5, document: { default: { A: "org" } }, orgKey: "b3JnIGtleQ==" };
    await writeSyncBase(h, V, key, personal, random);
    await writeSyncBase(h, V, key, org, random, "acme");
    expect(await readSyncBase(h, V, key)).toEqual(personal);
    expect(await readSyncBase(h, V, key, "acme")).toEqual(org);
    expect(await readSyncBase(h, V, key, "beta")).toBeNull();
    // A base moved under another organisation's name does not open as that organisation's.
    await copyFile(join(syncDir(h), `${V}.org.acme.base.enc`), join(syncDir(h), `${V}.org.beta.base.enc`));
    expect(await readSyncBase(h, V, key, "beta")).toBeNull();
  });
});
