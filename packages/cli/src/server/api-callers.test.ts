// Every command that asks the sync API takes the answer only as its schema in core describes it: a correctly
// signed answer of another shape (what a server of another release, or a bug, could send) is LK_SERVER_ERROR
// and nothing is recorded. The commands run in-process against a fetch that signs what each test scripts.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_CLIENT_ID } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { signingFetch } from "../../test/support/signed-fetch.js";
import { runCli } from "../cli.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { listSyncEntries, recordSync } from "../sync/state.js";
import { updateVault, vaultKeyAccount } from "../vault/vault-store.js";
import { serverAccount, type ServerSession } from "./session.js";

const SERVER = "https://lk.answers.example";
const VAULT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const USER = "user-1";
const CREATED = "2030-01-01T00:00:00.000Z";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-api-callers-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A machine logged in to SERVER, in a directory whose vault is VAULT_ID, with a vault holding one secret. */
async function machine(answer: (method: string, path: string) => unknown) {
  const dir = join(root, `m${++n}`);
  await mkdir(dir, { recursive: true });
  const env = { LATCHKEY_HOME: join(dir, "home"), LATCHKEY_SERVER: SERVER, LATCHKEY_VAULT_ID: VAULT_ID };
  const paths = resolvePaths(env);
  const session: ServerSession = {
    access_token: "at-1",
    refresh_token: "rt-1",
    expires_at: Math.floor(Date.now() / 1000) + 900,
    subject: USER,
    issuer: `${SERVER}/oidc`,
    client_id: CLI_CLIENT_ID,
  };
  const keystore = createMemoryKeystore({ [serverAccount(SERVER)]: JSON.stringify(session) });
  const random = { bytes: (size: number) => randomFillSync(new Uint8Array(size)) };
  await updateVault({ keystore, home: paths.home, vaultsDir: paths.vaults, random }, VAULT_ID, (doc) => {
    doc.default = { SECRET: "value" };
    return { result: undefined, changed: true };
  });
  const ctx = createTestContext({
    env,
    cwd: dir,
    paths,
    random,
    fetch: signingFetch(answer),
    clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
  });
  return { ctx, home: paths.home, vaults: paths.vaults, keystore };
}

/** Runs `args`; it must fail with LK_SERVER_ERROR for an answer that is not its route's. */
async function refusedAnswer(ctx: Awaited<ReturnType<typeof machine>>["ctx"], args: string[]) {
  expect(await runCli(args, ctx)).toBe(1);
  const stderr = ctx.stderr.text();
  expect(stderr).toContain("LK_SERVER_ERROR");
  expect(stderr).toContain("is not the answer that request expects");
  return stderr;
}

describe("an answer of the wrong shape, correctly signed", () => {
  it("whoami: /me with a field more", async () => {
    const { ctx } = await machine(() => ({
      userId: USER,
      email: "a@example.test",
      clientId: CLI_CLIENT_ID,
      expiresAt: CREATED,
      admin: true,
    }));
    await refusedAnswer(ctx, ["whoami", "--json"]);
    expect(ctx.stdout.text()).toBe("");
  });

  it("env push: an acknowledgement whose version is a string; nothing is recorded as synced", async () => {
    const { ctx, home } = await machine(() => ({ vaultId: VAULT_ID, version: "1", createdAt: CREATED }));
    await refusedAnswer(ctx, ["env", "push"]);
    expect(await listSyncEntries(home)).toEqual([]);
  });

  it("env pull: a copy without its schema and name; nothing is written", async () => {
    const { ctx, home, vaults } = await machine(() => ({
      vaultId: VAULT_ID,
      version: 1,
      encryptedBlob: "AAAA",
      wrappedKey: "AAAA",
      updatedAt: CREATED,
    }));
    const before = await readdir(vaults);
    await refusedAnswer(ctx, ["env", "pull"]);
    expect(await listSyncEntries(home)).toEqual([]);
    expect(await readdir(vaults)).toEqual(before);
  });

  it("env log: an entry without its actor", async () => {
    const { ctx } = await machine(() => ({
      vaultId: VAULT_ID,
      entries: [{ action: "vault.push", version: 1, createdAt: CREATED, metadata: {} }],
    }));
    await refusedAnswer(ctx, ["env", "log"]);
    expect(ctx.stdout.text()).toBe("");
  });

  it("env rotate-key: a rewrap answer without its version pauses the rotation", async () => {
    // The server copy it fetches first is a well-formed one whose key this machine opens, so the rewrap is sent.
    let wrappedKey = "";
    const { ctx, home, keystore } = await machine((method) =>
      method === "GET"
        ? {
            vaultId: VAULT_ID,
            version: 1,
            encryptedBlob: "AAAA",
            wrappedKey,
            schema: null,
            name: "app",
            updatedAt: CREATED,
          }
        : { vaultId: VAULT_ID },
    );
    wrappedKey = (await keystore.get(vaultKeyAccount(VAULT_ID)))!;
    await recordSync(home, SERVER, USER, VAULT_ID, 1, Date.now());
    const stderr = await refusedAnswer(ctx, ["env", "rotate-key"]);
    expect(stderr).toContain(`PUT ${SERVER}/api/v1/vaults/${VAULT_ID}/key`);
    expect(stderr).toContain("The rotation is paused");
  });
});
