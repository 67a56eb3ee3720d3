// A cloned project cannot read another project's vault by naming its id: vault ids are committed and often
// public, so a repository can copy the `vault` of a project this machine keeps secrets for into its own
// latchkey.json. With the built CLI, such a project gets nothing — `run` starts nothing, `env get`, `export`,
// `list --show`, `set`, `push` and `pull` are refused naming its file and line and the directory the vault is
// used for — until the user approves it on a real pseudo-terminal; declining records nothing; under CI only the
// user's own switch lets it through. A machine's first `env pull` of a vault binds it to the project it ran in.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CLI } from "./support/cli.js";
import {
  latchkey,
  loginCli,
  newMachine,
  startServerWithUser,
  type LatchkeyServer,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { expectFailure, expectSuccess, tempProject, type TempProject } from "./support/project.js";
import { answerOnTerminal } from "./support/pty.js";

const CANARY = "vault-canary-e2e-8c41d7";
/** What the hostile project runs: it prints whatever `latchkey run` put in SECRET. */
const PRINT_SECRET = ["--", "sh", "-c", 'printf "[%s]" "$SECRET"'];

/** The vault bindings in approvals.json: the project roots each vault is bound to. */
async function bindings(latchkeyHome: string): Promise<string[]> {
  const text = await readFile(join(latchkeyHome, "approvals.json"), "utf8").catch(() => null);
  if (text === null) return [];
  const doc = JSON.parse(text) as { approvals: { project: string; kind: string }[] };
  return doc.approvals.filter((a) => a.kind === "vault").map((a) => a.project);
}

describe("a project naming another project's vault", () => {
  let a: TempProject;
  /** The hostile checkout: another directory whose latchkey.json is a copy of the project's. */
  let evil: string;
  const inEvil = (args: string[], env: Record<string, string> = {}) => a.cli(args, { cwd: evil, env });
  const onTerminal = (args: string[], answer: "y" | "n") =>
    answerOnTerminal(process.execPath, [CLI, ...args], {
      env: a.env(),
      cwd: evil,
      question: "for this project?",
      answer,
    });

  beforeEach(async () => {
    a = await tempProject();
    expectSuccess(await a.cli(["env", "set", "SECRET"], { input: CANARY }));
    evil = join(a.root, "work", "evil");
    await mkdir(evil, { recursive: true });
    await writeFile(join(evil, "latchkey.json"), await readFile(a.file, "utf8"));
  });
  afterEach(() => a.cleanup());

  it("gets none of its secrets until the user approves it on a terminal; declining records nothing", async () => {
    const id = await a.vaultId();
    const refusals: ProcessResult[] = [];
    for (const args of [
      ["run", ...PRINT_SECRET],
      ["env", "get", "SECRET"],
      ["env", "export", "--format", "json"],
      ["env", "list", "--show"],
      ["env", "envs"],
      ["env", "set", "INJECTED=1"],
      ["env", "push"],
      ["env", "pull"],
    ]) {
      const result = await inEvil(args);
      expectFailure(result, "LK_VAULT_NOT_APPROVED");
      expect(result.stderr).toContain(`${join(evil, "latchkey.json")}:2`);
      expect(result.stderr).toContain(`this machine uses it for ${a.dir}`);
      refusals.push(result);
    }
    for (const r of refusals) expect(r.stdout + r.stderr).not.toContain(CANARY);
    // Bound to the project that created it, and to nothing else.
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir]);
    // The project's own vault is untouched by the refused write.
    expect(JSON.parse(expectOk(await a.cli(["env", "export", "--format", "json"])).stdout)).toEqual({
      SECRET: CANARY,
    });

    // Under CI: refused, unless the pipeline's own environment allows project declarations.
    const ci = await inEvil(["run", ...PRINT_SECRET], { CI: "true" });
    expectFailure(ci, "LK_VAULT_NOT_APPROVED");
    expect(ci.stderr).toContain("CI is set");
    expect(ci.stdout + ci.stderr).not.toContain(CANARY);
    const allowed = await inEvil(["run", ...PRINT_SECRET], {
      CI: "true",
      LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1",
    });
    expectSuccess(allowed);
    expect(allowed.stdout).toBe(`[${CANARY}]`);
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir]);

    // Declined on a terminal: nothing runs, nothing is recorded.
    const declined = await onTerminal(["run", ...PRINT_SECRET], "n");
    expect(declined.code).not.toBe(0);
    expect(declined.output).toContain(`declares vault ${id}, which this machine uses for ${a.dir}`);
    expect(declined.output).toContain("LK_VAULT_NOT_APPROVED");
    expect(declined.output).not.toContain(CANARY);
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir]);
    expectFailure(await inEvil(["env", "get", "SECRET"]), "LK_VAULT_NOT_APPROVED");

    // Approved: this directory may use the vault from now on, without asking again.
    const approved = await onTerminal(["run", ...PRINT_SECRET], "y");
    expect(approved.code, approved.output).toBe(0);
    expect(approved.output).toContain(`[${CANARY}]`);
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir, evil]);
    expect(expectOk(await inEvil(["run", ...PRINT_SECRET])).stdout).toBe(`[${CANARY}]`);
    expect(expectOk(await a.cli(["env", "get", "SECRET"])).stdout).toBe(CANARY);
  });

  it("needs no approval when the user's own LATCHKEY_VAULT_ID names the vault", async () => {
    const id = await a.vaultId();
    const chosen = await inEvil(["env", "get", "SECRET"], { LATCHKEY_VAULT_ID: id });
    expect(chosen.stdout).toBe(CANARY);
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir]);
  });

  it("binds a vault from before bindings to the first project that uses it (trust on first use)", async () => {
    await rm(join(a.latchkeyHome, "approvals.json"));
    expect(expectOk(await a.cli(["run", ...PRINT_SECRET])).stdout).toBe(`[${CANARY}]`);
    expect(await bindings(a.latchkeyHome)).toEqual([a.dir]);
    expectFailure(await inEvil(["run", ...PRINT_SECRET]), "LK_VAULT_NOT_APPROVED");
  });
});

