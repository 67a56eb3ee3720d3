// A machine that is not paired for a project's vault says so, whatever command touches the vault. The project is
// a checkout whose latchkey.json records that the vault was synced (vaultSync.personalVersion 3) and this machine
// has never had it: before, `env list` answered "no environment default" and `env set` started a second vault
// whose push then conflicted forever. Commands run in-process (runCli, and the fast path for `run` and `env get`);
// the server is a fetch that answers as the sync routes do.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI_CLIENT_ID,
  REQUEST_ID_HEADER,
  SIGNATURE_HEADER,
  syncBlobContext,
  toBase64,
  utf8Encode,
} from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import type { Context } from "../context.js";
import { sealEnvelopeSync } from "../crypto/native.js";
import { parseFastPath, runFastCommand } from "../fast-path.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { resolvePaths } from "../paths.js";
import { serverAccount, type ServerSession } from "../server/session.js";
import { signResponse } from "../server/signature.js";
import { updateVault, vaultKeyAccount, wrapVaultKey } from "../vault/vault-store.js";
import { WRAPPING_KEY_ACCOUNT } from "../vault/wrapping-key.js";
import { recordSync } from "./state.js";

const SERVER = "https://lk.not-paired.example";
const VAULT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const USER = "user-1";
const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-not-paired-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The server's copy of VAULT_ID at version 3, its key wrapped by another machine's wrapping key `by`. */
function serverCopy(by: Uint8Array) {
  const vaultKey = random.bytes(32);
  const blob = sealEnvelopeSync(
    vaultKey,
    utf8Encode(JSON.stringify({ default: { SECRET: "from the other machine" } })),
    syncBlobContext(VAULT_ID, 3),
    (size) => random.bytes(size),
  );
  return {
    vaultId: VAULT_ID,
    version: 3,
    encryptedBlob: toBase64(blob),
    wrappedKey: wrapVaultKey(by, VAULT_ID, vaultKey, random),
    schema: null,
    name: "app",
    updatedAt: "2030-01-01T00:00:00.000Z",
  };
}

interface Machine {
  ctx: Context & { stdout: { text: () => string }; stderr: { text: () => string } };
  keystore: Keystore;
  dir: string;
  home: string;
  requests: string[];
}

/**
 * A machine signed in to SERVER, in a checkout whose latchkey.json names VAULT_ID with `vaultSync` as given.
 * The server holds serverCopy(`otherKey`) and refuses every push with 409 at version 3.
 */
