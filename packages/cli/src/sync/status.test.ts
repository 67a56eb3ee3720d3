// `env status` in-process, against a fetch that plays the server: what it reports of the local copy and of the
// server's in each case (synced, another machine's key, no copy, unreachable, not signed in, not asked), and that
// it writes nothing.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_CLIENT_ID } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { signingFetch } from "../../test/support/signed-fetch.js";
import { runCli } from "../cli.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { serverAccount, type ServerSession } from "../server/session.js";
import { updateVault, vaultKeyAccount } from "../vault/vault-store.js";
import { recordSync, syncDir } from "./state.js";

const SERVER = "https://lk.status.example";
const V = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const W = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
const USER = "user-1";
const T = Date.parse("2030-01-01T00:00:00.000Z");
const HOUR = 3_600_000;

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-status-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const random = { bytes: (size: number) => randomFillSync(new Uint8Array(size)) };

/** A home with vaults `ids` (one secret each), their keys in `keystore`. */
async function home(keystore: Keystore, ids: readonly string[]) {
  const dir = join(root, `m${++n}`);
  await mkdir(dir, { recursive: true });
  const env = { LATCHKEY_HOME: join(dir, "home"), LATCHKEY_SERVER: SERVER, LATCHKEY_VAULT_ID: V };
  const paths = resolvePaths(env);
  for (const id of ids) {
    await updateVault({ keystore, home: paths.home, vaultsDir: paths.vaults, random }, id, (doc) => {
      doc.default = { SECRET: "status-canary-91f2" };
      return { result: undefined, changed: true };
    });
  }
  return { dir, env, paths };
}

/**
 * A machine with vaults V and W, synced V at version 3 at T, its clock two hours later; `fetch` plays the
 * server. Signed in unless `signedIn` is false.
 */
async function machine(fetch: typeof globalThis.fetch, options: { signedIn?: boolean } = {}) {
  const session: ServerSession = {
    access_token: "at-1",
    expires_at: Math.floor((T + 10 * HOUR) / 1000),
    subject: USER,
    issuer: `${SERVER}/oidc`,
    client_id: CLI_CLIENT_ID,
  };
  const keystore = createMemoryKeystore(
    options.signedIn === false ? {} : { [serverAccount(SERVER)]: JSON.stringify(session) },
  );
  const { dir, env, paths } = await home(keystore, [V, W]);
  await recordSync(paths.home, SERVER, USER, V, 3, T);
  const ctx = createTestContext({
    env,
    cwd: dir,
    paths,
    random,
    fetch,
    clock: { now: () => T + 2 * HOUR, sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
  });
  return { ctx, keystore, home: paths.home };
}

/** The server's copy of `vaultId` at `version`, its key wrapped as `wrappedKey`. */
function copy(vaultId: string, version: number, wrappedKey: string) {
  return {
    vaultId,
    version,
    encryptedBlob: "AAAA",
    wrappedKey,
    schema: null,
    name: "app",
    updatedAt: "2030-01-01T01:00:00.000Z",
  };
}

/** The wrapped key of `vaultId` as another machine (its own wrapping key) would push it. */
async function otherMachinesKey(vaultId: string): Promise<string> {
  const keystore = createMemoryKeystore();
  await home(keystore, [vaultId]);
  return (await keystore.get(vaultKeyAccount(vaultId)))!;
}

/** `env status ARGS` on the machine's context: the exit code and what this run printed. */
async function status(ctx: Awaited<ReturnType<typeof machine>>["ctx"], args: string[]) {
  const [out, err] = [ctx.stdout.text().length, ctx.stderr.text().length];
  const code = await runCli(["env", "status", ...args], ctx);
  return { code, stdout: ctx.stdout.text().slice(out), stderr: ctx.stderr.text().slice(err) };
}

/** A fetch that fails as a refused connection does, counting its calls. */
function refusingFetch(): typeof fetch & { calls: number } {
  const fetch = Object.assign(
    () => {
      fetch.calls++;
      return Promise.reject(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }));
    },
    { calls: 0 },
  );
  return fetch;
}

const localV = { present: true, version: 3, syncedAt: "2030-01-01T00:00:00.000Z", server: SERVER };