describe("a machine's first pull of a vault", () => {
  const USER = { email: "project-vault@example.com", password: "correct horse battery staple 1" };
  let root: string;
  let server: LatchkeyServer;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-project-vault-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  async function checkout(name: string, latchkeyJson?: string): Promise<string> {
    const dir = join(root, "projects", name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "package.json"), JSON.stringify({ name, private: true }));
    if (latchkeyJson !== undefined) await writeFile(join(dir, "latchkey.json"), latchkeyJson);
    return dir;
  }

  it("binds it to the project it was pulled in; another checkout naming it there is refused", async () => {
    const m = await newMachine(root, "first");
    expectOk(await loginCli(m, server, USER));
    const mine = await checkout("mine");
    expectOk(await latchkey(m, ["env", "set", "SECRET"], { cwd: mine, input: CANARY }));
    expectOk(await latchkey(m, ["env", "push"], { cwd: mine }));
    const committed = await readFile(join(mine, "latchkey.json"), "utf8");

    // A second machine of the user's (its wrapping key, as pairing gives it) that has never had this vault.
    const second = await newMachine(root, "second");
    await rm(second.latchkeyHome, { recursive: true });
    await cp(m.latchkeyHome, second.latchkeyHome, { recursive: true });
    await rm(join(second.latchkeyHome, "vaults"), { recursive: true });
    await rm(join(second.latchkeyHome, "approvals.json"));
    expectOk(await loginCli(second, server, USER));
    const clone = await checkout("clone", committed);
    expectOk(await latchkey(second, ["env", "pull"], { cwd: clone }));
    expect(expectOk(await latchkey(second, ["env", "get", "SECRET"], { cwd: clone })).stdout).toBe(CANARY);

    const evil = await checkout("evil", committed);
    const output = join(evil, ".env");
    for (const args of [
      ["run", ...PRINT_SECRET],
      ["env", "pull", "--output", output],
    ]) {
      const refused = await latchkey(second, args, { cwd: evil });
      expect(refused.stderr, refused.stderr).toContain("error LK_VAULT_NOT_APPROVED");
      expect(refused.stderr).toContain(`this machine uses it for ${clone}`);
      expect(refused.stdout + refused.stderr).not.toContain(CANARY);
    }
    await expect(readFile(output)).rejects.toThrow(/ENOENT/);
    expect(await bindings(second.latchkeyHome)).toEqual([clone]);
  }, 90_000);
});

function expectOk<T extends ProcessResult>(result: T): T {
  expect(result.code, `exit ${result.code}: ${result.stderr}`).toBe(0);
  return result;
}
