// A second machine of the same user that is not paired for a vault says so, with the real server process and
// the built CLI (machines are processes with their own HOME and LATCHKEY_HOME):
// - B has a checkout of a project whose vault A pushed: every command that touches the vault (env list, get, set,
//   push, pull, run and the rest) fails with LK_VAULT_NOT_PAIRED pointing at `latchkey pair`, and writes
//   nothing. Before, `env list` said there was no environment `default`, `env set` started a second vault here,
//   and its push then conflicted at base 0 forever, pull or no pull.
// - B was paired (a copy of A's home, so A's wrapping key) and pulled; A runs `env rotate-key`; B's pull is then
//   LK_VAULT_NOT_PAIRED with the hint to pair again.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  latchkey,
  loginCli,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { copyOfMachine, ok, signedInMachine } from "./support/machines.js";
import { projectDir } from "./support/teams.js";
import { approveVaultOnTerminal, snapshot } from "./support/project.js";

const USER = { email: "unpaired@example.com", password: "unpaired password for e2e" };
let root: string;
let server: LatchkeyServer;
let a: Machine;

function notPaired(result: ProcessResult, label: string): void {
  expect(result.stderr, `${label}: ${result.stderr}`).toContain("error LK_VAULT_NOT_PAIRED");
  expect(result.stderr, label).toContain("latchkey pair");
  expect(result.stderr, label).not.toContain("LK_ENV_NOT_FOUND");
  expect(result.stderr, label).not.toContain("LK_VAULT_CONFLICT");
  expect(result.code, label).toBe(1);
}

/** A project directory (package.json marks its root), with `latchkeyJson` as its latchkey.json when given. */
const project = (name: string, latchkeyJson?: string): Promise<string> =>
  projectDir(root, name, name, latchkeyJson);

const loggedIn = (name: string): Promise<Machine> => signedInMachine(root, name, server, USER);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-e2e-unpaired-"));
  server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
  a = await loggedIn("a");
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("a machine that is not paired for a vault", () => {
  it("every command on the vault says LK_VAULT_NOT_PAIRED and writes nothing; no loop through env set and push", async () => {
    const dir = await project("app");
    ok(await latchkey(a, ["env", "set", "ONLY_ON_A=a"], { cwd: dir }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    const committed = await readFile(join(dir, "latchkey.json"), "utf8");
    expect(JSON.parse(committed)).toMatchObject({ vaultSync: { personalVersion: 1 } });

    const b = await loggedIn("b");
    const bDir = await project("app-on-b", committed);
    const before = { home: await snapshot(b.latchkeyHome), project: await snapshot(bDir) };
    const commands = [
      ["env", "list"],
      ["env", "get", "ONLY_ON_A"],
      ["run", "--", "true"],
      ["env", "envs"],
      ["env", "export"],
      ["env", "set", "ONLY_ON_B=b"],
      ["env", "push"],
      ["env", "pull"],
    ];
    for (const args of commands) notPaired(await latchkey(b, args, { cwd: bDir }), args.join(" "));
    expect({ home: await snapshot(b.latchkeyHome), project: await snapshot(bDir) }).toEqual(before);

    // A copy of the vault B started before it could tell (here: in a checkout whose latchkey.json has no
    // vaultSync yet): its push is refused as not paired, since pulling first could never help.
    const early = await project("app-on-b-early", JSON.stringify({ vault: JSON.parse(committed).vault }));
    ok(await latchkey(b, ["env", "set", "ONLY_ON_B=b"], { cwd: early }));
    await writeFile(join(early, "latchkey.json"), committed);
    const push = await latchkey(b, ["env", "push"], { cwd: early });
    notPaired(push, "push of an early copy");
    expect(push.stderr).toContain("nothing was overwritten");
    // A's copy is still A's.
    const pulled = ok(await latchkey(a, ["env", "pull"], { cwd: dir }));
    expect(pulled.stderr).not.toContain("ONLY_ON_B");
    const onA = ok(await latchkey(a, ["env", "export", "--format", "json"], { cwd: dir }));
    expect(JSON.parse(onA.stdout)).toEqual({ ONLY_ON_A: "a" });
  }, 120_000);

  it("after `env rotate-key` on A, the machine paired with A before gets LK_VAULT_NOT_PAIRED: pair again", async () => {
    const dir = await project("rotated");
    ok(await latchkey(a, ["env", "set", "SECRET=s1"], { cwd: dir }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));

    // B is paired with A: a copy of A's home holds A's wrapping key. It signs in on its own and pulls.
    const b = await copyOfMachine(root, "b-paired", a);
    ok(await loginCli(b, server, USER));
    const bDir = await project("rotated-on-b", await readFile(join(dir, "latchkey.json"), "utf8"));
    await approveVaultOnTerminal(b.env, bDir);
    ok(await latchkey(b, ["env", "pull"], { cwd: bDir }));
    ok(await latchkey(a, ["env", "set", "SECRET=s2"], { cwd: dir }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    ok(await latchkey(b, ["env", "pull"], { cwd: bDir }));

    ok(await latchkey(a, ["env", "rotate-key"]));
    ok(await latchkey(a, ["env", "set", "SECRET=s3"], { cwd: dir }));
    ok(await latchkey(a, ["env", "push"], { cwd: dir }));
    const before = await snapshot(b.latchkeyHome);
    const pull = await latchkey(b, ["env", "pull"], { cwd: bDir });
    notPaired(pull, "pull after A rotated");
    expect(pull.stderr).toContain("no longer paired");
    expect(pull.stderr).toContain("latchkey env rotate-key");
    expect(pull.stderr).toContain("Pair this machine again");
    expect(await snapshot(b.latchkeyHome)).toEqual(before);
    // What B had stays readable on B.
    const onB = ok(await latchkey(b, ["env", "get", "SECRET"], { cwd: bDir }));
    expect(onB.stdout.trim()).toBe("s2");
  }, 180_000);
});
