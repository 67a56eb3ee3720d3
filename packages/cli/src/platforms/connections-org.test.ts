// `env platforms connect --org` in process, against the fake of the organisation routes (test/support/org-server.ts),
// which stores a connection only when its key version is the copy's now, as the real server does: a machine whose
// copy is older than the copy's last rotation seals nothing with the retired key (which a removed member may hold),
// whether it finds out itself or the server tells it; after a pull it connects with the current key.
import { randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utf8Encode } from "@latchkey/core";
import {
  connectionCredential,
  memberVaultKey,
  orgTeam,
  sealedCopy,
  type OrgTeam,
} from "../../test/support/org-server.js";
import { runCli } from "../cli.js";
import type { Context } from "../context.js";
import { pullVault } from "../sync/pull.js";
import { shareVault } from "../sync/push.js";
import { connectPlatform } from "./connections.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const TOKEN = "fly-org-connect-token-canary-2c7e";
const random = (size: number) => randomFillSync(new Uint8Array(size));

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-platforms-org-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A maintainer's machine in a checkout of VAULT's project that shared it with acme (version 1, key version 1). */
async function sharedCheckout(): Promise<OrgTeam> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "web" }));
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT }));
  const t = await orgTeam(root, `m${n}`, "maintainer", { cwd: dir });
  expect(await runCli(["env", "set", "API_KEY=v-1"], t.machine.ctx)).toBe(0);
  await shareVault(t.machine.ctx, { org: "acme" });
  return t;
}

/** Connects Fly to acme's copy, the token on standard input. */
function connect(t: OrgTeam, name = "fly-default") {
  const ctx: Context = {
    ...t.machine.ctx,
    stdin: { isTTY: false, readAll: () => Promise.resolve(utf8Encode(`${TOKEN}\n`)) },
  };
  return connectPlatform(ctx, {
    platform: "fly",
    environment: "default",
    name,
    org: "acme",
    targets: { app: "acme-web" },
    credentialStdin: true,
  });
}

/** Another maintainer rotates the copy's key: version 2, sealed with a new key wrapped at key version 2. */
async function rotatedElsewhere(t: OrgTeam): Promise<Uint8Array> {
  const newKey = random(32);
  await sealedCopy(t.machine.server, t.org, VAULT, {
    version: 2,
    vaultKey: newKey,
    document: { default: { API_KEY: "v-1" } },
    members: [t.me, t.bob],
  });
  return newKey;
}

const connects = (t: OrgTeam) =>
  t.machine.server.seen.filter((r) => r.method === "POST" && r.path.endsWith("/platforms"));

describe("connecting a platform to an organisation's copy", () => {
  it("seals the credential with the copy's key now and names its key version", async () => {
    const t = await sharedCheckout();
    const made = await connect(t);
    expect(made.connection.name).toBe("fly-default");
    expect(JSON.parse(connects(t)[0]!.body)).toMatchObject({ keyVersion: 1 });
    const key = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const [stored] = t.org.platforms!.get(VAULT)!;
    expect(await connectionCredential(VAULT, stored!, key)).toBe(TOKEN);
  });

  it("a copy older than the key's rotation is refused with the hint to pull, and nothing is stored", async () => {
    const t = await sharedCheckout();
    const oldKey = await memberVaultKey(t.org.copies.get(VAULT)!, t.bob, t.org, VAULT);
    const newKey = await rotatedElsewhere(t);

    const error = await connect(t).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LK_VAULT_KEY_STALE" });
    const { message, hint } = error as { message: string; hint: string };
    expect(message).toContain("Nothing was sent.");
    expect(hint).toBe(
      "Run `latchkey env pull --org acme` to get the copy's current key, then connect the platform again.",
    );
    expect(t.org.platforms?.get(VAULT) ?? []).toEqual([]);
    for (const r of t.machine.server.seen) expect(r.body).not.toContain(TOKEN);

    // Pulled, the machine has the new key: the credential is sealed with it, and the old key opens nothing.
    await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    await connect(t);
    expect(JSON.parse(connects(t).at(-1)!.body)).toMatchObject({ keyVersion: 2 });
    const [stored] = t.org.platforms!.get(VAULT)!;
    expect(await connectionCredential(VAULT, stored!, newKey)).toBe(TOKEN);
    expect(await connectionCredential(VAULT, stored!, oldKey)).toBeNull();
  });

  it("a rotation that lands between the machine's check and the connect: the server's 409, in the command's words", async () => {
    const t = await sharedCheckout();
    t.org.beforeConnect = async () => {
      t.org.beforeConnect = undefined;
      await rotatedElsewhere(t);
    };
    const error = await connect(t).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "LK_VAULT_KEY_STALE" });
    const { message, hint } = error as { message: string; hint: string };
    expect(message).toContain("sealed with the key of version 1");
    expect(message).toContain("Nothing was stored.");
    expect(hint).toBe(
      "Run `latchkey env pull --org acme` to get the copy's current key, then connect the platform again.",
    );
    expect(connects(t)).toHaveLength(1);
    expect(t.org.platforms?.get(VAULT) ?? []).toEqual([]);
  });
});
