// The pure parts of pairing (labels, --timeout, what people read) and the waiting loop both ends share, against
// the in-process fake of the pairing routes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LatchkeyError,
  MAX_PAIRING_LABEL_LENGTH,
  checkSchema,
  pairingLabelSchema,
  type PairingStatus,
  type PairingSummary,
} from "@latchkey/core";
import {
  createFakePairingServer,
  pairingMachine,
  seedPairing,
  type FakePairingServer,
  type PairingMachine,
} from "../../test/support/pairing-server.js";
import {
  FALLBACK_PAIRING_LABEL,
  PAIRING_REVOKE_TIMEOUT_MS,
  defaultPairingLabel,
  formatComparisonValue,
  formatPairingList,
  formatRemaining,
  pairingLabelOption,
  pairingTimeout,
  revokeQuietly,
  waitForPairing,
  watchInterrupts,
} from "./pairing.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-pairing-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function usageError(fn: () => unknown): LatchkeyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_USAGE");
    return error as LatchkeyError;
  }
  throw new Error("expected LK_USAGE");
}

describe("defaultPairingLabel", () => {
  it("is the host name as it is when the server takes it", () => {
    expect(defaultPairingLabel("build-box.example.com")).toBe("build-box.example.com");
    expect(defaultPairingLabel("Ana’s MacBook Pro")).toBe("Ana’s MacBook Pro");
  });

  it("drops control characters and surrounding space, and cuts at 64 characters", () => {
    expect(defaultPairingLabel(" host\u0000na\u001bme\u2028 \n")).toBe("hostname");
    expect(defaultPairingLabel("h".repeat(100))).toBe("h".repeat(MAX_PAIRING_LABEL_LENGTH));
    // A cut that would leave a space at the end is trimmed again.
    expect(defaultPairingLabel(`${"a".repeat(63)} b`)).toBe("a".repeat(63));
  });

  it("drops the bidirectional controls that would make a label read as another name", () => {
    expect(defaultPairingLabel("evil\u202epot-pal\u202c")).toBe("evilpot-pal");
    expect(defaultPairingLabel("\ufeffa\u200eb\u2067c\u2069\u061c")).toBe("abc");
  });

  it("never cuts a character in half (a surrogate pair at the boundary is left out whole)", () => {
    const label = defaultPairingLabel(`${"a".repeat(63)}😀b`);
    expect(label).toBe("a".repeat(63));
  });

  it("falls back to a fixed label when nothing printable is left or there is no host name", () => {
    expect(defaultPairingLabel(undefined)).toBe(FALLBACK_PAIRING_LABEL);
    expect(defaultPairingLabel("")).toBe(FALLBACK_PAIRING_LABEL);
    expect(defaultPairingLabel(" \u0001\u007f\u0085 ")).toBe(FALLBACK_PAIRING_LABEL);
  });

  it("always gives a label the server's schema accepts", () => {
    const samples = [
      "x",
      "\t tab\tbed \t",
      "é".repeat(80),
      "😀".repeat(40),
      "\u009fweird\u0080",
      `${" ".repeat(70)}z`,
      "a\u2029b",
    ];
    for (const sample of samples) {
      const label = defaultPairingLabel(sample);
      expect(checkSchema(pairingLabelSchema, label).ok, JSON.stringify(sample)).toBe(true);
    }
  });
});

describe("pairingLabelOption", () => {
  it("takes a label as given, trimmed", () => {
    expect(pairingLabelOption("  work laptop ")).toBe("work laptop");
  });

  it("refuses a label the server would refuse, instead of cutting what the user chose", () => {
    expect(usageError(() => pairingLabelOption("x".repeat(65))).message).toContain("--label takes 1 to 64");
    usageError(() => pairingLabelOption("   "));
    usageError(() => pairingLabelOption("tab\there"));
  });
});

describe("pairingTimeout", () => {
  it("defaults to a code's life and reads durations", () => {
    expect(pairingTimeout(undefined)).toBe(300_000);
    expect(pairingTimeout("90s")).toBe(90_000);
    expect(pairingTimeout("5m")).toBe(300_000);
  });

  it("refuses what is no duration, and one longer than a code lives", () => {
    expect(usageError(() => pairingTimeout("2")).message).toContain('not "2"');
    expect(usageError(() => pairingTimeout("6m")).message).toContain("longer than a pairing code lives");
    usageError(() => pairingTimeout("1h"));
    usageError(() => pairingTimeout("301s"));
  });
});

describe("what people read", () => {
  it("splits the 6 digits in two groups of three", () => {
    expect(formatComparisonValue("012345")).toBe("012 345");
  });

  it("shows the time left as minutes:seconds, rounding up, never negative", () => {
    expect(formatRemaining(300_000)).toBe("5:00");
    expect(formatRemaining(61_001)).toBe("1:02");
    expect(formatRemaining(999)).toBe("0:01");
    expect(formatRemaining(-5)).toBe("0:00");
  });

  it("lists pairings one per line with the labels quoted, and says so when there are none", () => {
    const pairings: PairingSummary[] = [
      {
        pairingId: "6f1c3c1e-0000-4000-8000-000000000001",
        status: "pending",
        label: "new laptop",
        createdAt: "2030-01-01T00:01:00.000Z",
        expiresAt: "2030-01-01T00:06:00.000Z",
      },
      {
        pairingId: "6f1c3c1e-0000-4000-8000-000000000002",
        status: "consumed",
        label: "ci box",
        createdAt: "2030-01-01T00:00:00.000Z",
        expiresAt: "2030-01-01T00:05:00.000Z",
      },
    ];
    expect(formatPairingList(pairings)).toBe(
      '2030-01-01T00:01:00.000Z  pending   "new laptop"  6f1c3c1e-0000-4000-8000-000000000001\n' +
        '2030-01-01T00:00:00.000Z  consumed  "ci box"  6f1c3c1e-0000-4000-8000-000000000002',
    );
    expect(formatPairingList([])).toContain("No pending pairings");
  });
});

