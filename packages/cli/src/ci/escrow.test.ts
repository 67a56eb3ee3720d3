// The re-escrow of versioned writes (ci/escrow.ts sendVersion): a push or share to a copy with CI pulls enabled,
// sealed with a key its escrow does not hold, is refused once by the server (409 LK_CI_ESCROW_STALE) and sent
// once more with the escrow of the very key it was sealed with; a second refusal is the error. Against the fake of
// test/support/ci-server.ts, which opens each new version with the escrow as the real server does.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSchema, pushRequestSchema, wrapKeyForRecipient, type CiEscrow } from "@latchkey/core";
import {
  GITHUB_ISSUER,
  ciRoutes,
  escrowedKey,
  fakeCi,
  type FakeCi,
  type FakeCiPolicy,
} from "../../test/support/ci-server.js";
import { memberKeyPair, memberVaultKey, orgTeam, type OrgTeam } from "../../test/support/org-server.js";
import {
  sharingMachine,
  type SeenRequest,
  type SharingMachine,
} from "../../test/support/sharing-key-server.js";
import { runCli } from "../cli.js";
import type { Context, Spawn } from "../context.js";
import { pushVault, shareVault } from "../sync/push.js";
import { loadVaultKey } from "../vault/vault-store.js";
import { enableCi } from "./policy.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-ci-escrow-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function projectDir(): Promise<string> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "web" }));
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT }));
  return dir;
}

const noGh: Spawn = () => Promise.reject(Object.assign(new Error("spawn gh ENOENT"), { code: "ENOENT" }));
const policy = { provider: "github", repo: "acme/web", repoId: "42", ownerId: "7", branches: ["main"] };

/** Enables CI pulls of the copy (the personal one, or `org`'s) on the fake. */
async function enable(machine: SharingMachine, org?: string): Promise<void> {
  const ctx: Context = { ...machine.ctx, spawn: noGh };
  await enableCi(ctx, {
    ...policy,
    environments: [],
    allowForks: false,
    protectedOnly: false,
    ...(org === undefined ? {} : { org }),
  });
}

/** A machine whose personal copy has CI pulls enabled at version 1. */
async function personal(): Promise<{ machine: SharingMachine; ci: FakeCi }> {
  const machine = sharingMachine(root, `m${n}`, { cwd: await projectDir() });
  const ci = await fakeCi();
  machine.server.extra = ciRoutes(machine.server, ci);
  expect(await runCli(["env", "set", "API_KEY=v-1"], machine.ctx)).toBe(0);
  await pushVault(machine.ctx);
  await enable(machine);
  return { machine, ci };
}

/** A team whose organisation copy this maintainer shared, with CI pulls enabled. */
async function team(): Promise<OrgTeam & { ci: FakeCi }> {
  const t = await orgTeam(root, `m${n}`, "maintainer", { cwd: await projectDir() });
  const ci = await fakeCi(t.org);
  t.machine.server.extra = ciRoutes(t.machine.server, ci, t.machine.server.extra);
  expect(await runCli(["env", "set", "API_KEY=v-1"], t.machine.ctx)).toBe(0);
  await shareVault(t.machine.ctx, { org: "acme" });
  await enable(t.machine, "acme");
  return { ...t, ci };
}

/** `ctx` without a terminal: nothing can be asked. */
const noTerminal = (ctx: Context): Context => ({ ...ctx, stdin: { ...ctx.stdin, isTTY: false } });

/** `ctx` on a terminal whose user answers `answer` to every yes/no question, each recorded in `asked`. */
const answering = (ctx: Context, answer: boolean, asked: string[]): Context => ({
  ...ctx,
  prompts: {
    ...ctx.prompts,
    confirm: (message: string) => {
      asked.push(message);
      return Promise.resolve(answer);
    },
  },
});

