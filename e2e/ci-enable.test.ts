// `latchkey env ci enable`, `show` and `disable` with the real server process and the built CLI, enable on a real
// pseudo-terminal (docs/ci.md, "The CLI"): what the policy allows and that the server can decrypt the vault are
// shown before the password prompt; without a terminal nothing is sent; a member of an organisation is refused
// with the server's 403; and a share with a new vault key to a copy with CI enabled goes through, its escrow
// carried along (the server refuses the first attempt, the CLI sends it again with the new key's escrow).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  latchkey,
  loginCli,
  newMachine,
  startServerWithUser,
  type LatchkeyServer,
} from "./support/latchkey-server.js";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  refused,
  registerSharingKey,
  type Member,
} from "./support/teams.js";

const ANN = { email: "ci-ann@example.com", password: "ci ann password for the e2e suite" };
const POLICY = ["--provider", "github", "--repo", "acme/web", "--repo-id", "42", "--owner-id", "7"];

interface Shown {
  vaultId: string;
  org: string | null;
  escrowVersion: number;
  policy: { repository: string; branches: string[]; environments: string[] };
}

describe.skipIf(!requirePart("the env ci e2e suite", terminalCheck()))("env ci enable, show, disable", () => {
  let root: string;
  let server: LatchkeyServer;
  let ann: Member;
  let dir: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-ci-enable-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
    const m = await newMachine(root, "ann");
    ok(await loginCli(m, server, ANN));
    ann = { ...ANN, m };
    dir = await projectDir(root, "web", "web");
    ok(await latchkey(ann.m, ["env", "set", "API_KEY=sk-ci-e2e-1"], { cwd: dir }));
    ok(await latchkey(ann.m, ["env", "push"], { cwd: dir }));
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const show = async (args: string[] = []): Promise<Shown> =>
    JSON.parse(
      ok(await latchkey(ann.m, ["env", "ci", "show", "--json", ...args], { cwd: dir })).stdout,
    ) as Shown;

  it("without a terminal: LK_NOT_INTERACTIVE, and the copy has no policy", async () => {
    const script = refused(
      await latchkey(ann.m, ["env", "ci", "enable", ...POLICY, "--branch", "main"], { cwd: dir }),
      "LK_NOT_INTERACTIVE",
    );
    expect(script.stderr).toContain("Nothing was sent.");
    refused(await latchkey(ann.m, ["env", "ci", "show"], { cwd: dir }), "LK_CI_NOT_ENABLED");
  }, 120_000);

  it("on a terminal: the policy in words and the escrow stated before the password; show, a push, disable", async () => {
    const enabled = await onTerminal(
      ann,
      [
        "env",
        "ci",
        "enable",
        ...POLICY,
        "--branch",
        "main",
        "--branch",
        "release/*",
        "--environment",
        "default",
      ],
      { cwd: dir },
    );
    expect(enabled.code, enabled.output).toBe(0);
    const { output } = enabled;
    const prompt = output.indexOf("Password");
    expect(prompt).toBeGreaterThan(0);
    for (const said of [
      "repository:  acme/web on GitHub (repository id 42, owner id 7",
      "branches:  main, release/*",
      "environments:  default",
      "forks:  refused",
      `audience:  ${server.url}`,
      "issuer:  https://token.actions.githubusercontent.com",
      "From now on the server can decrypt vault",
    ]) {
      const at = output.indexOf(said);
      expect(at, said).toBeGreaterThanOrEqual(0);
      expect(at, said).toBeLessThan(prompt);
    }
    expect(output).toContain("CI pulls enabled for vault");
    expect(output).toContain("Next: `latchkey setup ci --oidc --provider github`");
    expect(output).not.toContain(ANN.password);

    const vaultId = (JSON.parse(await latchkeyJsonOf(dir)) as { vault: string }).vault;
    expect(await show()).toMatchObject({
      vaultId,
      org: null,
      escrowVersion: 1,
      policy: { repository: "acme/web", branches: ["main", "release/*"], environments: ["default"] },
    });
    // A push sealed with the same vault key moves the escrow's version on, with nothing to re-escrow.
    ok(await latchkey(ann.m, ["env", "set", "API_KEY=sk-ci-e2e-2"], { cwd: dir }));
    ok(await latchkey(ann.m, ["env", "push"], { cwd: dir }));
    expect(await show()).toMatchObject({ escrowVersion: 2 });
    const log = JSON.parse(ok(await latchkey(ann.m, ["env", "log", "--json"], { cwd: dir })).stdout) as {
      entries: { action: string }[];
    };
    expect(log.entries.map((e) => e.action)).toContain("vault.ci.enable");

    const disabled = ok(await latchkey(ann.m, ["env", "ci", "disable"], { cwd: dir }));
    expect(disabled.stderr).toContain("Disabled CI pulls of vault");
    refused(await latchkey(ann.m, ["env", "ci", "show"], { cwd: dir }), "LK_CI_NOT_ENABLED");
    expect(ok(await latchkey(ann.m, ["env", "ci", "disable"], { cwd: dir })).stderr).toContain(
      "CI pulls were not enabled",
    );
  }, 180_000);

  it("an organisation's copy: a member is refused with the server's 403; a share with a new key re-escrows", async () => {
    const created = await onTerminal(ann, ["org", "create", "acme"]);
    expect(created.code, created.output).toBe(0);
    const bob = await newMember(server, root, "bob", "ci-bob@example.com");
    await registerSharingKey(bob);
    await addMember(ann, "acme", bob.email, "member");
    ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: dir }));
    const bobDir = await projectDir(root, "web-bob", "web", await latchkeyJsonOf(dir));
    ok(await latchkey(bob.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: bobDir }));

    const member = await onTerminal(
      bob,
      ["env", "ci", "enable", "--org", "acme", ...POLICY, "--branch", "main"],
      {
        cwd: bobDir,
      },
    );
    expect(member.code, member.output).not.toBe(0);
    expect(member.output).toContain("error LK_ORG_FORBIDDEN");
    expect(member.output).toContain("it needs maintainer or stronger");
    refused(
      await latchkey(bob.m, ["env", "ci", "show", "--org", "acme"], { cwd: bobDir }),
      "LK_CI_NOT_ENABLED",
    );

    const enabled = await onTerminal(
      ann,
      ["env", "ci", "enable", "--org", "acme", ...POLICY, "--branch", "main"],
      {
        cwd: dir,
      },
    );
    expect(enabled.code, enabled.output).toBe(0);
    expect(enabled.output).toContain("From now on the server can decrypt organisation acme's copy of vault");
    expect(await show(["--org", "acme"])).toMatchObject({ org: "acme", escrowVersion: 1 });

    // A new organisation vault key: the server refuses the share until it carries that key's escrow.
    const rekeyed = JSON.parse(
      ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--new-key", "--json"], { cwd: dir }))
        .stdout,
    ) as { version: number; newKey: boolean };
    expect(rekeyed).toMatchObject({ version: 2, newKey: true });
    expect(await show(["--org", "acme"])).toMatchObject({ escrowVersion: 2 });
    // A member can read the policy.
    expect(
      JSON.parse(
        ok(await latchkey(bob.m, ["env", "ci", "show", "--org", "acme", "--json"], { cwd: bobDir })).stdout,
      ),
    ).toMatchObject({ org: "acme", escrowVersion: 2 });
  }, 240_000);
});
