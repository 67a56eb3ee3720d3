// `latchkey pair` (the new machine N) and `latchkey env pair CODE` (the approving machine A), run in-process
// through runCli against the fake pairing routes (test/support/pairing-server.ts), both machines in one test:
// the wrapping key arrives, the digits agree, and every way of stopping revokes the pairing and sends nothing.
// e2e/pairing.test.ts runs the built CLI against the real server.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBase64, type PairingView } from "@latchkey/core";
import {
  createFakePairingServer,
  pairingMachine,
  sharingKeyEntry,
  signedAnswer,
  wrappingKeyEntry,
  type FakePairingServer,
  type PairingMachine,
  type PairingMachineOptions,
} from "../../test/support/pairing-server.js";
import { runCli } from "../cli.js";
import { PENDING_SHARING_KEY_ACCOUNT, SHARING_KEY_ACCOUNT } from "../sharing/sharing-key.js";
import { readVault, updateVault } from "../vault/vault-store.js";
import { PENDING_WRAPPING_KEY_ACCOUNT, WRAPPING_KEY_ACCOUNT } from "../vault/wrapping-key.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-pair-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Resolves once `condition` holds, checking every millisecond; throws after 10 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited++) {
    if (waited > 10_000) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// Two machines run side by side, so time stands still unless a test is about a deadline: how fast each runs on a
// busy machine must not decide the outcome.
function machine(
  server: FakePairingServer,
  options: Omit<PairingMachineOptions, "token"> & { name: string },
) {
  return pairingMachine(server, join(root, String(++n)), {
    frozenClock: true,
    ...options,
    token: `${options.name}-${n}`,
  });
}

/** A new machine N at a terminal, typing its password at the step-up prompt. */
function newMachine(server: FakePairingServer, extra: Partial<PairingMachineOptions> = {}) {
  return machine(server, {
    name: "n",
    tty: true,
    hostname: "new-laptop",
    prompts: { secret: () => Promise.resolve("the account password") },
    ...extra,
  });
}

/** A machine A with a wrapping key, answering the y/N question with `answer`. */
function approver(
  server: FakePairingServer,
  answer: boolean | null,
  extra: Partial<PairingMachineOptions> = {},
) {
  const key = wrappingKeyEntry();
  const a = machine(server, {
    name: "a",
    tty: answer !== null,
    entries: { [WRAPPING_KEY_ACCOUNT]: key },
    prompts: { confirm: () => Promise.resolve(answer === true) },
    ...extra,
  });
  return { ...a, key };
}

/** Starts `latchkey pair ARGS` on N and resolves, with the exit code's promise, once the code is shown. */
async function startPair(server: FakePairingServer, nm: PairingMachine, args: string[] = []) {
  const exit = runCli(["pair", ...args], nm.ctx);
  const shown = () => /Pairing code: (\w{6})/.exec(stripVTControlCharacters(nm.ctx.stderr.text()))?.[1];
  await Promise.race([until(() => shown() !== undefined, "a code shown"), exit]);
  const code = shown();
  if (code === undefined) throw new Error(`no code shown:\n${nm.ctx.stderr.text()}\n${String(await exit)}`);
  return { exit, code };
}

const digitsOf = (text: string): string | undefined =>
  /\b(\d{3} \d{3})\b/.exec(stripVTControlCharacters(text))?.[1];
const sent = (server: FakePairingServer, token: string, action: string) =>
  server.requests.filter((r) => r.token === token && r.path.endsWith(action));