/** A pairing on the fake in `status`, seen from the machine that created it. */
async function pairingIn(status: PairingStatus, tty = false) {
  const server = createFakePairingServer();
  const token = `n-${status}-${tty}`;
  const n = pairingMachine(server, root, { token, tty });
  const pairingId = seedPairing(server, token, status);
  return Promise.resolve({ server, n, pairingId });
}

function waitOn(
  machine: PairingMachine,
  pairingId: string,
  extra: { deadline?: number; waiting?: PairingStatus[]; until?: PairingStatus[] } = {},
) {
  const interrupts = watchInterrupts(machine.ctx);
  return {
    interrupts,
    result: waitForPairing(machine.ctx, {
      pairingId,
      waiting: extra.waiting ?? ["pending"],
      until: extra.until ?? ["joined"],
      message: "Waiting for the other machine",
      deadline: extra.deadline ?? machine.ctx.clock.now() + 300_000,
      timedOut: () => new LatchkeyError("LK_PAIRING_FAILED", { message: "timed out" }),
      interrupts,
      options: {},
    }).finally(() => interrupts.release()),
  };
}

function views(server: FakePairingServer): number {
  return server.requests.filter((r) => r.method === "GET").length;
}

describe("waitForPairing", () => {
  it("polls until the state is one it waits for, then returns that view", async () => {
    const { server, n, pairingId } = await pairingIn("pending");
    let polls = 0;
    server.intercept = () => {
      if (++polls === 3) server.pairings.get(pairingId)!.view.status = "joined";
      return undefined;
    };
    const view = await waitOn(n, pairingId).result;
    expect(view.status).toBe("joined");
    expect(views(server)).toBe(3);
    // Without a terminal the message is printed once, with no spinner.
    expect(n.ctx.stderr.text()).toBe("Waiting for the other machine…\n");
  });

  it("on a terminal draws a spinner with the time left and clears its line at the end", async () => {
    const { server, n, pairingId } = await pairingIn("pending", true);
    server.intercept = () => {
      server.pairings.get(pairingId)!.view.status = "joined";
      return undefined;
    };
    await waitOn(n, pairingId).result;
    const shown = n.ctx.stderr.text();
    expect(shown).toContain("\r\u001b[K⠋ Waiting for the other machine (5:00 left)");
    expect(shown.endsWith("\r\u001b[K")).toBe(true);
  });

  it("a state it cannot go on from is LK_PAIRING_FAILED naming it", async () => {
    for (const status of ["revoked", "expired", "consumed"] as const) {
      const { n, pairingId } = await pairingIn(status);
      const error = await waitOn(n, pairingId).result.catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "LK_PAIRING_FAILED", details: { status } });
    }
  });

  it("gives up at the deadline with the caller's error", async () => {
    const { server, n, pairingId } = await pairingIn("pending");
    const error = await waitOn(n, pairingId, { deadline: n.ctx.clock.now() + 10_000 }).result.catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "LK_PAIRING_FAILED", message: "timed out" });
    // One poll a second: 10 seconds, 11 polls (the first at once), never a tight loop.
    expect(views(server)).toBe(11);
  });

  it("Ctrl-C is LK_CANCELLED at once, also while a request is in flight, and stops listening", async () => {
    const { server, n, pairingId } = await pairingIn("pending");
    server.intercept = () => new Promise<Response>(() => undefined);
    const waiting = waitOn(n, pairingId);
    await new Promise((resolve) => setImmediate(resolve));
    expect(n.listeners()).toBe(1);
    n.interrupt();
    await expect(waiting.result).rejects.toMatchObject({ code: "LK_CANCELLED" });
    expect(n.listeners()).toBe(0);
  });
});

describe("revokeQuietly", () => {
  it("revokes, and says so", async () => {
    const { server, n, pairingId } = await pairingIn("joined");
    expect(await revokeQuietly(n.ctx, pairingId, "2030-01-01T00:05:00.000Z", {})).toBe(true);
    expect(server.status()).toBe("revoked");
    expect(n.ctx.stderr.text()).toContain("The pairing was revoked on the server.");
  });

  it("gives up after its time limit on a server that does not answer, naming the expiry", async () => {
    const { server, n, pairingId } = await pairingIn("joined");
    server.intercept = () => new Promise<Response>(() => undefined);
    const before = n.ctx.clock.now();
    expect(await revokeQuietly(n.ctx, pairingId, "2030-01-01T00:05:00.000Z", {})).toBe(false);
    expect(n.ctx.clock.now() - before).toBe(PAIRING_REVOKE_TIMEOUT_MS);
    expect(n.ctx.stderr.text()).toContain("it expires by itself at 2030-01-01T00:05:00.000Z");
  });

  it("never throws, whatever the server answers", async () => {
    const { n, pairingId } = await pairingIn("consumed");
    expect(await revokeQuietly(n.ctx, pairingId, "2030-01-01T00:05:00.000Z", {})).toBe(false);
  });
});
