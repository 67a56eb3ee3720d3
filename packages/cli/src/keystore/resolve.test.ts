// Resolution logic with the real file store and a stand-in for the keychain whose reachability the test sets.
// The same paths against the real gnome-keyring are covered by e2e/keystore.test.ts.
import { LatchkeyError } from "@latchkey/core";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolvePaths } from "../paths.js";
import { createFileKeystore } from "./file-store.js";
import { createMemoryKeystore } from "./memory.js";
import { resolveKeystoreWith, type ResolveDeps } from "./resolve.js";
import type { Keystore } from "./types.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

type Probe = Awaited<ReturnType<ResolveDeps["keyring"]["probe"]>>;

async function setup(env: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "lk-resolve-"));
  dirs.push(dir);
  const fullEnv: Record<string, string | undefined> = { LATCHKEY_HOME: join(dir, "home"), ...env };
  const paths = resolvePaths(fullEnv);
  const keyringItems = createMemoryKeystore();
  const keyring: Keystore = { ...keyringItems, kind: "keyring" };
  let probe: Probe = { reachable: true };
  const deps = (): ResolveDeps => ({
    env: fullEnv,
    paths,
    clock: { now: () => Date.UTC(2026, 10, 23), sleep: () => Promise.resolve() },
    fileStore: createFileKeystore({
      home: paths.home,
      store: paths.store,
      storeKey: paths.storeKey,
      passphrase: fullEnv.LATCHKEY_PASSPHRASE,
      machineIdPaths: ["/etc/machine-id"],
      random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
      argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 },
    }),
    keyring: { probe: () => Promise.resolve(probe), create: () => keyring },
  });
  return {
    paths,
    keyring,
    deps,
    setProbe: (p: Probe) => {
      probe = p;
    },
  };
}

const unreachable = { reachable: false as const, error: new LatchkeyError("LK_KEYRING_UNREACHABLE") };
const locked = { reachable: false as const, error: new LatchkeyError("LK_KEYRING_LOCKED") };