describe("pairing two machines", () => {
  it("N receives A's wrapping key; both show the same digits; the step-up proof goes with the create only", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, true);
    const { exit, code } = await startPair(server, nm);
    const approved = await runCli(["env", "pair", code.toLowerCase().replace(/(...)/, "$1-")], a.ctx);
    expect(approved, a.ctx.stderr.text()).toBe(0);
    expect(await exit, nm.ctx.stderr.text()).toBe(0);

    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    const nText = nm.ctx.stderr.text();
    const aText = a.ctx.stderr.text();
    expect(digitsOf(nText)).toBeDefined();
    expect(digitsOf(aText)).toBe(digitsOf(nText));
    expect(nText).toContain(`latchkey env pair ${code}`);
    expect(aText).toContain('New machine:  "new-laptop"');
    expect(nText).toContain("Paired: this machine now holds the wrapping key");
    expect(aText).toContain('Approved: "new-laptop"');
    expect(server.status()).toBe("consumed");
    const withProof = server.requests.filter((r) => r.stepUp !== null);
    expect(withProof.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /pairings"]);
    // The wrapping key crossed the wire only sealed.
    for (const request of server.requests) expect(JSON.stringify(request.body ?? "")).not.toContain(a.key);
    for (const text of [nText, aText, nm.ctx.stdout.text(), a.ctx.stdout.text()]) {
      expect(text).not.toContain(a.key);
      expect(text).not.toContain("the account password");
    }
  });

  it("--yes on a machine without a terminal approves without asking and says nobody compared the numbers", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, null);
    const { exit, code } = await startPair(server, nm);
    expect(await runCli(["env", "pair", code, "--yes"], a.ctx), a.ctx.stderr.text()).toBe(0);
    expect(await exit, nm.ctx.stderr.text()).toBe(0);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    expect(stripVTControlCharacters(a.ctx.stderr.text())).toContain(
      "Approved without asking (--yes): nobody compared the numbers",
    );
  });

  it("N's own vaults are re-wrapped under the received key and still open; --json summaries on stdout", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server, { entries: { [WRAPPING_KEY_ACCOUNT]: wrappingKeyEntry() } });
    const deps = {
      keystore: nm.keystore,
      home: nm.ctx.paths.home,
      vaultsDir: nm.ctx.paths.vaults,
      random: nm.ctx.random,
    };
    await updateVault(deps, "local-vault", (doc) => {
      doc.default = { LOCAL: "value" };
      return { result: undefined, changed: true };
    });
    const a = approver(server, true);
    const { exit, code } = await startPair(server, nm, ["--label", "ci box", "--json"]);
    const approved = await runCli(["env", "pair", code, "--json"], a.ctx);
    expect(approved, a.ctx.stderr.text()).toBe(0);
    expect(await exit, nm.ctx.stderr.text()).toBe(0);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    expect(await readVault(deps, "local-vault")).toEqual({ default: { LOCAL: "value" } });
    expect(JSON.parse(nm.ctx.stdout.text())).toMatchObject({
      label: "ci box",
      adoption: { how: "adopted", rewrapped: ["local-vault"] },
    });
    expect(JSON.parse(a.ctx.stdout.text())).toMatchObject({ label: "ci box", vaults: [] });
    expect(nm.ctx.stderr.text()).toContain("1 vault key was re-wrapped");
  });
});

