// `env pull --org` asks for the organisation's copy while the sharing key is checked (one round trip fewer than
// one after the other), in process against the fake organisation routes. What must not change with it: the
// sharing-key check decides, and nothing is written before both have answered.
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sharingKeyFingerprint, toBase64 } from "@latchkey/core";
import { sealedCopy, orgTeam, type OrgTeam } from "../../test/support/org-server.js";
import { SHARING_SERVER } from "../../test/support/sharing-key-server.js";
import { vaultFile } from "../vault/vault-store.js";
import { pullVault } from "./pull.js";
import { getSyncEntry } from "./state.js";

const VAULT = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
const COPY_PATH = `/api/v1/orgs/acme/vaults/${VAULT}`;
const random = (size: number) => randomFillSync(new Uint8Array(size));

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-pull-org-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A team working in a checkout of the project, with the organisation's copy of VAULT at version 2. */
async function checkout(): Promise<OrgTeam & { dir: string }> {
  const dir = join(root, `project-${++n}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "web" }));
  await writeFile(join(dir, "latchkey.json"), JSON.stringify({ vault: VAULT }));
  const t = { ...(await orgTeam(root, `m${n}`, "member", { cwd: dir })), dir };
  await sealedCopy(t.machine.server, t.org, VAULT, {
    version: 2,
    vaultKey: random(32),
    document: { default: { A: "theirs" } },
    members: [t.me, t.bob],
  });
  return t;
}

/**
 * Holds the answer to the sharing-key check until the copy has been asked for, and records whether it was. The
 * timer only lets code that asks one after the other finish (it would wait for ever), so that it fails below.
 */
function holdKeyCheck(t: OrgTeam): { copyAskedDuringCheck: boolean | null } {
  const seenWhileHeld = { copyAskedDuringCheck: null as boolean | null };
  const routes = t.machine.server.extra;
  let copyAsked: () => void = () => undefined;
  const copy = new Promise<void>((resolve) => (copyAsked = resolve));
  let asked = false;
  t.machine.server.extra = async (seen) => {
    const path = seen.path.split("?")[0];
    if (seen.method === "GET" && path === COPY_PATH) {
      asked = true;
      copyAsked();
    }
    if (seen.method === "GET" && path === "/api/v1/sharing-key") {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([copy, new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))]);
      clearTimeout(timer);
      seenWhileHeld.copyAskedDuringCheck = asked;
    }
    return (await routes?.(seen)) ?? null;
  };
  return seenWhileHeld;
}

const latchkeyJson = async (dir: string) =>
  JSON.parse(await readFile(join(dir, "latchkey.json"), "utf8")) as unknown;

describe("env pull --org: the copy and the sharing-key check together", () => {
  it("asks for the copy while the sharing key is checked, and pulls it", async () => {
    const t = await checkout();
    const held = holdKeyCheck(t);
    const pulled = await pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    expect(pulled).toMatchObject({ org: "acme", version: 2, restored: true });
    expect(held.copyAskedDuringCheck).toBe(true);
  });

  it("refuses with the sharing-key error when the server has another key, though the copy came back, and writes nothing", async () => {
    const t = await checkout();
    const other = random(32);
    t.machine.server.key = { publicKey: toBase64(other), fingerprint: await sharingKeyFingerprint(other) };
    const held = holdKeyCheck(t);
    await expect(pullVault(t.machine.ctx, { org: "acme", environment: "default" })).rejects.toMatchObject({
      code: "LK_SHARING_KEY_MISMATCH",
    });
    expect(held.copyAskedDuringCheck).toBe(true);
    expect(existsSync(vaultFile(t.machine.ctx.paths.vaults, VAULT))).toBe(false);
    expect(
      await getSyncEntry(t.machine.ctx.paths.home, SHARING_SERVER, t.me.userId, VAULT, "acme"),
    ).toBeNull();
    expect(await latchkeyJson(t.dir)).toEqual({ vault: VAULT });
  });

  it("names the sharing-key error, not the copy's, when both fail", async () => {
    const t = await checkout();
    t.org.copies.delete(VAULT);
    const other = random(32);
    t.machine.server.key = { publicKey: toBase64(other), fingerprint: await sharingKeyFingerprint(other) };
    const pull = pullVault(t.machine.ctx, { org: "acme", environment: "default" });
    await expect(pull).rejects.toMatchObject({ code: "LK_SHARING_KEY_MISMATCH" });
  });
});
