// `latchkey env rotate-key` with synced vaults on the real server, killed (SIGKILL, through the crash points of the
// tests' own CLI build, test/support/crash-cli.ts) after each of its steps in turn: after every crash both local
// vaults still open and the server's copy still pulls; a rerun (the shipped CLI) finishes; afterwards the server
// copies are wrapped by the new key only. The key it re-wraps on the server is the one each server copy is sealed
// with: a newer version pushed elsewhere, or a copy whose vault key is not this machine's own (two machines
// started the vault before either pushed, and the pull kept the local key), still pulls after the rotation.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleCrashCli } from "../packages/cli/test/support/crash-cli-bundle.js";
import {
  latchkey,
  loginCli,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { copyOfMachine, ok, signedInMachine } from "./support/machines.js";
import { projectDir } from "./support/teams.js";
import { approveVaultOnTerminal } from "./support/project.js";

const USER = { email: "rotate@example.com", password: "rotate password for e2e" };
let root: string;
let server: LatchkeyServer;
let m: Machine;
/** The CLI with crash points (bundleCrashCli). */
let crashCli: string;
const dirs: string[] = [];

const project = (name: string): Promise<string> => projectDir(root, name, name);

async function expectEverythingOpens(label: string): Promise<void> {
  for (const [i, dir] of dirs.entries()) {
    const exported = await latchkey(m, ["env", "export", "--format", "json"], { cwd: dir });
    expect(exported.code, `${label}: ${exported.stderr}`).toBe(0);
    expect(JSON.parse(exported.stdout)).toEqual({ SECRET: `value-${i}` });
    const pulled = await latchkey(m, ["env", "pull"], { cwd: dir });
    expect(pulled.code, `${label}: ${pulled.stderr}`).toBe(0);
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-e2e-sync-rotate-"));
  crashCli = await bundleCrashCli(root);
  server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
  m = await signedInMachine(root, "m", server, USER);
  for (const i of [0, 1]) {
    const dir = await project(`app-${i}`);
    ok(await latchkey(m, ["env", "set", `SECRET=value-${i}`], { cwd: dir }));
    ok(await latchkey(m, ["env", "push"], { cwd: dir }));
    dirs.push(dir);
  }
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("env rotate-key", () => {
  it("survives SIGKILL after every step; reruns finish; the old key no longer opens the server copies", async () => {
    // A copy of the machine before any rotation: it keeps the old wrapping key.
    const old = await copyOfMachine(root, "old", m);

    const steps = [
      "pending-stored",
      "vault-key-rewrapped:1",
      "vault-key-rewrapped:2",
      "server-key-updated:1",
      "server-key-updated:2",
      "promoted",
    ];
    for (const step of steps) {
      const crashed = await latchkey(m, ["env", "rotate-key"], {
        cli: crashCli,
        env: { LATCHKEY_TEST_CRASH_AT: step },
      });
      expect(crashed.signal, `${step}: ${crashed.stderr}`).toBe("SIGKILL");
      await expectEverythingOpens(`after a crash at ${step}`);
    }
    const finished = ok(await latchkey(m, ["env", "rotate-key"]));
    expect(finished.stderr).toContain("Finished the interrupted rotation");
    expect(finished.stderr).toContain("2 server copies updated");
    await expectEverythingOpens("after the rerun");

    const fresh = ok(await latchkey(m, ["env", "rotate-key", "--json"]));
    expect(JSON.parse(fresh.stdout)).toMatchObject({ rotated: true, resumed: false, unreadable: [] });
    await expectEverythingOpens("after a clean rotation");

    // The machine's pre-rotation copy holds only the old key: the server copies are no longer its to open.
    const stale = await latchkey(old, ["env", "pull"], {
      cwd: dirs[0]!,
      env: { LATCHKEY_SERVER: server.url },
    });
    expect(stale.stderr, stale.stderr).toContain("error LK_VAULT_NOT_PAIRED");

    const log = JSON.parse(ok(await latchkey(m, ["env", "log", "--json"], { cwd: dirs[0]! })).stdout) as {
      entries: { action: string }[];
    };
    expect(log.entries.some((e) => e.action === "vault.rewrap")).toBe(true);
  }, 180_000);

  it("a newer version pushed behind this machine's back is re-wrapped at that version, no pull needed", async () => {
    // Another copy of this machine's home pushes a newer version of vault 0 behind this machine's back.
    const twin = await copyOfMachine(root, "twin", m);
    ok(await loginCli(twin, server, USER));
    const twinDir = join(root, "twin-app");
    await mkdir(twinDir);
    await writeFile(join(twinDir, "latchkey.json"), await readFile(join(dirs[0]!, "latchkey.json"), "utf8"));
    // The copied home binds the vault to the original checkout: the twin's checkout asks once.
    await approveVaultOnTerminal(twin.env, twinDir);
    ok(await latchkey(twin, ["env", "set", "FROM_TWIN=t"], { cwd: twinDir }));
    ok(await latchkey(twin, ["env", "push"], { cwd: twinDir }));

    const rotated = ok(await latchkey(m, ["env", "rotate-key", "--json"]));
    expect(JSON.parse(rotated.stdout)).toMatchObject({ rotated: true, resumed: false, serverUnopened: [] });
    // The twin's version, wrapped now by this machine's new key, pulls and merges here.
    ok(await latchkey(m, ["env", "pull"], { cwd: dirs[0]! }));
    const exported = ok(await latchkey(m, ["env", "export", "--format", "json"], { cwd: dirs[0]! }));
    expect(JSON.parse(exported.stdout)).toEqual({ SECRET: "value-0", FROM_TWIN: "t" });
    const stale = await latchkey(twin, ["env", "pull"], { cwd: twinDir });
    expect(stale.stderr, stale.stderr).toContain("error LK_VAULT_NOT_PAIRED");
  }, 120_000);
});

describe("env rotate-key on a machine whose vault key differs from the server copy's", () => {
  it("re-wraps the server copy's own vault key: its blob still decrypts on the next pull", async () => {
    // A and B share a wrapping key (B is a copy of A's home from before either had the vault), and both start
    // the vault of one latchkey.json (it came through git) before A pushes: each has a vault key of its own.
    const a = await signedInMachine(root, "div-a", server, USER);
    ok(await latchkey(a, ["env", "set", "WARM=w"], { cwd: await project("div-warm-up") }));
    const b = await copyOfMachine(root, "div-b", a);
    ok(await loginCli(b, server, USER));

    const aDir = await project("div-on-a");
    ok(await latchkey(a, ["env", "set", "FROM_A=a"], { cwd: aDir }));
    const bDir = await project("div-on-b");
    await writeFile(join(bDir, "latchkey.json"), await readFile(join(aDir, "latchkey.json"), "utf8"));
    ok(await latchkey(b, ["env", "set", "FROM_B=b"], { cwd: bDir }));
    ok(await latchkey(a, ["env", "push"], { cwd: aDir }));
    // B's pull opens A's copy (the same wrapping key) and merges it, keeping B's own vault key.
    ok(await latchkey(b, ["env", "pull"], { cwd: bDir }));

    ok(await latchkey(b, ["env", "rotate-key"]));
    const again = await latchkey(b, ["env", "pull"], { cwd: bDir });
    expect(again.stderr, again.stderr).not.toContain("LK_VAULT_DECRYPT_FAILED");
    expect(again.code, again.stderr).toBe(0);
    const exported = ok(await latchkey(b, ["env", "export", "--format", "json"], { cwd: bDir }));
    expect(JSON.parse(exported.stdout)).toEqual({ FROM_A: "a", FROM_B: "b" });
    // A is not paired any more: B's rotation re-wrapped the copy for B's new key alone.
    const stale = await latchkey(a, ["env", "pull"], { cwd: aDir });
    expect(stale.stderr, stale.stderr).toContain("error LK_VAULT_NOT_PAIRED");
  }, 120_000);
});