describe("the sharing key goes with the wrapping key", () => {
  type Key = Awaited<ReturnType<typeof sharingKeyEntry>>;

  /** A with a wrapping key and the sharing key `key`, its y/N questions recorded. */
  function approverWithSharingKey(server: FakePairingServer, key: Key) {
    const asked: string[] = [];
    const wrapping = wrappingKeyEntry();
    const a = machine(server, {
      name: "a",
      tty: true,
      entries: { [WRAPPING_KEY_ACCOUNT]: wrapping, [SHARING_KEY_ACCOUNT]: key.entry },
      prompts: {
        confirm: (question) => {
          asked.push(question);
          return Promise.resolve(true);
        },
      },
    });
    return { ...a, key: wrapping, asked };
  }

  /** Pairs N with A; both must succeed. Returns what N printed as --json. */
  async function pairBoth(server: FakePairingServer, nm: PairingMachine, a: PairingMachine) {
    const { exit, code } = await startPair(server, nm, ["--json"]);
    expect(await runCli(["env", "pair", code], a.ctx), a.ctx.stderr.text()).toBe(0);
    expect(await exit, nm.ctx.stderr.text()).toBe(0);
    return JSON.parse(nm.ctx.stdout.text()) as { sharingKey: { how: string; fingerprint?: string } };
  }

  const sealedBytes = (server: FakePairingServer) => {
    const approve = server.requests.find((r) => r.path.endsWith("/approve"))!;
    return Buffer.from((approve.body as { sealedKey: string }).sealedKey, "base64").length;
  };
  const askedState = (server: FakePairingServer, nm: PairingMachine) =>
    server.requests.filter((r) => r.token === nm.token && r.path === "/sharing-key");

  it("N, which has none, stores A's; A asks about both keys; neither key leaves A unsealed or shows anywhere", async () => {
    const server = createFakePairingServer();
    const shared = await sharingKeyEntry();
    server.sharingKey = { publicKey: shared.publicKey, fingerprint: shared.fingerprint };
    const nm = newMachine(server);
    const a = approverWithSharingKey(server, shared);
    const outcome = await pairBoth(server, nm, a);

    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBe(shared.entry);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    expect(outcome.sharingKey).toEqual({ how: "stored", fingerprint: shared.fingerprint });
    // 4 + 12 + 64 + 16: both keys in one envelope.
    expect(sealedBytes(server)).toBe(96);
    expect(a.asked).toEqual(['Send this machine\'s wrapping key and sharing key to "new-laptop"?']);
    expect(a.ctx.stderr.text()).toContain("receives this machine's wrapping key and sharing key once");
    expect(nm.ctx.stderr.text()).toContain(
      `It holds your account's sharing key now (${shared.fingerprint.slice(0, 16)}…)`,
    );
    // A machine with no key of its own has nothing to ask the server about.
    expect(askedState(server, nm)).toEqual([]);
    for (const request of server.requests) {
      expect(JSON.stringify(request.body ?? "")).not.toContain(shared.entry);
    }
    for (const text of [
      nm.ctx.stderr.text(),
      a.ctx.stderr.text(),
      nm.ctx.stdout.text(),
      a.ctx.stdout.text(),
    ]) {
      expect(text).not.toContain(shared.entry);
    }
  });

  it("N whose own key is the registered one keeps it and drops A's", async () => {
    const server = createFakePairingServer();
    const own = await sharingKeyEntry();
    const stale = await sharingKeyEntry();
    server.sharingKey = { publicKey: own.publicKey, fingerprint: own.fingerprint };
    const nm = newMachine(server, { entries: { [SHARING_KEY_ACCOUNT]: own.entry } });
    const a = approverWithSharingKey(server, stale);
    const outcome = await pairBoth(server, nm, a);

    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBe(own.entry);
    expect(outcome.sharingKey).toEqual({ how: "kept", fingerprint: own.fingerprint });
    expect(askedState(server, nm).map((r) => r.signed.path)).toEqual([
      `/api/v1/sharing-key?fingerprint=${own.fingerprint}`,
    ]);
    expect(nm.ctx.stderr.text()).toContain("It kept its own sharing key");
  });

  it("N whose own key is not the registered one takes A's when A's is", async () => {
    const server = createFakePairingServer();
    const stale = await sharingKeyEntry();
    const shared = await sharingKeyEntry();
    server.sharingKey = { publicKey: shared.publicKey, fingerprint: shared.fingerprint };
    const nm = newMachine(server, { entries: { [SHARING_KEY_ACCOUNT]: stale.entry } });
    const a = approverWithSharingKey(server, shared);
    const outcome = await pairBoth(server, nm, a);

    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBe(shared.entry);
    expect(outcome.sharingKey).toEqual({ how: "replaced", fingerprint: shared.fingerprint });
  });

  it("when neither key is the registered one, N keeps its own", async () => {
    const server = createFakePairingServer();
    const own = await sharingKeyEntry();
    const third = await sharingKeyEntry();
    server.sharingKey = { publicKey: third.publicKey, fingerprint: third.fingerprint };
    const nm = newMachine(server, { entries: { [SHARING_KEY_ACCOUNT]: own.entry } });
    const a = approverWithSharingKey(server, await sharingKeyEntry());
    const outcome = await pairBoth(server, nm, a);

    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBe(own.entry);
    expect(outcome.sharingKey).toEqual({ how: "ignored", fingerprint: own.fingerprint });
  });

  it("A without a sharing key: the wrapping key alone, as before, and N's sharing key untouched", async () => {
    const server = createFakePairingServer();
    const own = await sharingKeyEntry();
    const nm = newMachine(server, { entries: { [SHARING_KEY_ACCOUNT]: own.entry } });
    const asked: string[] = [];
    const a = approver(server, true, {
      prompts: {
        confirm: (question) => {
          asked.push(question);
          return Promise.resolve(true);
        },
      },
    });
    const outcome = await pairBoth(server, nm, a);

    expect(sealedBytes(server)).toBe(64);
    expect(asked).toEqual(['Send this machine\'s wrapping key to "new-laptop"?']);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBe(own.entry);
    expect(outcome.sharingKey).toEqual({ how: "none" });
    expect(askedState(server, nm)).toEqual([]);
    expect(a.ctx.stderr.text()).toContain("receives this machine's wrapping key once");
    expect(nm.ctx.stderr.text()).not.toContain("sharing key");
  });

  it("an unfinished rotate-sharing-key: refused before any request, on both machines", async () => {
    const server = createFakePairingServer();
    const pending = { [PENDING_SHARING_KEY_ACCOUNT]: (await sharingKeyEntry()).entry };
    const a = approver(server, true, {
      entries: { [WRAPPING_KEY_ACCOUNT]: wrappingKeyEntry(), ...pending },
    });
    expect(await runCli(["env", "pair", "ABCDEF"], a.ctx)).toBe(1);
    expect(a.ctx.stderr.text()).toContain("LK_PAIRING_FAILED");
    expect(a.ctx.stderr.text()).toContain("latchkey env rotate-sharing-key");
    const nm = newMachine(server, { entries: pending });
    expect(await runCli(["pair"], nm.ctx)).toBe(1);
    expect(nm.ctx.stderr.text()).toContain("LK_PAIRING_FAILED");
    expect(nm.ctx.stderr.text()).toContain("latchkey env rotate-sharing-key");
    expect(server.requests).toEqual([]);
  });

  it("a rotate-sharing-key started on N while it paired: the wrapping key is adopted, the sharing key is not stored", async () => {
    const server = createFakePairingServer();
    const shared = await sharingKeyEntry();
    const started = await sharingKeyEntry();
    const nm = newMachine(server);
    const a = approverWithSharingKey(server, shared);
    server.intercept = async (r) => {
      if (r.token === nm.token && r.path.endsWith("/consume")) {
        await nm.keystore.set(PENDING_SHARING_KEY_ACCOUNT, started.entry);
      }
      return undefined;
    };
    const { exit, code } = await startPair(server, nm);
    expect(await runCli(["env", "pair", code], a.ctx)).toBe(0);
    expect(await exit).toBe(1);
    const nText = nm.ctx.stderr.text();
    expect(nText).toContain("adopted the wrapping key, but not the sharing key");
    expect(nText).toContain("LK_PAIRING_FAILED");
    expect(nText).toContain("latchkey env rotate-sharing-key");
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBe(a.key);
    expect(await nm.keystore.get(SHARING_KEY_ACCOUNT)).toBeNull();
    expect(await nm.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBe(started.entry);
  });
});

describe("the approving machine refuses before any request", () => {
  async function refusedBeforeNetwork(
    a: PairingMachine,
    server: FakePairingServer,
    args: string[],
    code: string,
  ) {
    const exitCode = await runCli(["env", "pair", ...args], a.ctx);
    expect(a.ctx.stderr.text()).toContain(code);
    expect(server.requests).toEqual([]);
    return exitCode;
  }

  it("a malformed code: LK_USAGE", async () => {
    const server = createFakePairingServer();
    for (const bad of ["ABC12", "ABCDE0", "ABCDEFG", "ABC DEI"]) {
      const a = approver(server, true);
      expect(await refusedBeforeNetwork(a, server, [bad], "LK_USAGE")).toBe(2);
    }
  });

  it("no terminal and no --yes: LK_NOT_INTERACTIVE", async () => {
    const server = createFakePairingServer();
    const a = approver(server, null);
    expect(await refusedBeforeNetwork(a, server, ["ABCDEF"], "LK_NOT_INTERACTIVE")).toBe(2);
  });

  it("no wrapping key: nothing to share", async () => {
    const server = createFakePairingServer();
    const a = approver(server, true, { entries: {} });
    await refusedBeforeNetwork(a, server, ["ABCDEF"], "LK_PAIRING_FAILED");
    expect(a.ctx.stderr.text()).toContain("nothing to share");
  });

  it("an unfinished rotate-key: refused, on both machines", async () => {
    const server = createFakePairingServer();
    const pending = { [PENDING_WRAPPING_KEY_ACCOUNT]: wrappingKeyEntry() };
    const a = approver(server, true, { entries: { [WRAPPING_KEY_ACCOUNT]: wrappingKeyEntry(), ...pending } });
    await refusedBeforeNetwork(a, server, ["ABCDEF"], "LK_PAIRING_FAILED");
    expect(a.ctx.stderr.text()).toContain("latchkey env rotate-key");
    const nm = newMachine(server, { entries: pending });
    expect(await runCli(["pair"], nm.ctx)).toBe(1);
    expect(nm.ctx.stderr.text()).toContain("LK_PAIRING_FAILED");
    expect(server.requests).toEqual([]);
  });

  it("an unknown code is LK_PAIRING_NOT_FOUND from the server, nothing else sent", async () => {
    const server = createFakePairingServer();
    const a = approver(server, true);
    expect(await runCli(["env", "pair", "ABCDEF"], a.ctx)).toBe(1);
    expect(a.ctx.stderr.text()).toContain("LK_PAIRING_NOT_FOUND");
    expect(server.requests.map((r) => r.path)).toEqual(["/pairings/join"]);
  });
});

describe("every way of stopping revokes the pairing and sends no key", () => {
  it("A answers no: revoked; N stops with LK_PAIRING_FAILED and has no key", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, false);
    const { exit, code } = await startPair(server, nm);
    expect(await runCli(["env", "pair", code], a.ctx)).toBe(130);
    expect(a.ctx.stderr.text()).toContain("Not approved: nothing was sent.");
    expect(await exit).toBe(1);
    expect(nm.ctx.stderr.text()).toContain("LK_PAIRING_FAILED");
    expect(nm.ctx.stderr.text()).toContain("The pairing was revoked");
    expect(server.status()).toBe("revoked");
    expect(sent(server, a.token, "/approve")).toEqual([]);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBeNull();
  });

  it("Ctrl-C on N while it waits for A to join: revoked, exit 130", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const { exit } = await startPair(server, nm);
    await until(() => nm.listeners() === 1, "N listens for Ctrl-C");
    nm.interrupt();
    expect(await exit).toBe(130);
    expect(server.status()).toBe("revoked");
    expect(nm.ctx.stderr.text()).toContain("LK_CANCELLED");
    expect(nm.ctx.stderr.text()).toContain("The pairing was revoked on the server.");
    expect(nm.listeners()).toBe(0);
  });

  it("Ctrl-C on A while it waits for N to reveal: revoked", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, true);
    // N never reveals: its reveal requests are held.
    server.intercept = (r) =>
      r.path.endsWith("/reveal") ? new Promise<Response>(() => undefined) : undefined;
    const { exit, code } = await startPair(server, nm);
    const approving = runCli(["env", "pair", code], a.ctx);
    await until(
      () => server.status() === "joined" && a.listeners() === 1 && a.ctx.stderr.text().includes("Joined"),
      "A waits for the reveal",
    );
    a.interrupt();
    expect(await approving).toBe(130);
    expect(server.status()).toBe("revoked");
    expect(sent(server, a.token, "/approve")).toEqual([]);
    nm.interrupt();
    await exit;
  });

  it("the timeout on N: revoked, LK_PAIRING_FAILED naming --timeout", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server, { frozenClock: false });
    const { exit } = await startPair(server, nm, ["--timeout", "20s"]);
    expect(await exit).toBe(1);
    expect(nm.ctx.stderr.text()).toContain("LK_PAIRING_FAILED");
    expect(nm.ctx.stderr.text()).toContain("within --timeout 20s");
    expect(server.status()).toBe("revoked");
  });

  it("a key that does not match N's commitment: A revokes, sends nothing, warns of a relay", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, true);
    // A relay swaps N's revealed key for its own after the fact.
    const relayKey = toBase64(new Uint8Array([4, ...new Uint8Array(64).fill(7)]));
    server.intercept = (r) => {
      if (r.token === a.token && r.method === "GET") {
        const row = [...server.pairings.values()][0]!;
        if (row.view.status === "revealed") {
          const forged: PairingView = { ...row.view, newDeviceKey: relayKey };
          row.view = forged;
        }
      }
      return undefined;
    };
    const { exit, code } = await startPair(server, nm);
    expect(await runCli(["env", "pair", code], a.ctx)).toBe(1);
    const aText = a.ctx.stderr.text();
    expect(aText).toContain("LK_PAIRING_FAILED");
    expect(aText).toContain("does not match what it committed to");
    expect(aText).toContain("relaying");
    expect(digitsOf(aText)).toBeUndefined();
    expect(sent(server, a.token, "/approve")).toEqual([]);
    expect(server.status()).toBe("revoked");
    expect(await exit).toBe(1);
  });
});

