// Pairing a second machine with the real server process (docs/pairing.md) and the built CLI on real pseudo-
// terminals: machine A pushed a vault; machine B, signed in to the same account, runs `latchkey pair` (typing the
// account's password at the step-up prompt), A runs `latchkey env pair CODE` and answers y after both show the
// same 6 digits; B then pulls A's vault and reads the same secrets. Without a terminal and without --yes, A is
// refused before it joins; Ctrl-C on B while it waits revokes the pairing on the server.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { KEYS, terminalCheck, type Terminal } from "./support/pty.js";
import {
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import { listPairings, onTerminal, startPairing as startPairingAs } from "./support/pairing.js";
import { projectDir } from "./support/teams.js";

const USER = { email: "pairing@example.com", password: "pairing password for e2e" };
const SECRETS = { API_KEY: "k-123", DATABASE_URL: "postgres://db.internal/app" };

describe.skipIf(!requirePart("the pairing e2e suite", terminalCheck()))("pairing a second machine", () => {
  let root: string;
  let server: LatchkeyServer;
  let a: Machine;
  let latchkeyJson: string;

  const project = (name: string, json?: string): Promise<string> => projectDir(root, name, name, json);

  const loggedIn = (name: string): Promise<Machine> => signedInMachine(root, name, server, USER);

  /** `latchkey ARGS` on `m`, on a terminal of its own. */
  /** `latchkey pair` on `m`'s terminal (support/pairing.ts), and the command to give the other machine shown. */
  async function startPairing(m: Machine): Promise<{ terminal: Terminal; code: string }> {
    const started = await startPairingAs(m, USER.password, { label: `machine ${m.name}` });
    await started.terminal.waitFor(`latchkey env pair ${started.code}`);
    return started;
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
    a = await loggedIn("a");
    const dir = await project("app");
    for (const [key, value] of Object.entries(SECRETS))
      ok(await latchkey(a, ["env", "set", key], { cwd: dir, input: value }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    latchkeyJson = await readFile(join(dir, "latchkey.json"), "utf8");
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("B pairs with A on terminals (password on B, y on A, the same digits on both), then pulls A's secrets", async () => {
    const b = await loggedIn("b");
    const bDir = await project("app-on-b", latchkeyJson);
    const refused = await latchkey(b, ["env", "pull"], { cwd: bDir });
    expect(refused.stderr, refused.stderr).toContain("error LK_VAULT_NOT_PAIRED");

    const { terminal: onB, code } = await startPairing(b);
    const onA = onTerminal(a, ["env", "pair", code.toLowerCase()]);
    await onA.waitFor("Send this machine's wrapping key");
    const shownOnA = /Number:\s+(\d{3} \d{3})/.exec(onA.output())?.[1];
    expect(shownOnA, onA.output()).toBeDefined();
    expect(onA.output()).toContain('New machine:  "machine b"');
    await onB.waitFor(/same number:\s+\d{3} \d{3}/);
    expect(/same number:\s+(\d{3} \d{3})/.exec(onB.output())?.[1]).toBe(shownOnA);
    onA.type("y");
    const approved = await onA.exited;
    expect(approved.code, approved.output).toBe(0);
    expect(approved.output).toContain('Approved: "machine b"');
    const paired = await onB.exited;
    expect(paired.code, paired.output).toBe(0);
    expect(paired.output).toContain("Paired: this machine now holds the wrapping key");
    for (const output of [approved.output, paired.output]) expect(output).not.toContain(USER.password);

    expect((await listPairings(b)).find((p) => p.label === "machine b")?.status).toBe("consumed");
    ok(await latchkey(b, ["env", "pull"], { cwd: bDir }));
    const exported = ok(await latchkey(b, ["env", "export", "--format", "json"], { cwd: bDir }));
    expect(JSON.parse(exported.stdout)).toEqual(SECRETS);
  }, 120_000);

  it("without a terminal and without --yes, env pair is refused before it joins; Ctrl-C on B revokes", async () => {
    const c = await loggedIn("c");
    const { terminal: onC, code } = await startPairing(c);
    await onC.waitFor("Waiting for the other machine to join");

    const refused = await latchkey(a, ["env", "pair", code]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain("error LK_NOT_INTERACTIVE");
    expect(refused.stderr).toContain("--yes");
    const pending = (await listPairings(a)).find((p) => p.label === "machine c");
    expect(pending?.status).toBe("pending");

    onC.type(KEYS.ctrlC);
    const interrupted = await onC.exited;
    expect(interrupted.code, interrupted.output).toBe(130);
    expect(interrupted.output).toContain("error LK_CANCELLED");
    expect(interrupted.output).toContain("The pairing was revoked on the server.");
    expect((await listPairings(a)).find((p) => p.pairingId === pending!.pairingId)?.status).toBe("revoked");

    // The code is worth nothing now: its pairing has moved on.
    const late = await latchkey(a, ["env", "pair", code, "--yes"]);
    expect(late.stderr, late.stderr).toContain("error LK_PAIRING_FAILED");
  }, 120_000);
});
