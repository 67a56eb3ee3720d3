// The browser's side of a pairing against a fake of the pairing routes that keeps the server's states, with an
// approving machine A made of core's computations as the CLI's `env pair` makes them: the whole run, a reload
// during the wait, the digits both sides show, a relaying server, Cancel, a decline on A, an expired record and a
// sealed key that does not open. The real routes and IndexedDB are driven in Chromium by e2e/dashboard-pairing.
import {
  LatchkeyError,
  fromBase64,
  generatePairingKeyPair,
  isLatchkeyError,
  pairingCommitmentMatches,
  pairingComparisonValue,
  randomKey,
  sealPairingKey,
  toBase64,
  type PairingCreateRequest,
  type PairingKeyPair,
  type PairingStatus,
  type PairingView,
} from "@latchkey/core";
import { describe, expect, it, vi } from "vitest";
import {
  abandon,
  resumePairing,
  startPairing,
  type PairingApi,
  type PairingDeps,
  type PairingProgress,
} from "./flow.js";
import type { PendingPairing, PendingStore } from "./pending-store.js";

/** The pending store in memory (IndexedDB itself is the browser's, exercised in Chromium). */
function memoryStore(): PendingStore & { records: Map<string, PendingPairing> } {
  const records = new Map<string, PendingPairing>();
  return {
    records,
    load: (account) => Promise.resolve(records.get(account) ?? null),
    save: (pairing) => Promise.resolve(void records.set(pairing.account, pairing)),
    remove: (account) => Promise.resolve(void records.delete(account)),
    forgetAll: () => Promise.resolve(records.clear()),
  };
}

const CODE = "K7M2QX";

/** One pairing as the server keeps it, and the approving machine A. */
class FakeServer {
  status: PairingStatus = "pending";
  label = "";
  commitment: Uint8Array = new Uint8Array();
  newDeviceKey: Uint8Array | null = null;
  nonce: Uint8Array | null = null;
  sealedKey: string | null = null;
  approver: PairingKeyPair | null = null;
  readonly calls: string[] = [];
  /** Replaces the answer to the reveal (a relaying server). */
  tamperReveal: ((view: PairingView) => PairingView) | null = null;
  readonly id = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
  readonly expiresAt = new Date(Date.now() + 300_000).toISOString();

  private snapshot(): PairingView {
    return {
      pairingId: this.id,
      status: this.status,
      label: this.label,
      commitment: toBase64(this.commitment),
      newDeviceKey: this.newDeviceKey === null ? null : toBase64(this.newDeviceKey),
      nonce: this.nonce === null ? null : toBase64(this.nonce),
      approverKey: this.approver === null ? null : toBase64(this.approver.publicKey),
      createdAt: new Date().toISOString(),
      expiresAt: this.expiresAt,
    };
  }
  create(body: PairingCreateRequest) {
    this.calls.push("create");
    this.label = body.label;
    this.commitment = fromBase64(body.commitment);
    return Promise.resolve({ pairingId: this.id, code: CODE, expiresAt: this.expiresAt });
  }
  viewOf(): Promise<PairingView> {
    return Promise.resolve(this.snapshot());
  }
  reveal(_id: string, body: { publicKey: string; nonce: string }) {
    this.calls.push("reveal");
    if (this.status !== "joined") return Promise.reject(this.failed());
    this.newDeviceKey = fromBase64(body.publicKey);
    this.nonce = fromBase64(body.nonce);
    this.status = "revealed";
    const view = this.snapshot();
    return Promise.resolve(this.tamperReveal === null ? view : this.tamperReveal(view));
  }
  consume() {
    this.calls.push("consume");
    if (this.status !== "approved" || this.sealedKey === null) return Promise.reject(this.failed());
    const sealedKey = this.sealedKey;
    this.sealedKey = null;
    this.status = "consumed";
    return Promise.resolve({ pairingId: this.id, sealedKey });
  }
  revoke() {
    this.calls.push("revoke");
    this.status = "revoked";
    return Promise.resolve(this.snapshot());
  }
  private failed(): LatchkeyError {
    return new LatchkeyError("LK_PAIRING_FAILED", { details: { status: this.status } });
  }