describe("once the key is handed over", () => {
  it("a sealed key that does not open is LK_PAIRING_FAILED, with no key adopted and no revocation of a consumed pairing", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const a = approver(server, true);
    server.intercept = (r) => {
      if (!r.path.endsWith("/consume")) return undefined;
      const row = [...server.pairings.values()][0]!;
      row.view.status = "consumed";
      const sealedKey = toBase64(new Uint8Array(64).fill(1));
      return signedAnswer(r, { pairingId: row.view.pairingId, sealedKey });
    };
    const { exit, code } = await startPair(server, nm);
    expect(await runCli(["env", "pair", code], a.ctx)).toBe(0);
    expect(await exit).toBe(1);
    const nText = nm.ctx.stderr.text();
    expect(nText).toContain("LK_PAIRING_FAILED");
    expect(nText).toContain("does not open with this pairing's keys");
    expect(nText).not.toContain("revoke the pairing");
    expect(sent(server, nm.token, "/revoke")).toEqual([]);
    expect(await nm.keystore.get(WRAPPING_KEY_ACCOUNT)).toBeNull();
  });
});

describe("--list and --revoke-all", () => {
  it("list the account's pairings (JSON as the server gives them) and revoke the unfinished ones", async () => {
    const server = createFakePairingServer();
    const nm = newMachine(server);
    const { exit } = await startPair(server, nm, ["--label", "spare"]);
    const other = newMachine(server, { tty: false });
    expect(await runCli(["pair", "--list", "--json"], other.ctx)).toBe(0);
    expect(JSON.parse(other.ctx.stdout.text())).toMatchObject({
      pairings: [{ status: "pending", label: "spare" }],
    });
    expect(await runCli(["pair", "--revoke-all"], other.ctx)).toBe(0);
    expect(other.ctx.stderr.text()).toContain("Revoked 1 unfinished pairing.");
    expect(await exit).toBe(1);
    expect(nm.ctx.stderr.text()).toContain("The pairing was revoked");
    const again = newMachine(server, { tty: false });
    expect(await runCli(["pair", "--revoke-all", "--json"], again.ctx)).toBe(0);
    expect(JSON.parse(again.ctx.stdout.text())).toEqual({ revoked: 0 });
  });

  it("refuse to be combined with each other or with --label and --timeout, before any request", async () => {
    const server = createFakePairingServer();
    for (const args of [
      ["--list", "--revoke-all"],
      ["--list", "--label", "x"],
      ["--revoke-all", "--timeout", "1m"],
    ]) {
      const m = newMachine(server);
      expect(await runCli(["pair", ...args], m.ctx)).toBe(2);
      expect(m.ctx.stderr.text()).toContain("cannot be used together");
    }
    expect(server.requests).toEqual([]);
  });
});
