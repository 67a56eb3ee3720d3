// A relay between the new machine N and the real server (docs/pairing.md, "The commitment"): a loopback HTTP proxy
// in front of the server (its PUBLIC_URL), which sees N's bearer token on the wire and so can re-sign whatever it
// changes in N's answers (docs/sync-protocol.md). Two relays:
// - one that commits: it swaps N's commitment at create for one to its own P-256 key and nonce, reveals those,
//   and shows N its own values back. The server's check passes; the 6 digits A shows differ from N's. If the
//   person says yes anyway, the sealed key is the relay's to open, not N's: N fails cleanly and adopts nothing.
//   The relay got exactly that one try: one pairing, whose digits differed;
// - one that does not commit: it lets N's reveal through and shows A its own key and nonce afterwards. A checks
//   them against the commitment it saw when it joined, refuses and revokes, even with --yes.
// core's pairing.test.ts covers the odds of a relay's guess statistically; here each relay is played once.
import { randomBytes } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fromBase64,
  generatePairingKeyPair,
  openPairingKey,
  pairingCommitment,
  toBase64,
  type PairingKeyPair,
} from "@latchkey/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  collect,
  createUser,
  latchkey,
  signAnswer,
  startLatchkey,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import {
  APPROVE_QUESTION,
  APPROVER_DIGITS,
  expectNotPaired,
  listPairings,
  NEW_MACHINE_DIGITS,
  ok,
  onTerminal,
  pairingAudit,
  shown,
  startPairing,
  wrappingKeyOf,
} from "./support/pairing.js";
import { projectDir } from "./support/teams.js";
import { signedInMachine } from "./support/machines.js";

const USER = { email: "pairing-relay@example.com", password: "pairing relay password for e2e" };
const SECRETS = { API_KEY: "k-relay" };
const PAIRINGS = "/api/v1/pairings";

/** What the relay does to the pairing N creates next. */
type RelayMode = "pass" | "commit" | "late";

/** What the relay learnt and did. */
interface Relayed {
  /** Pairings N created while the relay was in a substituting mode. */
  creates: number;
  /** N's bearer token (seen on the wire). */
  newDeviceToken?: string;
  pairingId?: string;
  code?: string;
  label?: string;
  /** N's own commitment, key and nonce, which the relay hides from the server. */
  victim: { commitment?: string; publicKey?: string; nonce?: string };
  /** A's ephemeral key, as the views carry it. */
  approverKey?: string;
  /** The sealed key the server handed N, as the relay saw it go by. */
  sealedKey?: string;
  /** Answers to A that the relay rewrote. */
  rewrittenForApprover: number;
}

interface Relay {
  url: string;
  mode: RelayMode;
  /** The relay's own key pair and nonce: what it substitutes for N's. */
  readonly keyPair: PairingKeyPair;
  readonly nonce: Uint8Array;
  relayed: Relayed;
  setTarget(url: string): void;
  close(): Promise<void>;
}

const fresh = (): Relayed => ({ creates: 0, victim: {}, rewrittenForApprover: 0 });