  /** A runs `latchkey env pair CODE`: joins with an ephemeral key. */
  async join(): Promise<void> {
    this.approver = await generatePairingKeyPair();
    this.status = "joined";
  }
  /** A checks the commitment and computes the digits it shows. */
  async approverDigits(): Promise<string> {
    const ok = await pairingCommitmentMatches(this.commitment, this.newDeviceKey!, this.nonce!);
    expect(ok).toBe(true);
    return pairingComparisonValue({
      code: CODE,
      newDeviceKey: this.newDeviceKey!,
      approverKey: this.approver!.publicKey,
      nonce: this.nonce!,
    });
  }
  /** A approves: seals its keys to N's key. */
  async approve(keys: { wrappingKey: Uint8Array; sharingKey: Uint8Array | null }): Promise<void> {
    const sealed = await sealPairingKey(
      this.approver!,
      {
        label: this.label,
        code: CODE,
        newDeviceKey: this.newDeviceKey!,
        approverKey: this.approver!.publicKey,
      },
      { wrappingKey: keys.wrappingKey.slice(), sharingKey: keys.sharingKey?.slice() ?? null },
    );
    this.sealedKey = toBase64(sealed);
    this.status = "approved";
  }
}

/** The fake as the flow's api, with a hook run at each poll (A's next move). */
function apiOf(server: FakeServer, onPoll: () => Promise<void> = () => Promise.resolve()): PairingApi {
  return {
    create: (body) => server.create(body),
    view: async () => {
      server.calls.push("view");
      await onPoll();
      return server.viewOf();
    },
    reveal: (id, body) => server.reveal(id, body),
    consume: () => server.consume(),
    revoke: () => server.revoke(),
  };
}

function deps(api: PairingApi, store: PendingStore, sleep?: PairingDeps["sleep"]): PairingDeps {
  return {
    api,
    store,
    now: () => Date.now(),
    sleep:
      sleep ??
      ((_ms, signal) =>
        signal.aborted ? Promise.reject(new LatchkeyError("LK_CANCELLED")) : Promise.resolve()),
  };
}

const ACCOUNT = "user-1";