/** A policy the fake claims for a copy nobody enabled CI on from this machine, its escrow opening nothing. */
async function claimedPolicy(ci: FakeCi): Promise<FakeCiPolicy> {
  return {
    policy: {
      provider: "github",
      issuer: GITHUB_ISSUER,
      repository: "mallory/exfil",
      repositoryId: "1",
      ownerId: "1",
      branches: ["main"],
      environments: [],
      allowForks: false,
      protectedRefsOnly: false,
      audience: ci.defaultAudience,
    },
    escrowedKey: await wrapKeyForRecipient(randomFillSync(new Uint8Array(32)), ci.escrow.publicKey),
    escrowKeyFingerprint: ci.escrow.fingerprint,
    escrowVersion: 1,
  };
}

/** The requests from now on, to read what the next command sends. */
function from(machine: SharingMachine): () => SeenRequest[] {
  const at = machine.server.seen.length;
  return () => machine.server.seen.slice(at);
}

const writes = (seen: SeenRequest[], path: string) =>
  seen.filter((r) => r.method === "PUT" && r.path === path);
const escrowOf = (request: SeenRequest): CiEscrow | undefined =>
  (JSON.parse(request.body) as { escrow?: CiEscrow }).escrow;
const configFetches = (seen: SeenRequest[]) => seen.filter((r) => r.path === "/api/v1/ci/config");