describe("env status", () => {
  it("shows the local version and last sync, the server's version, and paired when this machine opens its key", async () => {
    let answer: unknown = null;
    const m = await machine(signingFetch(() => answer));
    answer = copy(V, 4, (await m.keystore.get(vaultKeyAccount(V)))!);
    const before = await readFile(join(syncDir(m.home), "state.json"), "utf8");
    const r = await status(m.ctx, ["--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      vaults: [
        { vaultId: V, local: localV, server: { state: "synced", server: SERVER, version: 4 }, paired: true },
      ],
    });
    expect(r.stdout).not.toContain("status-canary-91f2");
    // Read-only: the anti-rollback record did not take the version it saw.
    expect(await readFile(join(syncDir(m.home), "state.json"), "utf8")).toBe(before);

    const text = await status(m.ctx, []);
    expect(text.stdout).toBe(
      [
        `vault ${V}`,
        `  local:   version 3, last synced 2030-01-01T00:00:00.000Z (2 hours ago) with ${SERVER}`,
        `  server:  version 4 at ${SERVER}`,
        "  paired:  yes",
        "",
      ].join("\n"),
    );
  });

  it("shows the personal copy's sync: an organisation copy's record is not it", async () => {
    const m = await machine(refusingFetch());
    await recordSync(m.home, SERVER, USER, W, 9, T + HOUR, "acme");
    const r = await status(m.ctx, ["--all", "--offline", "--json"]);
    const vaults = (JSON.parse(r.stdout) as { vaults: { vaultId: string; local: unknown }[] }).vaults;
    expect(vaults.find((v) => v.vaultId === W)?.local).toEqual({
      present: true,
      version: null,
      syncedAt: null,
      server: null,
    });
  });

  it("says not paired when the server's copy has its key wrapped for another machine", async () => {
    const foreign = await otherMachinesKey(V);
    const m = await machine(signingFetch(() => copy(V, 5, foreign)));
    const r = await status(m.ctx, ["--json"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ vaults: [{ server: { version: 5 }, paired: false }] });
    expect((await status(m.ctx, [])).stdout).toContain(
      "paired:  no: the server's copy has its key wrapped for another machine",
    );
  });

  it("with --all, lists every vault here: one never synced that the server has no copy of", async () => {
    let own = "";
    const m = await machine((input, init) => {
      if (new Request(input, init).url.endsWith(W)) {
        const body = { error: "NotFound", code: "LK_VAULT_NOT_SYNCED", message: "No copy." };
        return Promise.resolve(new Response(JSON.stringify(body), { status: 404 }));
      }
      return signingFetch(() => copy(V, 3, own))(input, init);
    });
    own = (await m.keystore.get(vaultKeyAccount(V)))!;
    const r = await status(m.ctx, ["--all", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      vaults: [
        { vaultId: V, local: localV, server: { state: "synced", server: SERVER, version: 3 }, paired: true },
        {
          vaultId: W,
          local: { present: true, version: null, syncedAt: null, server: null },
          server: { state: "not-synced", server: SERVER },
          paired: null,
        },
      ],
    });
    const text = (await status(m.ctx, ["--all"])).stdout;
    expect(text).toContain("never pushed or pulled from this machine");
    expect(text).toContain(`no copy of this vault at ${SERVER}`);
    expect(text).toContain("nothing to pair with (the server has no copy)");
  });

  it("answers locally when the server cannot be reached, asking it once for all vaults", async () => {
    const fetch = refusingFetch();
    const m = await machine(fetch);
    const r = await status(m.ctx, ["--all", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const { vaults } = JSON.parse(r.stdout) as { vaults: unknown[] };
    expect(vaults[0]).toEqual({
      vaultId: V,
      local: localV,
      server: { state: "unreachable", server: SERVER },
      paired: null,
    });
    expect(vaults[1]).toMatchObject({ vaultId: W, server: { state: "unreachable" } });
    expect(fetch.calls).toBe(1);
    const text = (await status(m.ctx, [])).stdout;
    expect(text).toContain(`server:  unreachable (${SERVER})`);
    expect(text).toContain("paired:  unknown (the server was not heard)");
  });

  it("answers locally when not signed in, and with --offline, without a request", async () => {
    // createTestContext's fetch throws when called: neither case may make a request.
    const signedOut = await machine(createTestContext().fetch, { signedIn: false });
    const r = await status(signedOut.ctx, ["--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      vaults: [
        { vaultId: V, local: localV, server: { state: "not-signed-in", server: SERVER }, paired: null },
      ],
    });
    expect((await status(signedOut.ctx, [])).stdout).toContain(`not signed in at ${SERVER}`);

    const offline = await machine(createTestContext().fetch);
    expect(JSON.parse((await status(offline.ctx, ["--offline", "--json"])).stdout)).toEqual({
      vaults: [
        { vaultId: V, local: localV, server: { state: "not-asked", reason: "offline" }, paired: null },
      ],
    });
  });

  it("reports any other failure of the server by its code, still exiting 0", async () => {
    const m = await machine(signingFetch(() => ({ vaultId: V, version: "4" })));
    const r = await status(m.ctx, ["--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      vaults: [
        { local: localV, server: { state: "error", server: SERVER, code: "LK_SERVER_ERROR" }, paired: null },
      ],
    });
  });
});