describe("pairing a browser", () => {
  it("runs the whole protocol: the code, the same digits as the approver's, and A's keys opened", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    const keys = { wrappingKey: randomKey(), sharingKey: randomKey() };
    const seen: PairingProgress[] = [];
    let approverDigits = "";
    let polls = 0;
    const api = apiOf(server, async () => {
      polls += 1;
      if (polls === 2) await server.join();
      if (polls === 4) {
        approverDigits = await server.approverDigits();
        await server.approve(keys);
      }
    });
    const received = await startPairing(
      deps(api, store),
      ACCOUNT,
      "Browser",
      (p) => seen.push(p),
      new AbortController().signal,
    );
    expect(received.wrappingKey).toEqual(keys.wrappingKey);
    expect(received.sharingKey).toEqual(keys.sharingKey);
    expect(seen[0]).toEqual({ step: "waiting", code: CODE, label: "Browser", expiresAt: server.expiresAt });
    const compare = seen.find((p) => p.step === "compare");
    expect(compare).toMatchObject({ step: "compare", code: CODE, digits: approverDigits });
    expect(approverDigits).toMatch(/^[0-9]{6}$/);
    expect(seen.at(-1)).toEqual({ step: "finishing" });
    expect(server.status).toBe("consumed");
    expect(server.calls).not.toContain("revoke");
    // Consumed: nothing is left in the browser's store.
    expect(store.records.size).toBe(0);
  });

  it("keeps the waiting pairing's private key non-extractable, and a reload continues the same pairing", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    // The first page load is unloaded while it waits: its sleep never returns.
    const forever = () => new Promise<void>(() => undefined);
    void startPairing(
      deps(apiOf(server), store, forever),
      ACCOUNT,
      "Browser",
      () => undefined,
      new AbortController().signal,
    );
    await vi.waitFor(() => {
      expect(store.records.size === 1 && server.calls.includes("view")).toBe(true);
    });
    const record = store.records.get(ACCOUNT)!;
    expect(record.privateKey.extractable).toBe(false);
    await expect(globalThis.crypto.subtle.exportKey("pkcs8", record.privateKey)).rejects.toThrow();
    await expect(globalThis.crypto.subtle.exportKey("jwk", record.privateKey)).rejects.toThrow();

    // The second load finds the record and continues: A joins, the browser reveals and shows the digits; then
    // this load is unloaded too, while the user compares.
    await server.join();
    const shown: PairingProgress[] = [];
    void resumePairing(
      deps(apiOf(server), store, forever),
      ACCOUNT,
      (p) => shown.push(p),
      new AbortController().signal,
    );
    await vi.waitFor(() => {
      expect(shown.some((p) => p.step === "compare")).toBe(true);
    });
    const digits = await server.approverDigits();
    expect(shown.find((p) => p.step === "compare")).toMatchObject({ digits });

    // The third load shows the same digits (computed with the key A joined with, kept before the reveal), and
    // takes the keys once A approves.
    const keys = { wrappingKey: randomKey(), sharingKey: null };
    const again: PairingProgress[] = [];
    const api = apiOf(server, async () => {
      if (again.length > 0 && server.status === "revealed") await server.approve(keys);
    });
    const received = await resumePairing(
      deps(api, store),
      ACCOUNT,
      (p) => again.push(p),
      new AbortController().signal,
    );
    expect(again[0]).toMatchObject({ step: "compare", digits });
    expect(received).not.toBeNull();
    expect(received!.wrappingKey).toEqual(keys.wrappingKey);
    expect(received!.sharingKey).toBeNull();
    expect(server.calls.filter((c) => c === "create")).toHaveLength(1);
    expect(server.calls.filter((c) => c === "reveal")).toHaveLength(1);
    expect(store.records.size).toBe(0);
  });

  it("stops a server that answers the reveal with another key: nothing is taken, the pairing is revoked", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    const relay = await generatePairingKeyPair();
    server.tamperReveal = (view) => ({ ...view, newDeviceKey: toBase64(relay.publicKey) });
    const api = apiOf(server, async () => {
      if (server.status === "pending") await server.join();
    });
    const error = await startPairing(
      deps(api, store),
      ACCOUNT,
      "Browser",
      () => undefined,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_PAIRING_FAILED")).toBe(true);
    expect((error as LatchkeyError).hint).toContain("relaying");
    expect(server.calls).toContain("revoke");
    expect(server.calls).not.toContain("consume");
    expect(store.records.size).toBe(0);
  });

  it("revokes on Cancel and forgets the record", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    const controller = new AbortController();
    const progress: PairingProgress[] = [];
    const api = apiOf(server, () => {
      if (progress.length > 0) controller.abort();
      return Promise.resolve();
    });
    const error = await startPairing(
      deps(api, store),
      ACCOUNT,
      "Browser",
      (p) => progress.push(p),
      controller.signal,
    ).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_CANCELLED")).toBe(true);
    expect(server.status).toBe("revoked");
    expect(store.records.size).toBe(0);
  });

  it("stops when A declines (the pairing revoked there), without revoking it again", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    const api = apiOf(server, async () => {
      if (server.status === "pending") await server.join();
      else if (server.status === "revealed") server.status = "revoked";
    });
    const error = await startPairing(
      deps(api, store),
      ACCOUNT,
      "Browser",
      () => undefined,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_PAIRING_FAILED")).toBe(true);
    expect((error as LatchkeyError).details).toEqual({ status: "revoked" });
    expect(server.calls).not.toContain("revoke");
    expect(store.records.size).toBe(0);
  });

  it("refuses a sealed key that does not open with this pairing's keys", async () => {
    const server = new FakeServer();
    const store = memoryStore();
    const api = apiOf(server, async () => {
      if (server.status === "pending") await server.join();
      else if (server.status === "revealed") {
        await server.approve({ wrappingKey: randomKey(), sharingKey: null });
        // A server that swaps the sealed key for one sealed to another device.
        const other = await generatePairingKeyPair();
        server.sealedKey = toBase64(
          await sealPairingKey(
            server.approver!,
            {
              label: server.label,
              code: CODE,
              newDeviceKey: other.publicKey,
              approverKey: server.approver!.publicKey,
            },
            { wrappingKey: randomKey(), sharingKey: null },
          ),
        );
      }
    });
    const error = await startPairing(
      deps(api, store),
      ACCOUNT,
      "Browser",
      () => undefined,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(isLatchkeyError(error, "LK_PAIRING_FAILED")).toBe(true);
    expect((error as LatchkeyError).message).toContain("do not open");
  });

  it("forgets an expired record instead of continuing it, and abandon revokes a waiting one", async () => {
    const store = memoryStore();
    const keyPair = await generatePairingKeyPair();
    const record: PendingPairing = {
      account: ACCOUNT,
      pairingId: "p",
      code: CODE,
      expiresAt: new Date(Date.now() - 1000).toISOString(),
      label: "Browser",
      privateKey: keyPair.privateKey,
      publicKey: keyPair.publicKey,
      nonce: new Uint8Array(32),
      approverKey: null,
    };
    await store.save(record);
    const server = new FakeServer();
    expect(
      await resumePairing(deps(apiOf(server), store), ACCOUNT, () => undefined, new AbortController().signal),
    ).toBeNull();
    expect(store.records.size).toBe(0);
    expect(server.calls).toEqual([]);

    await store.save({ ...record, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await abandon(deps(apiOf(server), store), ACCOUNT);
    expect(server.calls).toEqual(["revoke"]);
    expect(store.records.size).toBe(0);
  });
});