async function machine(
  options: { vaultSync?: unknown; wrappingKey?: Uint8Array | null; env?: Record<string, string> } = {},
): Promise<Machine> {
  const dir = join(root, `m${++n}`);
  await mkdir(dir, { recursive: true });
  const project: Record<string, unknown> = { vault: VAULT_ID };
  if (options.vaultSync !== undefined) project.vaultSync = options.vaultSync;
  await writeFile(join(dir, "latchkey.json"), `${JSON.stringify(project, null, 2)}\n`);
  const env = { LATCHKEY_HOME: join(dir, "home"), LATCHKEY_SERVER: SERVER, ...options.env };
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
  const wrappingKey = options.wrappingKey === undefined ? random.bytes(32) : options.wrappingKey;
  if (wrappingKey !== null) await keystore.set(WRAPPING_KEY_ACCOUNT, toBase64(wrappingKey));
  const copy = serverCopy(random.bytes(32));
  const requests: string[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}`);
    if (request.method === "PUT") {
      const body = {
        error: "VaultConflictError",
        code: "LK_VAULT_CONFLICT",
        message: "stale",
        currentVersion: 3,
      };
      return Promise.resolve(
        new Response(JSON.stringify(body), {
          status: 409,
          headers: { "content-type": "application/json" },
        }),
      );
    }
    const bytes = Buffer.from(JSON.stringify(copy));
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const requestId = request.headers.get(REQUEST_ID_HEADER) ?? "";
    const signature = signResponse(
      token,
      { method: request.method, path: url.pathname, requestId, status: 200 },
      bytes,
    );
    return Promise.resolve(
      new Response(bytes, {
        status: 200,
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature },
      }),
    );
  };
  const ctx = createTestContext({
    env,
    cwd: dir,
    paths,
    random,
    fetch,
    clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve({ keystore, backend: "memory" } as unknown as KeystoreResolution),
    replaceProcess: () => Promise.reject(new Error("the program must not start")),
  });
  return { ctx, keystore, dir, home: paths.home, requests };
}

/** Runs `argv` as the CLI would (the fast path for its shapes); the exit code. */
async function latchkey(m: Machine, argv: string[]): Promise<number> {
  const fast = parseFastPath(argv);
  if (fast !== null) return (await runFastCommand(fast, m.ctx)).exitCode;
  return runCli(argv, m.ctx);
}

const SYNCED = { personalVersion: 3 };

describe("a vault synced elsewhere that never reached this machine", () => {
  it.each([
    ["env list", ["env", "list"]],
    ["env get", ["env", "get", "SECRET"]],
    ["run", ["run", "--", "true"]],
    ["env run", ["env", "run", "--", "true"]],
    ["env export", ["env", "export"]],
    ["env envs", ["env", "envs"]],
    ["env check", ["env", "check"]],
    ["env unset", ["env", "unset", "SECRET"]],
    ["env set", ["env", "set", "SECRET=mine"]],
    ["env import", ["env", "import", "-"]],
    ["env push", ["env", "push"]],
  ])(
    "%s: LK_VAULT_NOT_PAIRED, pointing at `latchkey pair`; nothing written, no request",
    async (_name, argv) => {
      const m = await machine({ vaultSync: SYNCED });
      (m.ctx as { stdin: Context["stdin"] }).stdin = {
        isTTY: false,
        readAll: () => Promise.resolve(utf8Encode("SECRET=mine\n")),
      };
      expect(await latchkey(m, argv)).toBe(1);
      const stderr = m.ctx.stderr.text();
      expect(stderr).toContain("LK_VAULT_NOT_PAIRED");
      expect(stderr).toContain("was synced from another machine");
      expect(stderr).toContain("latchkey pair");
      expect(stderr).not.toContain("LK_ENV_NOT_FOUND");
      expect(await m.keystore.get(vaultKeyAccount(VAULT_ID))).toBeNull();
      const written = await readdir(m.home).catch(() => []);
      expect(written).not.toContain("vaults");
      expect(written).not.toContain("approvals.json");
      expect(m.requests).toEqual([]);
    },
  );

  it("on a machine with no wrapping key at all, says to pair first; with one, to pull first", async () => {
    const bare = await machine({ vaultSync: SYNCED, wrappingKey: null });
    expect(await latchkey(bare, ["env", "list"])).toBe(1);
    expect(bare.ctx.stderr.text()).toContain("Pair this machine first");
    const keyed = await machine({ vaultSync: SYNCED });
    expect(await latchkey(keyed, ["env", "list"])).toBe(1);
    expect(keyed.ctx.stderr.text()).toContain("Fetch it with `latchkey env pull`");
  });

  it.each([
    ["no vaultSync", undefined],
    ["personalVersion 0", { personalVersion: 0 }],
    ["a vaultSync that is not valid", { personalVersion: "3" }],
  ])("%s: an absent vault reads as empty, as before, and env set creates it", async (_name, vaultSync) => {
    const m = await machine({ vaultSync });
    expect(await latchkey(m, ["env", "list"])).toBe(1);
    expect(m.ctx.stderr.text()).toContain("LK_ENV_NOT_FOUND");
    expect(await latchkey(m, ["env", "set", "SECRET=mine"])).toBe(0);
    expect(await latchkey(m, ["env", "list"])).toBe(0);
  });

  it("a vault whose key this machine has is read as usual (a deleted local file reads as empty)", async () => {
    const m = await machine({ vaultSync: SYNCED });
    const paths = resolvePaths(m.ctx.env);
    await updateVault(
      { keystore: m.keystore, home: m.home, vaultsDir: paths.vaults, random },
      VAULT_ID,
      (doc) => {
        doc.default = { SECRET: "here" };
        return { result: undefined, changed: true };
      },
    );
    expect(await latchkey(m, ["env", "get", "SECRET"])).toBe(0);
    expect(m.ctx.stdout.text()).toBe("here");
    await rm(paths.vaults, { recursive: true });
    expect(await latchkey(m, ["env", "list"])).toBe(1);
    expect(m.ctx.stderr.text()).toContain("LK_ENV_NOT_FOUND");
  });

  it.each([
    ["env list", ["env", "list"]],
    ["env get", ["env", "get", "SECRET"]],
    ["run", ["run", "--", "true"]],
    ["env set", ["env", "set", "SECRET=mine"]],
    ["env push", ["env", "push", "--org", "acme"]],
  ])(
    "%s of a vault only an organisation's copy records: LK_ORG_VAULT_NOT_SYNCED, pull it with --org; nothing written",
    async (_name, argv) => {
      const m = await machine({ vaultSync: { orgVersions: { acme: 4 } } });
      expect(await latchkey(m, argv)).toBe(1);
      const stderr = m.ctx.stderr.text();
      expect(stderr).toContain("LK_ORG_VAULT_NOT_SYNCED");
      expect(stderr).toContain("shared with organisation acme");
      expect(stderr).toContain("latchkey env pull --org acme");
      expect(await m.keystore.get(vaultKeyAccount(VAULT_ID))).toBeNull();
      expect(await readdir(m.home).catch(() => [])).not.toContain("vaults");
      expect(m.requests).toEqual([]);
    },
  );

  it("LATCHKEY_VAULT_ID naming another vault is not judged by this latchkey.json", async () => {
    const m = await machine({
      vaultSync: SYNCED,
      env: { LATCHKEY_VAULT_ID: "11111111-2222-4333-8444-555555555555" },
    });
    expect(await latchkey(m, ["env", "list"])).toBe(1);
    expect(m.ctx.stderr.text()).toContain("LK_ENV_NOT_FOUND");
  });
});

describe("env push of a vault whose server copy this machine cannot open", () => {
  /** A machine with its own local copy of VAULT_ID (as `env set` made one before this check existed). */
  async function divergent(vaultSync: unknown): Promise<Machine> {
    const m = await machine({ vaultSync });
    const paths = resolvePaths(m.ctx.env);
    await updateVault(
      { keystore: m.keystore, home: m.home, vaultsDir: paths.vaults, random },
      VAULT_ID,
      (doc) => {
        doc.default = { SECRET: "mine" };
        return { result: undefined, changed: true };
      },
    );
    return m;
  }

  it("never synced here: the 409 becomes LK_VAULT_NOT_PAIRED (pairing, not pulling, is the way out)", async () => {
    const m = await divergent(SYNCED);
    expect(await latchkey(m, ["env", "push"])).toBe(1);
    const stderr = m.ctx.stderr.text();
    expect(stderr).toContain("LK_VAULT_NOT_PAIRED");
    expect(stderr).toContain("The push was refused; nothing was overwritten.");
    expect(stderr).toContain("latchkey pair");
    expect(m.requests).toEqual([`PUT /api/v1/vaults/${VAULT_ID}`, `GET /api/v1/vaults/${VAULT_ID}`]);
  });

  it("synced here before: a conflict stays a conflict (pull, merge, push), with no extra request", async () => {
    const m = await divergent({ personalVersion: 2 });
    await recordSync(m.home, SERVER, USER, VAULT_ID, 2, Date.now());
    expect(await latchkey(m, ["env", "push"])).toBe(1);
    expect(m.ctx.stderr.text()).toContain("LK_VAULT_CONFLICT");
    expect(m.requests).toEqual([`PUT /api/v1/vaults/${VAULT_ID}`]);
  });
});

describe("env pull of a server copy this machine cannot open", () => {
  it("never synced here: not paired, pair with a machine that has the vault", async () => {
    const m = await machine({ vaultSync: SYNCED });
    expect(await latchkey(m, ["env", "pull"])).toBe(1);
    const stderr = m.ctx.stderr.text();
    expect(stderr).toContain("This machine is not paired for vault");
    expect(stderr).toContain("Pair this machine with one that has the vault");
  });

  it("synced here before: another machine rotated its key; pair again", async () => {
    const m = await machine({ vaultSync: SYNCED });
    await recordSync(m.home, SERVER, USER, VAULT_ID, 2, Date.now());
    expect(await latchkey(m, ["env", "pull"])).toBe(1);
    const stderr = m.ctx.stderr.text();
    expect(stderr).toContain("LK_VAULT_NOT_PAIRED");
    expect(stderr).toContain("no longer paired");
    expect(stderr).toContain("latchkey env rotate-key");
    expect(stderr).toContain("Pair this machine again");
  });
});
