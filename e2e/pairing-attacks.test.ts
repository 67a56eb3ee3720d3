// Pairing refused, with the real server process (its test build, whose API clock a test can move ahead) and the
// built CLI on separate machines (docs/pairing.md): A pushed a vault; B is a new machine of the same account; C a
// third one; M a machine of another account. A wrong code, a code typed on another account's machine, a second
// approver, an expired code and a reveal that does not match the commitment are each refused and audited, and
// B ends with nothing: no key, LK_VAULT_NOT_PAIRED. The step-up in front of `latchkey pair` refuses a wrong
// password and a wrong TOTP code after three tries, and the server refuses a proof for another action, from
// another session, expired or used before.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  generatePairingKeyPair,
  PAIRING_CODE_ALPHABET,
  PAIRING_TTL_SECONDS,
  pairingCommitment,
  STEP_UP_TTL_SECONDS,
  toBase64,
} from "@latchkey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleServerWithTestRoutes } from "../packages/server/test/support/test-routes-bundle.js";
import { totp } from "./support/oidc-browser.js";
import { requirePart } from "./support/prerequisites.js";
import { KEYS, terminalCheck, type Terminal } from "./support/pty.js";
import {
  collect,
  createUser,
  latchkey,
  loginCli,
  newMachine,
  runServerAdmin,
  startLatchkey,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import {
  accessToken,
  apiRequest,
  APPROVE_QUESTION,
  auditRows,
  expectNotPaired,
  listPairings,
  mintProof,
  ok,
  onTerminal,
  pairingAudit,
  pairingLabelled,
  refusedJoin,
  setApiClock,
  startPairing,
  userIdOf,
  wrappingKeyOf,
} from "./support/pairing.js";
import { projectDir } from "./support/teams.js";

const USER = { email: "pairing-attacks@example.com", password: "pairing attacks password for e2e" };
const OTHER = { email: "pairing-other@example.com", password: "another account's password for e2e" };
const PASSWORD_USER = { email: "step-up-password@example.com", password: "the right password for e2e" };
const TOTP_USER = { email: "step-up-totp@example.com", password: "totp account password for e2e" };
const SECRETS = { API_KEY: "k-attacks", DATABASE_URL: "postgres://db.internal/attacks" };

/** Asserts a refused command: the catalogue code on stderr and a non-zero exit. */
function refused(result: ProcessResult, code: string): ProcessResult {
  expect(result.stderr, result.stderr).toContain(`error ${code}`);
  expect(result.code).not.toBe(0);
  return result;
}

/**
 * Resolves once the prompt `label` is waiting for input on `terminal` for the `n`-th time: its header with the
 * active marker (a prompt that was answered shows another), so nothing is typed before the prompt reads it.
 */
function nthPrompt(terminal: Terminal, label: string, n: number): Promise<void> {
  const literal = `◆  ${label}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return terminal.waitFor(new RegExp(`(?:${literal}[\\s\\S]*){${n}}`));
}

describe.skipIf(!requirePart("the pairing attacks e2e suite", terminalCheck()))("pairing refused", () => {
  let root: string;
  let server: LatchkeyServer;
  let a: Machine;
  let b: Machine;
  let c: Machine;
  let m: Machine;
  /** B's checkout of A's project. */
  let aOnB: string;
  let userId: string;

  const project = (name: string, latchkeyJson?: string): Promise<string> =>
    projectDir(root, name, name, latchkeyJson);

  async function loggedIn(
    name: string,
    user: { email: string; password: string },
    env: Record<string, string> = {},
  ): Promise<Machine> {
    const machine = await newMachine(root, name);
    ok(await loginCli(machine, server, user, { env }));
    return machine;
  }

  /** B holds no key at all and cannot read A's vault. */
  async function expectNothingOnB(): Promise<void> {
    expect(await wrappingKeyOf(b)).toBeNull();
    expect(await wrappingKeyOf(b, true)).toBeNull();
    await expectNotPaired(b, aOnB);
  }

  /** Wrong codes the server counted for `user` (coalesced rows, one per window). */
  function wrongCodes(user: string): number {
    return auditRows(server, "pairing.join_refused")
      .filter((row) => row.userId === user && row.metadata.reason === "wrong_code")
      .reduce((sum, row) => sum + row.count, 0);
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-attacks-"));
    const script = await bundleServerWithTestRoutes(join(root, "server-build"));
    server = await startLatchkeyServer({ dataDir: join(root, "server"), script });
    for (const user of [USER, OTHER, PASSWORD_USER, TOTP_USER])
      await createUser(server, user.email, user.password);
    userId = userIdOf(server, USER.email);
    [a, b, c, m] = await Promise.all([
      loggedIn("a", USER),
      loggedIn("b", USER),
      loggedIn("c", USER),
      loggedIn("m", OTHER),
    ]);
    const dir = await project("app");
    for (const [key, value] of Object.entries(SECRETS))
      ok(await latchkey(a, ["env", "set", key], { cwd: dir, input: value }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    aOnB = await project("app-on-b", await readFile(join(dir, "latchkey.json"), "utf8"));
    // C and M have vaults of their own, so a wrapping key they could send: what stops them is the server.
    ok(await latchkey(c, ["env", "set", "C=1"], { cwd: await project("c-own") }));
    ok(await latchkey(m, ["env", "set", "M=1"], { cwd: await project("m-own") }));
    await expectNothingOnB();
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("a wrong code, and the right code typed on another account's machine, are not found and counted; B gets nothing", async () => {
    const label = "b, wrong codes";
    const otherId = userIdOf(server, OTHER.email);
    const before = { user: wrongCodes(userId), other: wrongCodes(otherId) };
    const { terminal: onB, code } = await startPairing(b, USER.password, { label });
    const wrong = code.replace(/^./, (first) => PAIRING_CODE_ALPHABET.replace(first, "")[0]!);

    expect(await refusedJoin(a, wrong, "LK_PAIRING_NOT_FOUND")).toBe(404);
    // Codes are looked up in the caller's own account: another account's machine cannot find B's.
    expect(await refusedJoin(m, code, "LK_PAIRING_NOT_FOUND")).toBe(404);

    const pairing = await pairingLabelled(b, label);
    expect(pairing.status).toBe("pending");
    expect(pairingAudit(server, pairing.pairingId)).toEqual(["pairing.create"]);
    expect(wrongCodes(userId)).toBe(before.user + 1);
    expect(wrongCodes(otherId)).toBe(before.other + 1);

    onB.type(KEYS.ctrlC);
    const stopped = await onB.exited;
    expect(stopped.code, stopped.output).toBe(130);
    expect(stopped.output).toContain("The pairing was revoked on the server.");
    await expectNothingOnB();
  }, 120_000);

  it("a second approver of the same account is refused once A has joined; A's no revokes; B gets nothing", async () => {
    const label = "b, two approvers";
    const { terminal: onB, code } = await startPairing(b, USER.password, { label });
    const onA = onTerminal(a, ["env", "pair", code]);
    await onA.waitFor(APPROVE_QUESTION);

    // Found (the code is the account's), but the pairing has moved on: 409, and C never joined.
    expect(await refusedJoin(c, code, "LK_PAIRING_FAILED")).toBe(409);

    onA.type("n");
    const declined = await onA.exited;
    expect(declined.code, declined.output).not.toBe(0);
    expect(declined.output).toContain("Not approved: nothing was sent.");
    const onBEnded = await onB.exited;
    expect(onBEnded.code, onBEnded.output).not.toBe(0);
    expect(onBEnded.output).toContain("error LK_PAIRING_FAILED");

    const pairing = await pairingLabelled(b, label);
    expect(pairing.status).toBe("revoked");
    // One join (A's), no approval; the refused second join left no row of its own.
    expect(pairingAudit(server, pairing.pairingId)).toEqual([
      "pairing.create",
      "pairing.join",
      "pairing.reveal",
      "pairing.revoke",
    ]);
    await expectNothingOnB();
  }, 120_000);

  it("a code past its 5 minutes (the server's clock moved ahead) is refused as expired; B stops; nothing sent", async () => {
    const label = "b, expired";
    const { terminal: onB, code } = await startPairing(b, USER.password, { label });
    await onB.waitFor("Waiting for the other machine to join");
    await setApiClock(server, (PAIRING_TTL_SECONDS + 1) * 1000);
    try {
      expect(await refusedJoin(a, code, "LK_PAIRING_FAILED")).toBe(409);
      const onBEnded = await onB.exited;
      expect(onBEnded.code, onBEnded.output).not.toBe(0);
      expect(onBEnded.output).toContain("error LK_PAIRING_FAILED");
      const pairing = await pairingLabelled(b, label);
      expect(pairing.status).toBe("expired");
      expect(pairingAudit(server, pairing.pairingId)).toEqual(["pairing.create"]);
    } finally {
      await setApiClock(server, 0);
    }
    await expectNothingOnB();
  }, 120_000);

  it("a reveal that does not match the commitment (a wrong nonce, sent through the API) revokes; A sends nothing", async () => {
    const token = await accessToken(b, server);
    const proof = await mintProof(server, token, "vault:pair", USER.password);
    const keyPair = await generatePairingKeyPair();
    const nonce = randomBytes(32);
    const created = await apiRequest(server, token, {
      method: "POST",
      path: "/pairings",
      body: { label: "b, api", commitment: toBase64(await pairingCommitment(keyPair.publicKey, nonce)) },
      stepUp: proof,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const pairingId = String(created.body?.pairingId);
    const view = (): Promise<string> =>
      apiRequest(server, token, { method: "GET", path: `/pairings/${pairingId}` }).then((v) =>
        String(v.body?.status),
      );

    // Even told to approve without asking, A sends nothing to a key that is not the one committed to.
    const approving = collect(startLatchkey(a, ["env", "pair", String(created.body?.code), "--yes"]));
    while ((await view()) === "pending") await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await view()).toBe("joined");

    const reveal = (n: Uint8Array) =>
      apiRequest(server, token, {
        method: "POST",
        path: `/pairings/${pairingId}/reveal`,
        body: { publicKey: toBase64(keyPair.publicKey), nonce: toBase64(n) },
      });
    const mismatch = await reveal(randomBytes(32));
    expect(mismatch.status).toBe(409);
    expect(mismatch.body).toMatchObject({ code: "LK_PAIRING_FAILED" });
    expect(String(mismatch.body?.message)).toContain("does not match the commitment");
    expect(await view()).toBe("revoked");
    // The pairing is over: not even the right nonce revives it.
    expect((await reveal(nonce)).status).toBe(409);

    const approver = refused(await approving, "LK_PAIRING_FAILED");
    expect(approver.stderr).not.toContain("Approved");
    expect(pairingAudit(server, pairingId)).toEqual([
      "pairing.create",
      "pairing.join",
      "pairing.reveal_mismatch",
    ]);
    const row = auditRows(server, "pairing.reveal_mismatch").find((r) => r.metadata.pairingId === pairingId);
    expect(row?.metadata.check).toBe("commitment");
    await expectNothingOnB();
  }, 120_000);

  it("the step-up refuses a wrong password three times (LK_STEP_UP_FAILED), creates nothing, then the right one passes", async () => {
    const p = await loggedIn("p", PASSWORD_USER);
    const id = userIdOf(server, PASSWORD_USER.email);
    const wrong = ["not it", "not it either", "still not it"];
    const onP = onTerminal(p, ["pair", "--label", "p"]);
    for (const [i, attempt] of wrong.entries()) {
      await nthPrompt(onP, "Password", i + 1);
      onP.type(`${attempt}${KEYS.enter}`);
    }
    const failed = await onP.exited;
    expect(failed.code, failed.output).not.toBe(0);
    expect(failed.output).toContain("error LK_STEP_UP_FAILED");
    expect(failed.output).toContain("3 of 3 attempts used");
    for (const attempt of wrong) expect(failed.output).not.toContain(attempt);
    expect(await listPairings(p)).toEqual([]);
    const refusals = auditRows(server, "step_up.refused").filter((row) => row.userId === id);
    expect(refusals.map((row) => [row.metadata.scope, row.metadata.reason])).toEqual(
      wrong.map(() => ["vault:pair", "wrong_password"]),
    );

    const { terminal: retried } = await startPairing(p, PASSWORD_USER.password, { label: "p" });
    retried.type(KEYS.ctrlC);
    expect((await retried.exited).code).toBe(130);
  }, 120_000);

  it("the step-up of an account with TOTP refuses the right password with a wrong code three times", async () => {
    const enrolled = await runServerAdmin(server, ["enroll-totp", TOTP_USER.email]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const secret = /secret=([A-Z2-7]+)/.exec(enrolled.stdout)![1]!;
    const t = await loggedIn("t", TOTP_USER, { OIDC_BROWSER_TOTP_SECRET: secret });
    const id = userIdOf(server, TOTP_USER.email);
    // Not a code of any step the server accepts now (it allows one step of drift either way), nor soon.
    const valid = [-2, -1, 0, 1, 2].map((step) => totp(secret, Date.now() + step * 30_000));
    const wrong = ["000000", "111111", "222222", "333333"].find((code) => !valid.includes(code))!;

    const onT = onTerminal(t, ["pair", "--label", "t"]);
    for (let i = 1; i <= 3; i++) {
      await nthPrompt(onT, "Password", i);
      onT.type(`${TOTP_USER.password}${KEYS.enter}`);
      await nthPrompt(onT, "TOTP code (6 digits)", i);
      onT.type(`${wrong}${KEYS.enter}`);
    }
    const failed = await onT.exited;
    expect(failed.code, failed.output).not.toBe(0);
    expect(failed.output).toContain("error LK_STEP_UP_FAILED");
    expect(failed.output).toContain("The password or the TOTP code is wrong.");
    expect(failed.output).not.toContain(TOTP_USER.password);
    expect(await listPairings(t)).toEqual([]);
    // The password passed each time: what failed was the code.
    const refusals = auditRows(server, "step_up.refused").filter((row) => row.userId === id);
    expect(refusals.map((row) => row.metadata.reason)).toEqual(["wrong_totp", "wrong_totp", "wrong_totp"]);
  }, 120_000);

  it("the server refuses a proof for another action, from another session, used before or expired", async () => {
    const onB = await accessToken(b, server);
    const onC = await accessToken(c, server);
    const create = (proof: string, token = onB) =>
      apiRequest(server, token, {
        method: "POST",
        path: "/pairings",
        body: { label: "b, proofs", commitment: toBase64(randomBytes(32)) },
        stepUp: proof,
      });
    const expectRefused = async (proof: string, why: string): Promise<void> => {
      const answer = await create(proof);
      expect(answer.status, JSON.stringify(answer.body)).toBe(403);
      expect(answer.body).toMatchObject({ code: "LK_STEP_UP_REQUIRED" });
      expect(String(answer.body?.message)).toContain(why);
    };

    await expectRefused(await mintProof(server, onB, "vault:ci:enable", USER.password), "for another action");
    await expectRefused(
      await mintProof(server, onC, "vault:pair", USER.password),
      "issued to another session",
    );

    const once = await mintProof(server, onB, "vault:pair", USER.password);
    const first = await create(once);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    await expectRefused(once, "already used");

    const stale = await mintProof(server, onB, "vault:pair", USER.password);
    await setApiClock(server, (STEP_UP_TTL_SECONDS + 1) * 1000);
    try {
      await expectRefused(stale, "has expired");
    } finally {
      await setApiClock(server, 0);
    }
    // The only pairing made is the one the fresh proof paid for.
    const made = (await listPairings(b)).filter((p) => p.label === "b, proofs");
    expect(made.map((p) => p.pairingId)).toEqual([first.body?.pairingId]);
    const revoked = await apiRequest(server, onB, {
      method: "POST",
      path: `/pairings/${String(first.body?.pairingId)}/revoke`,
    });
    expect(revoked.status).toBe(200);
  }, 120_000);
});