describe("re-escrow of pushes and shares", () => {
  it("a share with a new vault key: refused once, sent once more with the new key's escrow, which the server keeps", async () => {
    const t = await team();
    const next = from(t.machine);
    const shared = await shareVault(t.machine.ctx, { org: "acme", newKey: true });
    const sent = writes(next(), `/api/v1/orgs/acme/vaults/${VAULT}/share`);
    expect(sent).toHaveLength(2);
    expect(escrowOf(sent[0]!)).toBeUndefined();
    expect(configFetches(next())).toHaveLength(1);
    const escrow = escrowOf(sent[1]!)!;
    expect(escrow.escrowKeyFingerprint).toBe(t.ci.escrow.fingerprint);
    // The escrow opens to the key the new version is sealed with: the one the members got.
    const copy = t.org.copies.get(VAULT)!;
    const newKey = await memberVaultKey(copy, t.bob, t.org, VAULT);
    expect(await escrowedKey(t.ci, escrow.escrowedKey)).toEqual(newKey);
    expect(t.ci.policies.get(`acme:${VAULT}`)).toMatchObject({
      escrowedKey: escrow.escrowedKey,
      escrowVersion: shared.version,
    });
  });

  it("org rotate-keys carries the new key's escrow the same way", async () => {
    const t = await team();
    const next = from(t.machine);
    expect(await runCli(["org", "rotate-keys", "acme"], t.machine.ctx)).toBe(0);
    const sent = writes(next(), `/api/v1/orgs/acme/vaults/${VAULT}/share`);
    expect(sent.map((r) => escrowOf(r) !== undefined)).toEqual([false, true]);
    const copy = t.org.copies.get(VAULT)!;
    expect(await escrowedKey(t.ci, escrowOf(sent[1]!)!.escrowedKey)).toEqual(
      await memberVaultKey(copy, t.bob, t.org, VAULT),
    );
    expect(t.ci.policies.get(`acme:${VAULT}`)).toMatchObject({ escrowVersion: copy.version });
  });

  it("a push after the server's escrow key changed: refused until accepted, then re-escrowed for the new escrow key, the local vault key", async () => {
    const { machine, ci } = await personal();
    ci.escrow = await memberKeyPair();
    expect(await runCli(["env", "set", "API_KEY=v-2"], machine.ctx)).toBe(0);
    const refused = from(machine);
    // Agreed for the old escrow key only: a new one is the user's call, not the server's.
    await expect(pushVault(noTerminal(machine.ctx))).rejects.toMatchObject({
      code: "LK_CI_ESCROW_UNCONFIRMED",
      message: expect.stringContaining(`the key of vault ${VAULT}`),
    });
    expect(writes(refused(), `/api/v1/vaults/${VAULT}`).map(escrowOf)).toEqual([undefined]);
    expect(await runCli(["env", "ci", "show", "--accept"], machine.ctx)).toBe(0);
    const next = from(machine);
    expect(await pushVault(machine.ctx)).toMatchObject({ version: 2, pushed: true });
    const sent = writes(next(), `/api/v1/vaults/${VAULT}`);
    expect(sent).toHaveLength(2);
    expect(escrowOf(sent[0]!)).toBeUndefined();
    // The retry is the same push, escrow added: same blob, same base.
    const [first, second] = sent.map((r) => checkSchema(pushRequestSchema, JSON.parse(r.body)));
    expect(first!.ok && second!.ok).toBe(true);
    if (first!.ok && second!.ok) {
      const { escrow, ...rest } = second!.value;
      expect(rest).toEqual(first!.value);
      expect(escrow?.escrowKeyFingerprint).toBe(ci.escrow.fingerprint);
    }
    const local = await loadVaultKey(
      {
        keystore: machine.keystore,
        home: machine.ctx.paths.home,
        vaultsDir: machine.ctx.paths.vaults,
        random: machine.ctx.random,
      },
      VAULT,
    );
    expect(await escrowedKey(ci, escrowOf(sent[1]!)!.escrowedKey)).toEqual(local);
    expect(ci.policies.get(VAULT)).toMatchObject({ escrowVersion: 2 });
  });

  it("an organisation push after the server's escrow key changed and was accepted: the organisation's key is re-escrowed", async () => {
    const t = await team();
    t.ci.escrow = await memberKeyPair();
    expect(await runCli(["env", "ci", "show", "--org", "acme", "--accept"], t.machine.ctx)).toBe(0);
    expect(await runCli(["env", "set", "API_KEY=v-2"], t.machine.ctx)).toBe(0);
    const next = from(t.machine);
    await pushVault(t.machine.ctx, { org: "acme" });
    const sent = writes(next(), `/api/v1/orgs/acme/vaults/${VAULT}`);
    expect(sent).toHaveLength(2);
    expect(await escrowedKey(t.ci, escrowOf(sent[1]!)!.escrowedKey)).toEqual(
      await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT),
    );
  });

  it("refused again: LK_CI_ESCROW_STALE after exactly one retry, nothing written", async () => {
    const { machine, ci } = await personal();
    ci.escrow = await memberKeyPair();
    ci.refuseEscrows = true;
    expect(await runCli(["env", "ci", "show", "--accept"], machine.ctx)).toBe(0);
    expect(await runCli(["env", "set", "API_KEY=v-2"], machine.ctx)).toBe(0);
    const next = from(machine);
    await expect(pushVault(machine.ctx)).rejects.toMatchObject({
      code: "LK_CI_ESCROW_STALE",
      message: expect.stringContaining(
        `has CI pulls enabled for vault ${VAULT} and refused this version twice`,
      ),
      hint: expect.stringContaining("`latchkey env ci disable` then `latchkey env ci enable …`"),
    });
    expect(writes(next(), `/api/v1/vaults/${VAULT}`)).toHaveLength(2);
    expect(ci.personal.get(VAULT)!.version).toBe(1);
  });

  it("a server that answers 409 for a copy this machine never enabled CI on gets no escrow: LK_CI_ESCROW_UNCONFIRMED naming the copy", async () => {
    // The server claims the personal copy has CI, which nobody enabled from this machine: what a malicious server
    // would answer to every push to collect every vault key.
    const machine = sharingMachine(root, `m${n}`, { cwd: await projectDir() });
    const ci = await fakeCi();
    machine.server.extra = ciRoutes(machine.server, ci);
    expect(await runCli(["env", "set", "API_KEY=v-1"], machine.ctx)).toBe(0);
    await pushVault(machine.ctx);
    ci.escrow = await memberKeyPair();
    ci.policies.set(VAULT, await claimedPolicy(ci));
    expect(await runCli(["env", "set", "API_KEY=v-2"], machine.ctx)).toBe(0);
    const next = from(machine);
    await expect(pushVault(noTerminal(machine.ctx))).rejects.toMatchObject({
      code: "LK_CI_ESCROW_UNCONFIRMED",
      message: expect.stringContaining(
        `asked this write to escrow the key of vault ${VAULT} for CI pulls, and this machine has no record`,
      ),
      hint: expect.stringContaining("`latchkey env ci show --accept`"),
    });
    const sent = writes(next(), `/api/v1/vaults/${VAULT}`);
    expect(sent.map(escrowOf)).toEqual([undefined]);
    expect(next().some((r) => r.body.includes("escrowedKey"))).toBe(false);
    expect(ci.personal.get(VAULT)!.version).toBe(1);
  });

  it("an organisation copy another maintainer enabled: refused without a terminal, asked on one, and recorded once accepted", async () => {
    const t = await team();
    // As if another maintainer had enabled it: this machine's record goes.
    await rm(join(t.machine.ctx.paths.home, "ci-escrows.json"));
    const escrowsSent = (seen: SeenRequest[]) =>
      writes(seen, `/api/v1/orgs/acme/vaults/${VAULT}/share`).filter((r) => escrowOf(r) !== undefined);
    let next = from(t.machine);
    await expect(shareVault(noTerminal(t.machine.ctx), { org: "acme", newKey: true })).rejects.toMatchObject({
      code: "LK_CI_ESCROW_UNCONFIRMED",
      message: expect.stringContaining(`organisation acme's copy of vault ${VAULT}`),
      hint: expect.stringContaining("`latchkey env ci show --org acme --accept`"),
    });
    expect(escrowsSent(next())).toEqual([]);
    // On a terminal the question says what it means; a no sends nothing either.
    const asked: string[] = [];
    next = from(t.machine);
    await expect(
      shareVault(answering(t.machine.ctx, false, asked), { org: "acme", newKey: true }),
    ).rejects.toMatchObject({ code: "LK_CI_ESCROW_UNCONFIRMED" });
    expect(escrowsSent(next())).toEqual([]);
    expect(t.machine.ctx.stderr.text()).toContain(
      `the server will be able to decrypt organisation acme's copy of vault ${VAULT}`,
    );
    next = from(t.machine);
    await shareVault(answering(t.machine.ctx, true, asked), { org: "acme", newKey: true });
    expect(escrowsSent(next())).toHaveLength(1);
    expect(asked).toHaveLength(2);
    // Recorded: the next rotation asks nothing, even without a terminal.
    next = from(t.machine);
    await shareVault(noTerminal(t.machine.ctx), { org: "acme", newKey: true });
    expect(escrowsSent(next())).toHaveLength(1);
    expect(asked).toHaveLength(2);
  });

  it("env ci disable forgets the record: a server that later claims CI again gets no escrow", async () => {
    const { machine, ci } = await personal();
    expect(await runCli(["env", "ci", "disable"], machine.ctx)).toBe(0);
    ci.policies.set(VAULT, await claimedPolicy(ci));
    ci.escrow = await memberKeyPair();
    expect(await runCli(["env", "set", "API_KEY=v-2"], machine.ctx)).toBe(0);
    await expect(pushVault(noTerminal(machine.ctx))).rejects.toMatchObject({
      code: "LK_CI_ESCROW_UNCONFIRMED",
    });
  });

  it("a push the escrow still opens carries no escrow and asks for no configuration", async () => {
    const { machine, ci } = await personal();
    expect(await runCli(["env", "set", "API_KEY=v-2"], machine.ctx)).toBe(0);
    const next = from(machine);
    await pushVault(machine.ctx);
    const sent = writes(next(), `/api/v1/vaults/${VAULT}`);
    expect(sent.map(escrowOf)).toEqual([undefined]);
    expect(configFetches(next())).toHaveLength(0);
    expect(ci.policies.get(VAULT)).toMatchObject({ escrowVersion: 2 });
  });
});