async function startRelay(): Promise<Relay> {
  const keyPair = await generatePairingKeyPair();
  const nonce = new Uint8Array(randomBytes(32));
  const own = {
    commitment: toBase64(await pairingCommitment(keyPair.publicKey, nonce)),
    publicKey: toBase64(keyPair.publicKey),
    nonce: toBase64(nonce),
  };
  let target = "";
  const relay: Relay = {
    url: "",
    mode: "pass",
    keyPair,
    nonce,
    relayed: fresh(),
    setTarget: (url) => (target = url),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  /** A view of N's pairing as N must see it: its own commitment, key and nonce where the relay put its own. */
  const asNewDeviceSees = (view: Record<string, unknown>): Record<string, unknown> => {
    const { victim } = relay.relayed;
    if (typeof view.approverKey === "string") relay.relayed.approverKey = view.approverKey;
    return {
      ...view,
      ...(view.commitment === own.commitment ? { commitment: victim.commitment } : {}),
      ...(view.newDeviceKey === own.publicKey ? { newDeviceKey: victim.publicKey } : {}),
      ...(view.nonce === own.nonce ? { nonce: victim.nonce } : {}),
    };
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const method = req.method ?? "GET";
      const auth = req.headers.authorization;
      const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
      const requestId = String(req.headers["x-latchkey-request-id"] ?? "");
      const state = relay.relayed;
      const fromNewDevice = token !== undefined && token === state.newDeviceToken;
      const ofPairing = (step: string) =>
        state.pairingId !== undefined && path === `${PAIRINGS}/${state.pairingId}${step}`;
      let body = Buffer.concat(chunks);

      // What goes to the server.
      const isCreate = method === "POST" && path === PAIRINGS && relay.mode !== "pass" && state.creates === 0;
      if (isCreate) {
        state.creates++;
        state.newDeviceToken = token;
        const created = JSON.parse(body.toString("utf8")) as { label: string; commitment: string };
        state.label = created.label;
        if (relay.mode === "commit") {
          state.victim.commitment = created.commitment;
          body = Buffer.from(JSON.stringify({ ...created, commitment: own.commitment }));
        }
      }
      if (relay.mode === "commit" && fromNewDevice && method === "POST" && ofPairing("/reveal")) {
        const revealed = JSON.parse(body.toString("utf8")) as { publicKey: string; nonce: string };
        state.victim.publicKey = revealed.publicKey;
        state.victim.nonce = revealed.nonce;
        body = Buffer.from(JSON.stringify({ publicKey: own.publicKey, nonce: own.nonce }));
      }

      const headers: IncomingHttpHeaders = { ...req.headers, "content-length": String(body.length) };
      const out = request(new URL(path, target), { method, headers }, (answer) => {
        const answered: Buffer[] = [];
        answer.on("data", (c: Buffer) => answered.push(c));
        answer.on("end", () => {
          const status = answer.statusCode ?? 502;
          let reply = Buffer.concat(answered);
          const replyHeaders = { ...answer.headers };
          const rewrite = (change: (json: Record<string, unknown>) => Record<string, unknown>) => {
            reply = Buffer.from(JSON.stringify(change(JSON.parse(reply.toString("utf8")) as never)));
            replyHeaders["x-latchkey-signature"] = signAnswer(
              token!,
              { method, path, requestId },
              status,
              reply,
            );
          };
          if (status === 200 || status === 201) {
            if (isCreate) {
              const created = JSON.parse(reply.toString("utf8")) as { pairingId: string; code: string };
              state.pairingId = created.pairingId;
              state.code = created.code;
            } else if (relay.mode === "commit" && fromNewDevice && (ofPairing("") || ofPairing("/reveal"))) {
              rewrite(asNewDeviceSees);
            } else if (relay.mode === "commit" && fromNewDevice && ofPairing("/consume")) {
              state.sealedKey = String(
                (JSON.parse(reply.toString("utf8")) as { sealedKey: string }).sealedKey,
              );
            } else if (relay.mode === "late" && !fromNewDevice && method === "GET" && ofPairing("")) {
              rewrite((view) => {
                if (view.status !== "revealed") return view;
                state.rewrittenForApprover++;
                return { ...view, newDeviceKey: own.publicKey, nonce: own.nonce };
              });
            }
          }
          delete replyHeaders["transfer-encoding"];
          res.writeHead(status, { ...replyHeaders, "content-length": String(reply.length) });
          res.end(reply);
        });
      });
      out.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}

describe.skipIf(!requirePart("the pairing relay e2e suite", terminalCheck()))(
  "a relay between the machines",
  () => {
    let root: string;
    let relay: Relay;
    let server: LatchkeyServer;
    let a: Machine;
    let aOnN: string;

    const project = (name: string, latchkeyJson?: string): Promise<string> =>
      projectDir(root, name, name, latchkeyJson);

    /** A new machine of the user with a vault of its own (its own wrapping key), signed in through the relay. */
    async function newDevice(name: string): Promise<{ n: Machine; ownDir: string; ownKey: string }> {
      const n = await signedInMachine(root, name, server, USER);
      const ownDir = await project(`${name}-own`);
      ok(await latchkey(n, ["env", "set", "OWN=mine"], { cwd: ownDir }));
      const ownKey = await wrappingKeyOf(n);
      expect(ownKey).not.toBeNull();
      return { n, ownDir, ownKey: ownKey! };
    }

    /** N adopted nothing: its own key alone, its own vault open, A's vault not its to read. */
    async function expectNothingAdopted(n: Machine, ownDir: string, ownKey: string): Promise<void> {
      expect(await wrappingKeyOf(n)).toBe(ownKey);
      expect(await wrappingKeyOf(n, true)).toBeNull();
      expect(ok(await latchkey(n, ["env", "get", "OWN"], { cwd: ownDir })).stdout).toBe("mine");
      await expectNotPaired(n, aOnN);
    }

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-pairing-relay-"));
      relay = await startRelay();
      // The server's public URL is the relay's: every machine's logins, tokens and API calls go through it.
      server = await startLatchkeyServer({ dataDir: join(root, "server"), env: { PUBLIC_URL: relay.url } });
      const listening = await server.waitForEvent("server.listening");
      relay.setTarget(`http://127.0.0.1:${String(listening.port)}`);
      await createUser(server, USER.email, USER.password);
      a = await signedInMachine(root, "a", server, USER);
      const dir = await project("app");
      for (const [key, value] of Object.entries(SECRETS))
        ok(await latchkey(a, ["env", "set", key], { cwd: dir, input: value }));
      ok(await latchkey(a, ["env", "push"], { cwd: dir }));
      aOnN = await project("app-on-n", await readFile(join(dir, "latchkey.json"), "utf8"));
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
      await relay?.close();
      await rm(root, { recursive: true, force: true });
    });

    it("a relay that commits to its own key: the digits differ; a yes seals the key to the relay, N adopts nothing", async () => {
      const { n, ownDir, ownKey } = await newDevice("n");
      relay.mode = "commit";
      relay.relayed = fresh();
      const { terminal: onN, code } = await startPairing(n, USER.password, { label: "n via relay" });
      const onA = onTerminal(a, ["env", "pair", code]);
      await onA.waitFor(APPROVE_QUESTION);
      await onN.waitFor(NEW_MACHINE_DIGITS);
      const onAShows = shown(onA, APPROVER_DIGITS);
      const onNShows = shown(onN, NEW_MACHINE_DIGITS);
      expect(onAShows, onA.output()).toBeDefined();
      expect(onNShows, onN.output()).toBeDefined();
      // Different transcripts: N's key and nonce on N, the relay's on A. (They could agree by a one-in-a-million
      // chance: the relay's single guess.)
      expect(onAShows).not.toBe(onNShows);

      // The person does not compare, and says yes.
      onA.type("y");
      const approved = await onA.exited;
      expect(approved.code, approved.output).toBe(0);
      const failed = await onN.exited;
      expect(failed.code, failed.output).not.toBe(0);
      expect(failed.output).toContain("error LK_PAIRING_FAILED");
      expect(failed.output).toContain("does not open with this pairing's keys");
      expect(failed.output).not.toContain("Paired:");
      await expectNothingAdopted(n, ownDir, ownKey);

      // The sealed key was the relay's to open: A's wrapping key, handed to whoever held the relay's private key.
      const { relayed } = relay;
      const opened = await openPairingKey(
        relay.keyPair,
        {
          label: relayed.label!,
          code: relayed.code!,
          newDeviceKey: relay.keyPair.publicKey,
          approverKey: fromBase64(relayed.approverKey!),
        },
        fromBase64(relayed.sealedKey!),
      );
      expect(Buffer.from(opened.wrappingKey).equals(Buffer.from((await wrappingKeyOf(a))!, "base64"))).toBe(
        true,
      );
      // One try: the relay committed once, to one pairing, and that pairing's digits differed.
      expect(relayed.creates).toBe(1);
      const pairings = await listPairings(a);
      expect(pairings.map((p) => [p.pairingId, p.status])).toEqual([[relayed.pairingId, "consumed"]]);
      // The server saw a pairing whose reveal matched its (the relay's) commitment: it cannot tell.
      expect(pairingAudit(server, relayed.pairingId!)).toEqual([
        "pairing.create",
        "pairing.join",
        "pairing.reveal",
        "pairing.approve",
        "pairing.consume",
      ]);
    }, 120_000);

    it("a relay that swaps the key after A joined, without having committed to it: A refuses and revokes, even with --yes", async () => {
      const { n, ownDir, ownKey } = await newDevice("n2");
      relay.mode = "late";
      relay.relayed = fresh();
      const { terminal: onN, code } = await startPairing(n, USER.password, { label: "n2 via relay" });
      const approving = await collect(startLatchkey(a, ["env", "pair", code, "--yes"]));
      expect(relay.relayed.rewrittenForApprover).toBeGreaterThan(0);
      expect(approving.code, approving.stderr).not.toBe(0);
      expect(approving.stderr).toContain("error LK_PAIRING_FAILED");
      expect(approving.stderr).toContain("does not match what it committed to");
      expect(approving.stderr).toContain("The pairing was revoked on the server.");
      expect(approving.stderr).not.toContain("Approved");

      const failed = await onN.exited;
      expect(failed.code, failed.output).not.toBe(0);
      expect(failed.output).toContain("error LK_PAIRING_FAILED");
      await expectNothingAdopted(n, ownDir, ownKey);
      expect(pairingAudit(server, relay.relayed.pairingId!)).toEqual([
        "pairing.create",
        "pairing.join",
        "pairing.reveal",
        "pairing.revoke",
      ]);
    }, 120_000);
  },
);
