// Pairing a second machine whose keystore is a real keychain (gnome-keyring in a private D-Bus session), with the
// real server and A on the encrypted file store (e2e/pairing.test.ts pairs two file stores): B, which has a
// vault of its own, pairs on terminals, adopts A's wrapping key into the keychain, pulls A's vault and reads the
// same secrets as A, and still opens its own. The code is spent: typing it again on A sends nothing.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  createUser,
  latchkey,
  loginCli,
  newMachine,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import {
  APPROVE_QUESTION,
  APPROVER_DIGITS,
  expectNotPaired,
  NEW_MACHINE_DIGITS,
  ok,
  onTerminal,
  pairingAudit,
  pairingLabelled,
  refusedJoin,
  shown,
  startPairing,
  wrappingKeyOf,
} from "./support/pairing.js";
import { projectDir } from "./support/teams.js";

const USER = { email: "pairing-keychain@example.com", password: "pairing keychain password for e2e" };
const SECRETS = { API_KEY: "k-keychain", DATABASE_URL: "postgres://db.internal/keychain" };

const ready =
  requirePart("the pairing keychain e2e suite", secretServiceAvailable()) &&
  requirePart("the pairing keychain e2e suite's terminal", terminalCheck());

describe.skipIf(!ready)("pairing a machine whose keystore is the keychain", () => {
  let root: string;
  let session: SecretServiceSession;
  let server: LatchkeyServer;
  let a: Machine;
  let b: Machine;
  const dirs = { a: "", aOnB: "", bOwn: "" };

  const project = (name: string, latchkeyJson?: string): Promise<string> =>
    projectDir(root, name, name, latchkeyJson);

  /** `env list --json --show` and each `env get` of the project at `cwd` on `m`. */
  async function readAll(
    m: Machine,
    cwd: string,
  ): Promise<{ list: unknown; values: Record<string, string> }> {
    const list = JSON.parse(ok(await latchkey(m, ["env", "list", "--json", "--show"], { cwd })).stdout) as {
      keys: { key: string }[];
    };
    const values: Record<string, string> = {};
    for (const { key } of list.keys) values[key] = ok(await latchkey(m, ["env", "get", key], { cwd })).stdout;
    return { list, values };
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-keychain-"));
    [session, server] = await Promise.all([
      startSecretService({ variant: "unlocked" }),
      startLatchkeyServer({ dataDir: join(root, "server") }),
    ]);
    await createUser(server, USER.email, USER.password);
    a = await newMachine(root, "a");
    b = await newMachine(root, "b", { ...session.env, LATCHKEY_KEYSTORE: "keyring" });
    await Promise.all([loginCli(a, server, USER), loginCli(b, server, USER)]).then((r) => r.forEach(ok));
    dirs.a = await project("app");
    for (const [key, value] of Object.entries(SECRETS))
      ok(await latchkey(a, ["env", "set", key], { cwd: dirs.a, input: value }));
    ok(await latchkey(a, ["env", "push"], { cwd: dirs.a }));
    dirs.aOnB = await project("app-on-b", await readFile(join(dirs.a, "latchkey.json"), "utf8"));
    dirs.bOwn = await project("b-own");
    ok(await latchkey(b, ["env", "set", "OWN=b's own"], { cwd: dirs.bOwn }));
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await session?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("B pairs on terminals, adopts A's key into the keychain, reads A's secrets as A does; the spent code sends nothing", async () => {
    const ownKey = await session.secretToolLookup({ service: "latchkey", username: "wrapping-key" });
    expect(ownKey).not.toBeNull();
    await expectNotPaired(b, dirs.aOnB);

    const label = "b on the keychain";
    const { terminal: onB, code } = await startPairing(b, USER.password, { label });
    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);
    await onB.waitFor(NEW_MACHINE_DIGITS);
    expect(shown(onB, NEW_MACHINE_DIGITS)).toBe(shown(onA, APPROVER_DIGITS));
    onA.type("y");
    const approved = await onA.exited;
    expect(approved.code, approved.output).toBe(0);
    const paired = await onB.exited;
    expect(paired.code, paired.output).toBe(0);
    expect(paired.output).toContain("Paired: this machine now holds the wrapping key");

    // A's wrapping key, now B's, in the keychain itself; nothing of the file store on B's disk.
    const aKey = await wrappingKeyOf(a);
    expect(await session.secretToolLookup({ service: "latchkey", username: "wrapping-key" })).toBe(aKey);
    expect(
      await session.secretToolLookup({ service: "latchkey", username: "wrapping-key-pending" }),
    ).toBeNull();
    expect(existsSync(join(b.latchkeyHome, "store.enc"))).toBe(false);

    ok(await latchkey(b, ["env", "pull"], { cwd: dirs.aOnB }));
    const onAReads = await readAll(a, dirs.a);
    expect(onAReads.values).toEqual(SECRETS);
    expect(await readAll(b, dirs.aOnB)).toEqual(onAReads);
    expect(ok(await latchkey(b, ["env", "get", "OWN"], { cwd: dirs.bOwn })).stdout).toBe("b's own");

    // The code belongs to a consumed pairing: a second `env pair` with it is refused before anything is sealed.
    expect(await refusedJoin(a, code, "LK_PAIRING_FAILED")).toBe(409);
    const pairing = await pairingLabelled(a, label);
    expect(pairing.status).toBe("consumed");
    expect(pairingAudit(server, pairing.pairingId)).toEqual([
      "pairing.create",
      "pairing.join",
      "pairing.reveal",
      "pairing.approve",
      "pairing.consume",
    ]);
  }, 120_000);
});
