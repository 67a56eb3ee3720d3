// ensureSharingKey against a fake of the sharing-key and step-up routes (test/support/sharing-key-server.ts): the
// first organisation operation registers this machine's key with a set proof, later ones go on without a prompt,
// a key the server has from elsewhere is never replaced (LK_SHARING_KEY_MISMATCH naming the rotation command), and
// the private half never leaves the keystore.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LatchkeyError,
  fromBase64,
  generateX25519KeyPair,
  sharingKeyFingerprint,
  toBase64,
} from "@latchkey/core";
import {
  fakeSharingServer,
  sharingMachine,
  SHARING_PASSWORD,
} from "../../test/support/sharing-key-server.js";
import {
  PENDING_SHARING_KEY_ACCOUNT,
  SHARING_KEY_ACCOUNT,
  ensureSharingKey,
  readSharingKey,
} from "./sharing-key.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-sharing-key-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const name = () => `m${++n}`;

async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

async function registered(): Promise<{ publicKey: string; fingerprint: string }> {
  const { publicKey } = await generateX25519KeyPair();
  return { publicKey: toBase64(publicKey), fingerprint: await sharingKeyFingerprint(publicKey) };
}

describe("ensureSharingKey", () => {
  it("on first use creates a key, registers its public half with a set proof, and then just matches", async () => {
    const m = sharingMachine(root, name());
    const key = await ensureSharingKey(m.ctx);
    expect(m.asked).toEqual(["Password"]);
    expect(m.server.key).toEqual({ publicKey: toBase64(key.publicKey), fingerprint: key.fingerprint });
    expect(await readSharingKey(m.keystore)).toEqual(key);

    const put = m.server.seen.find((s) => s.method === "PUT")!;
    expect(JSON.parse(put.body)).toEqual({ publicKey: toBase64(key.publicKey) });
    expect(m.server.proofs.get(put.proof!)).toEqual({ scope: "vault:public-key:set", spent: true });
    expect(m.ctx.stderr.text()).toContain("registering this machine's");
    // The private half is in the keystore and in no request.
    const secret = toBase64(key.privateKey);
    expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(secret);
    for (const seen of m.server.seen) expect(`${seen.path} ${seen.body}`).not.toContain(secret);

    const before = m.server.seen.length;
    expect(await ensureSharingKey(m.ctx)).toEqual(key);
    expect(m.asked).toEqual(["Password"]);
    expect(m.server.seen.slice(before).map((s) => `${s.method} ${s.path}`)).toEqual([
      `GET /api/v1/sharing-key?fingerprint=${key.fingerprint}`,
    ]);
    expect(
      m.server.seen.every((s) => !s.body.includes(SHARING_PASSWORD) || s.path === "/api/v1/step-up"),
    ).toBe(true);
  });

  it("registers a key the machine already holds (stored before a crash), not a new one", async () => {
    const { privateKey } = await generateX25519KeyPair();
    const m = sharingMachine(root, name(), { stored: { [SHARING_KEY_ACCOUNT]: toBase64(privateKey) } });
    const key = await ensureSharingKey(m.ctx);
    expect(key.privateKey).toEqual(privateKey);
    expect(m.server.key?.fingerprint).toBe(key.fingerprint);
  });

  it("refuses with LK_SHARING_KEY_MISMATCH when the server has another key, and changes nothing", async () => {
    const server = fakeSharingServer();
    const other = await registered();
    server.key = other;
    const holdings: Record<string, string>[] = [
      {},
      { [SHARING_KEY_ACCOUNT]: toBase64((await generateX25519KeyPair()).privateKey) },
    ];
    for (const stored of holdings) {
      const m = sharingMachine(root, name(), { server, stored });
      const before = await m.keystore.get(SHARING_KEY_ACCOUNT);
      const error = await rejection(ensureSharingKey(m.ctx));
      expect(error.code).toBe("LK_SHARING_KEY_MISMATCH");
      expect(error.hint).toContain("latchkey env rotate-sharing-key");
      expect(error.message).toContain(other.fingerprint.slice(0, 16));
      expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(before);
      expect(m.asked).toEqual([]);
    }
    expect(server.key).toEqual(other);
    expect(server.seen.filter((s) => s.method !== "GET")).toEqual([]);
  });

  it("without a terminal, a first use is LK_NOT_INTERACTIVE and registers nothing", async () => {
    const m = sharingMachine(root, name(), { tty: false });
    const error = await rejection(ensureSharingKey(m.ctx));
    expect(error.code).toBe("LK_NOT_INTERACTIVE");
    expect(m.server.key).toBeNull();
    expect(m.server.seen.some((s) => s.method === "PUT")).toBe(false);
  });

  it("when another run registered the same key meanwhile (409), asks again and goes on", async () => {
    const { privateKey, publicKey } = await generateX25519KeyPair();
    const m = sharingMachine(root, name(), { stored: { [SHARING_KEY_ACCOUNT]: toBase64(privateKey) } });
    const mine = { publicKey: toBase64(publicKey), fingerprint: await sharingKeyFingerprint(publicKey) };
    // The other run's upload lands between this run's state and its set.
    m.server.before = (seen) => {
      if (seen.method === "PUT") m.server.key = mine;
    };
    const key = await ensureSharingKey(m.ctx);
    expect(key.fingerprint).toBe(mine.fingerprint);
    expect(m.server.seen.map((s) => s.method)).toEqual(["GET", "GET", "POST", "PUT", "GET"]);
  });

  it("when another key was registered meanwhile (409), refuses with LK_SHARING_KEY_MISMATCH", async () => {
    const m = sharingMachine(root, name());
    const other = await registered();
    m.server.before = (seen) => {
      if (seen.method === "PUT") m.server.key = other;
    };
    const error = await rejection(ensureSharingKey(m.ctx));
    expect(error.code).toBe("LK_SHARING_KEY_MISMATCH");
    expect(m.server.key).toEqual(other);
  });

  it("promotes a pending key the server already has (a rotation that stopped after its upload)", async () => {
    const server = fakeSharingServer();
    const old = await generateX25519KeyPair();
    const pending = await generateX25519KeyPair();
    server.key = {
      publicKey: toBase64(pending.publicKey),
      fingerprint: await sharingKeyFingerprint(pending.publicKey),
    };
    const m = sharingMachine(root, name(), {
      server,
      stored: {
        [SHARING_KEY_ACCOUNT]: toBase64(old.privateKey),
        [PENDING_SHARING_KEY_ACCOUNT]: toBase64(pending.privateKey),
      },
    });
    const key = await ensureSharingKey(m.ctx);
    expect(key.privateKey).toEqual(pending.privateKey);
    expect(await m.keystore.get(SHARING_KEY_ACCOUNT)).toBe(toBase64(pending.privateKey));
    expect(await m.keystore.get(PENDING_SHARING_KEY_ACCOUNT)).toBeNull();
    expect(m.steps).toEqual(["sharing-key-promoted"]);
    expect(m.asked).toEqual([]);
  });

  it("says a keystore entry that is not a key is corrupt", async () => {
    for (const value of ["not base64!", toBase64(new Uint8Array(31))]) {
      const m = sharingMachine(root, name(), { stored: { [SHARING_KEY_ACCOUNT]: value } });
      expect((await rejection(ensureSharingKey(m.ctx))).code).toBe("LK_STORE_CORRUPT");
    }
  });

  it("derives the public half from the stored private half", async () => {
    const pair = await generateX25519KeyPair();
    const m = sharingMachine(root, name(), { stored: { [SHARING_KEY_ACCOUNT]: toBase64(pair.privateKey) } });
    const key = await readSharingKey(m.keystore);
    expect(key?.publicKey).toEqual(pair.publicKey);
    expect(key?.fingerprint).toBe(await sharingKeyFingerprint(fromBase64(toBase64(pair.publicKey))));
  });
});