describe("keystore resolution", () => {
  it("rejects an unknown LATCHKEY_KEYSTORE value", async () => {
    const t = await setup({ LATCHKEY_KEYSTORE: "vault" });
    await expect(resolveKeystoreWith(t.deps())).rejects.toMatchObject({ code: "LK_CONFIG_INVALID" });
  });

  it("LATCHKEY_KEYSTORE=file forces the file store even with a reachable keychain", async () => {
    const t = await setup({ LATCHKEY_KEYSTORE: "file" });
    const r = await resolveKeystoreWith(t.deps());
    expect([r.backend, r.reason, r.degraded]).toEqual(["file", "forced", true]);
  });

  it("LATCHKEY_KEYSTORE=keyring makes an unreachable keychain an error", async () => {
    const t = await setup({ LATCHKEY_KEYSTORE: "keyring" });
    t.setProbe(unreachable);
    await expect(resolveKeystoreWith(t.deps())).rejects.toMatchObject({ code: "LK_KEYRING_UNREACHABLE" });
  });

  it("uses a reachable keychain", async () => {
    const t = await setup();
    const r = await resolveKeystoreWith(t.deps());
    expect([r.backend, r.reason, r.degraded]).toEqual(["keyring", "keychain-reachable", false]);
  });

  it("falls back to the file store, degraded, with the honest sentence, when no keychain is reachable", async () => {
    const t = await setup();
    t.setProbe(unreachable);
    const r = await resolveKeystoreWith(t.deps());
    expect([r.backend, r.reason, r.degraded]).toEqual(["file", "fallback", true]);
    expect(r.explanation).toContain("does not protect it from other processes running as your user");
    expect(r.keyringError?.code).toBe("LK_KEYRING_UNREACHABLE");
  });

  it("does not fall back silently from a keychain that is present but locked", async () => {
    const t = await setup();
    t.setProbe(locked);
    await expect(resolveKeystoreWith(t.deps())).rejects.toMatchObject({ code: "LK_KEYRING_LOCKED" });
  });

  it("promotes file-store entries into the keychain once, then deletes the file store", async () => {
    const t = await setup();
    t.setProbe(unreachable);
    const fallback = await resolveKeystoreWith(t.deps());
    await fallback.keystore.set("registry://a/", "token-a");
    await fallback.keystore.set("sso:b", "token-b");

    t.setProbe({ reachable: true });
    const promoted = await resolveKeystoreWith(t.deps());
    expect([promoted.backend, promoted.reason, promoted.promoted]).toEqual(["keyring", "promoted", 2]);
    expect(await t.keyring.get("registry://a/")).toBe("token-a");
    expect(await t.keyring.get("sso:b")).toBe("token-b");
    expect(existsSync(t.paths.store)).toBe(false);
    expect(existsSync(t.paths.storeKey)).toBe(false);
    expect(JSON.parse(await readFile(t.paths.keystoreState, "utf8"))).toMatchObject({
      backend: "keyring",
      promoted: 2,
    });

    const again = await resolveKeystoreWith(t.deps());
    expect([again.reason, again.promoted]).toEqual(["keychain-reachable", 0]);
  });

  it("after promotion, an unreachable or locked keychain is a loud error, never a silent fallback", async () => {
    const t = await setup();
    t.setProbe(unreachable);
    await (await resolveKeystoreWith(t.deps())).keystore.set("a", "1");
    t.setProbe({ reachable: true });
    await resolveKeystoreWith(t.deps());
    for (const probe of [unreachable, locked]) {
      t.setProbe(probe);
      const error = await resolveKeystoreWith(t.deps()).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "LK_KEYSTORE_PROMOTED_UNAVAILABLE" });
      expect((error as Error).cause).toBe(probe.error);
    }
    expect(existsSync(t.paths.store)).toBe(false);
  });

  it("remembers the keychain after its first write, so a later outage is an error too", async () => {
    const t = await setup();
    const r = await resolveKeystoreWith(t.deps());
    expect(existsSync(t.paths.keystoreState)).toBe(false);
    await r.keystore.set("a", "1");
    expect(existsSync(t.paths.keystoreState)).toBe(true);
    t.setProbe(unreachable);
    await expect(resolveKeystoreWith(t.deps())).rejects.toMatchObject({
      code: "LK_KEYSTORE_PROMOTED_UNAVAILABLE",
    });
  });

  it("takes a damaged keychain marker for one, never for a reason to fall back to the file store", async () => {
    const t = await setup();
    t.setProbe(unreachable);
    await mkdir(t.paths.home, { recursive: true });
    for (const damaged of ["{not json", "null", "[]", '"keyring"', "7"]) {
      await writeFile(t.paths.keystoreState, damaged);
      await expect(resolveKeystoreWith(t.deps()), damaged).rejects.toMatchObject({
        code: "LK_KEYSTORE_PROMOTED_UNAVAILABLE",
      });
    }
    await writeFile(t.paths.keystoreState, '{"backend":"file"}');
    expect((await resolveKeystoreWith(t.deps())).backend).toBe("file");
  });

  it("keeps the file store and warns when it cannot be promoted (passphrase not given)", async () => {
    const t = await setup({ LATCHKEY_PASSPHRASE: "pw" });
    t.setProbe(unreachable);
    await (await resolveKeystoreWith(t.deps())).keystore.set("a", "1");
    const withoutPassphrase = await setup();
    // Same home, no passphrase this time.
    const deps = { ...withoutPassphrase.deps(), paths: t.paths };
    const fileStore = createFileKeystore({
      home: t.paths.home,
      store: t.paths.store,
      storeKey: t.paths.storeKey,
      machineIdPaths: ["/etc/machine-id"],
      random: { bytes: (n) => randomFillSync(new Uint8Array(n)) },
    });
    const r = await resolveKeystoreWith({ ...deps, fileStore });
    expect(r.backend).toBe("keyring");
    expect(r.warning?.code).toBe("LK_STORE_DECRYPT_FAILED");
    expect(existsSync(t.paths.store)).toBe(true);
  });
});
