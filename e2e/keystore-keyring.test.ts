// The keystore on a real Secret Service (gnome-keyring in a private D-Bus session), through the built CLI:
// entries land in the keychain (checked with secret-tool), file-store entries are promoted once, and after that
// a missing or locked keychain is a loud error rather than a silent fallback.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { NO_DBUS, isolatedEnv, runCli, tempDir } from "./support/cli.js";

const keychainReady = requirePart("the keychain e2e suite", secretServiceAvailable());

describe.skipIf(!keychainReady)("keystore on a real Secret Service", () => {
  let session: SecretServiceSession;
  let dir: { path: string; cleanup: () => Promise<void> };
  let home: string;

  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
  });
  afterAll(() => session.stop());
  beforeEach(async () => {
    dir = await tempDir("lk-e2e-keyring-");
    home = join(dir.path, "latchkey-home");
  });
  afterEach(() => dir.cleanup());

  const withBus = () => isolatedEnv({ ...session.env, LATCHKEY_HOME: home });
  const withoutBus = () =>
    isolatedEnv({ HOME: dir.path, LATCHKEY_HOME: home, DBUS_SESSION_BUS_ADDRESS: NO_DBUS });

  it("stores entries in the Secret Service, not on disk", async () => {
    const account = `registry://npm.${dir.path.slice(-6)}.example/`;
    const set = await runCli(["keystore", "set", account], {
      env: withBus(),
      input: "keychain-canary-value",
    });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toContain("OS keychain");
    expect(await session.secretToolLookup({ service: "latchkey", username: account })).toBe(
      "keychain-canary-value",
    );
    expect(existsSync(join(home, "store.enc"))).toBe(false);
    const get = await runCli(["keystore", "get", account], { env: withBus() });
    expect(get.stdout).toBe("keychain-canary-value");
    const doctor = JSON.parse((await runCli(["doctor", "--json"], { env: withBus() })).stdout);
    expect(doctor.keystore).toMatchObject({
      backend: "keyring",
      reason: "keychain-reachable",
      degraded: false,
    });
    expect((await runCli(["keystore", "delete", account], { env: withBus() })).code).toBe(0);
    expect(await session.secretToolLookup({ service: "latchkey", username: account })).toBeNull();
  });

  it("promotes file-store entries into the keychain once, then refuses to fall back", async () => {
    const a = `promote-a-${dir.path.slice(-6)}`;
    const b = `promote-b-${dir.path.slice(-6)}`;
    expect((await runCli(["keystore", "set", a], { env: withoutBus(), input: "value-a" })).code).toBe(0);
    expect((await runCli(["keystore", "set", b], { env: withoutBus(), input: "value-b" })).code).toBe(0);
    expect(existsSync(join(home, "store.enc"))).toBe(true);

    const doctor = await runCli(["doctor", "--json"], { env: withBus() });
    const report = JSON.parse(doctor.stdout);
    expect(report.keystore).toMatchObject({ backend: "keyring", reason: "promoted", promoted: 2 });
    expect(await session.secretToolLookup({ service: "latchkey", username: a })).toBe("value-a");
    expect(await session.secretToolLookup({ service: "latchkey", username: b })).toBe("value-b");
    expect(existsSync(join(home, "store.enc"))).toBe(false);
    expect(existsSync(join(home, "store.key"))).toBe(false);

    const again = JSON.parse((await runCli(["doctor", "--json"], { env: withBus() })).stdout);
    expect(again.keystore).toMatchObject({ reason: "keychain-reachable", promoted: 0 });

    const noBus = await runCli(["keystore", "get", a], { env: withoutBus() });
    expect(noBus.code).toBe(3);
    expect(noBus.stderr).toContain("LK_KEYSTORE_PROMOTED_UNAVAILABLE");
    expect(noBus.stdout).toBe("");
    const doctorNoBus = await runCli(["doctor"], { env: withoutBus() });
    expect(doctorNoBus.code).toBe(1);
    expect(doctorNoBus.stdout).toContain("LK_KEYSTORE_PROMOTED_UNAVAILABLE");
  });
});

describe.skipIf(!keychainReady)("a locked keychain", () => {
  let session: SecretServiceSession;
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    session = await startSecretService({ variant: "locked" });
    dir = await tempDir("lk-e2e-locked-");
  });
  afterAll(async () => {
    await session.stop();
    await dir.cleanup();
  });

  it("is an error with the unlock hint, never a silent fallback to the file store", async () => {
    const env = isolatedEnv({ ...session.env, LATCHKEY_HOME: join(dir.path, "home") });
    const r = await runCli(["keystore", "set", "x"], { env, input: "v" });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("LK_KEYRING_LOCKED");
    expect(r.stderr).toContain("Unlock your login keyring");
    expect(existsSync(join(dir.path, "home", "store.enc"))).toBe(false);
  });
});
