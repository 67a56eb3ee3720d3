// rotateSharingKey against a fake of the sharing-key and step-up routes (test/support/sharing-key-server.ts): the
// warning lists what is lost, only the exact word ROTATE goes on, the upload carries a rotate proof, the pending key
// is stored before the upload and promoted after it, and a run stopped at any step is finished by the next one.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LatchkeyError, generateX25519KeyPair, sharingKeyFingerprint, toBase64 } from "@latchkey/core";
import {
  fakeSharingServer,
  sharingMachine,
  type FakeSharingServer,
  type SharingMachine,
} from "../../test/support/sharing-key-server.js";
import { ROTATE_CONFIRMATION, rotateSharingKey } from "./rotate.js";
import { PENDING_SHARING_KEY_ACCOUNT, SHARING_KEY_ACCOUNT, readSharingKey } from "./sharing-key.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-sharing-rotate-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

const IMPACT = [
  {
    orgId: "org-1",
    slug: "acme",
    vaults: [
      { vaultId: "0b9c7d2e-0000-4000-8000-000000000001", name: "billing" },
      { vaultId: "0b9c7d2e-0000-4000-8000-000000000002", name: "web" },
    ],
  },
  {
    orgId: "org-2",
    slug: "beta",
    vaults: [{ vaultId: "0b9c7d2e-0000-4000-8000-000000000003", name: "api" }],
  },
];

/** A machine whose registered sharing key is its own, in two organisations. */
async function registeredMachine(
  options: {
    typed?: string[];
    tty?: boolean;
    onStep?: (step: string) => void;
    server?: FakeSharingServer;
  } = {},
): Promise<{ m: SharingMachine; privateKey: string }> {
  const pair = await generateX25519KeyPair();
  const server = options.server ?? fakeSharingServer();
  server.key = {
    publicKey: toBase64(pair.publicKey),
    fingerprint: await sharingKeyFingerprint(pair.publicKey),
  };
  server.impact = structuredClone(IMPACT);
  const privateKey = toBase64(pair.privateKey);
  const m = sharingMachine(root, `m${++n}`, {
    server,
    stored: { [SHARING_KEY_ACCOUNT]: privateKey },
    ...(options.typed === undefined ? {} : { typed: options.typed }),
    ...(options.tty === undefined ? {} : { tty: options.tty }),
    ...(options.onStep === undefined ? {} : { onStep: options.onStep }),
  });
  return { m, privateKey };
}

const writes = (m: SharingMachine) =>
  m.server.seen.filter((s) => s.method !== "GET").map((s) => `${s.method} ${s.path}`);

describe("rotateSharingKey", () => {
  it("warns with the orgs and vaults lost, takes ROTATE and the password, uploads, promotes", async () => {
    const { m, privateKey } = await registeredMachine({ typed: [ROTATE_CONFIRMATION] });
    const oldFingerprint = m.server.key!.fingerprint;
    const outcome = await rotateSharingKey(m.ctx);

    const stderr = m.ctx.stderr.text();
    expect(stderr).toContain(`(${oldFingerprint.slice(0, 16)}…, the one this machine holds)`);
    expect(stderr).toContain("acme: billing (0b9c7d2e-0000-4000-8000-000000000001), web (");
    expect(stderr).toContain("beta: api (0b9c7d2e-0000-4000-8000-000000000003)");
    // The warning came before the word was asked for, and the password after it.
    expect(m.asked).toEqual(["Type ROTATE to replace your sharing key", "Password"]);

    const key = await readSharingKey(m.keystore);
    expect(toBase64(key!.privateKey)).not.toBe(privateKey);
    expect(m.server.key?.fingerprint).toBe(key!.fingerprint);
    expect(await m.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBeNull();
    expect(outcome).toEqual({
      kind: "rotated",
      server: "https://lk.sharing.example",
      fingerprint: key!.fingerprint,
      previousFingerprint: oldFingerprint,
      orgs: IMPACT,
      wrappedKeysDeleted: 3,
    });
    const upload = m.server.seen.find((s) => s.path === "/api/v1/sharing-key/rotate")!;
    expect(m.server.proofs.get(upload.proof!)).toEqual({ scope: "vault:public-key:rotate", spent: true });
    expect(JSON.parse(upload.body)).toEqual({ publicKey: toBase64(key!.publicKey) });
    expect(m.steps).toEqual(["sharing-key-pending-stored", "sharing-key-uploaded", "sharing-key-promoted"]);
    for (const seen of m.server.seen) expect(seen.body).not.toContain(toBase64(key!.privateKey));
  });

  it("anything but the exact word ROTATE cancels before any step-up or change", async () => {
    for (const word of ["rotate", "ROTATE ", " ROTATE", "yes", "", "ROTATE\n"]) {
      const { m, privateKey } = await registeredMachine({ typed: [word] });
      const before = structuredClone(m.server.key);
      const error = await rejection(rotateSharingKey(m.ctx));
      expect(error.code, JSON.stringify(word)).toBe("LK_CANCELLED");
      expect(error.message).toContain("nothing was changed");
      expect(writes(m)).toEqual([]);
      expect(m.asked).toEqual(["Type ROTATE to replace your sharing key"]);
      expect(m.server.key).toEqual(before);
      expect(m.server.impact).toEqual(IMPACT);
      expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(privateKey);
      expect(await m.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBeNull();
      expect(m.steps).toEqual([]);
    }
  });

  it("without a terminal it is LK_NOT_INTERACTIVE and changes nothing", async () => {
    const { m, privateKey } = await registeredMachine({ tty: false, typed: [ROTATE_CONFIRMATION] });
    const error = await rejection(rotateSharingKey(m.ctx));
    expect(error.code).toBe("LK_NOT_INTERACTIVE");
    expect(error.hint).toContain("no --yes");
    expect(writes(m)).toEqual([]);
    expect(m.asked).toEqual([]);
    expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(privateKey);
  });

  it("a wrong password leaves everything as it was", async () => {
    const pair = await generateX25519KeyPair();
    const server = fakeSharingServer();
    server.key = {
      publicKey: toBase64(pair.publicKey),
      fingerprint: await sharingKeyFingerprint(pair.publicKey),
    };
    const m = sharingMachine(root, `m${++n}`, {
      server,
      stored: { [SHARING_KEY_ACCOUNT]: toBase64(pair.privateKey) },
      typed: [ROTATE_CONFIRMATION],
      passwords: ["wrong", "wrong", "wrong"],
    });
    expect((await rejection(rotateSharingKey(m.ctx))).code).toBe("LK_STEP_UP_FAILED");
    expect(m.server.seen.some((s) => s.path === "/api/v1/sharing-key/rotate")).toBe(false);
    expect(await m.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBeNull();
    expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(toBase64(pair.privateKey));
  });

  it("an answer lost after the server took the key: the rerun only promotes, without asking anything", async () => {
    const { m } = await registeredMachine({ typed: [ROTATE_CONFIRMATION] });
    m.server.afterWrite = () => {
      throw new TypeError("fetch failed");
    };
    const error = await rejection(rotateSharingKey(m.ctx));
    expect(error.message).toContain("kept as pending");
    const pending = await readSharingKey(m.keystore, PENDING_SHARING_KEY_ACCOUNT);
    expect(m.server.key?.fingerprint).toBe(pending!.fingerprint);

    m.server.afterWrite = undefined;
    const asked = m.asked.length;
    const rerun = await rotateSharingKey(m.ctx);
    expect(rerun).toEqual({
      kind: "recovered",
      server: "https://lk.sharing.example",
      fingerprint: pending!.fingerprint,
    });
    expect(m.asked.length).toBe(asked);
    expect((await readSharingKey(m.keystore))?.fingerprint).toBe(pending!.fingerprint);
    expect(await m.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBeNull();
  });

  it("stopped at every step, a rerun finishes with one key on both sides", async () => {
    for (const stopAt of ["sharing-key-pending-stored", "sharing-key-uploaded", "sharing-key-promoted"]) {
      const { m } = await registeredMachine({
        typed: [ROTATE_CONFIRMATION, ROTATE_CONFIRMATION],
        onStep: (step) => {
          if (step === stopAt) throw new Error(`stopped at ${step}`);
        },
      });
      await expect(rotateSharingKey(m.ctx)).rejects.toThrow(`stopped at ${stopAt}`);
      const pending = await readSharingKey(m.keystore, PENDING_SHARING_KEY_ACCOUNT);
      expect(pending, stopAt).not.toBeNull();

      const rerun = sharingMachine(root, `m${++n}`, {
        server: m.server,
        stored: Object.fromEntries(
          await Promise.all(
            [SHARING_KEY_ACCOUNT, PENDING_SHARING_KEY_ACCOUNT].map(
              async (account) => [account, (await m.keystore.get(account))!] as const,
            ),
          ),
        ),
        typed: [ROTATE_CONFIRMATION],
      });
      const outcome = await rotateSharingKey(rerun.ctx);
      // Stopped before the upload: the rerun rotates again, with the same pending key (it never left the machine).
      expect(outcome.kind, stopAt).toBe(stopAt === "sharing-key-pending-stored" ? "rotated" : "recovered");
      const key = await readSharingKey(rerun.keystore);
      expect(key?.fingerprint, stopAt).toBe(pending!.fingerprint);
      expect(m.server.key?.fingerprint, stopAt).toBe(pending!.fingerprint);
      expect(await rerun.keystore.get(PENDING_SHARING_KEY_ACCOUNT), stopAt).toBeNull();
    }
  });

  it("on a machine that does not hold the registered key, says so before replacing it", async () => {
    const server = fakeSharingServer();
    const elsewhere = await generateX25519KeyPair();
    server.key = {
      publicKey: toBase64(elsewhere.publicKey),
      fingerprint: await sharingKeyFingerprint(elsewhere.publicKey),
    };
    const m = sharingMachine(root, `m${++n}`, { server, typed: [ROTATE_CONFIRMATION] });
    const outcome = await rotateSharingKey(m.ctx);
    expect(m.ctx.stderr.text()).toContain("which this machine does not hold: another machine's");
    expect(m.ctx.stderr.text()).toContain("No organisation has shared a vault with your current key");
    expect(outcome.kind).toBe("rotated");
    expect(server.key.fingerprint).toBe((await readSharingKey(m.keystore))!.fingerprint);
  });
});
