// `env ci enable`, `show` and `disable` in process, against a fake of the CI routes that checks every body with
// core's schemas, spends a `vault:ci:enable` proof per enable and opens the copy's head with the escrowed key, as
// the real server does (test/support/ci-server.ts).
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBase64, openEnvelope, syncBlobContext, type CiEnableRequest } from "@latchkey/core";
import type { CapturedStream } from "../../test/support/context.js";
import { GITHUB_ISSUER, ciRoutes, escrowedKey, fakeCi, type FakeCi } from "../../test/support/ci-server.js";
import { memberVaultKey, orgTeam, sealedCopy, type OrgTeam } from "../../test/support/org-server.js";
import { sharingMachine, type SharingMachine } from "../../test/support/sharing-key-server.js";
import { runCli } from "../cli.js";
import type { Context, Spawn } from "../context.js";
import { pushVault, shareVault } from "../sync/push.js";
import { loadVaultKey } from "../vault/vault-store.js";
import { disableCi, enableCi, showCi, type CiEnableOptions } from "./policy.js";

const VAULT = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-ci-policy-"));
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

/** gh as a fake: what it was asked, and its answer (a repository, or absent from the machine). */
function fakeGh(answer: Record<string, unknown> | "absent" | { exit: number; stderr: string }) {
  const calls: string[][] = [];
  const spawn: Spawn = (command, args) => {
    calls.push([command, ...args]);
    if (answer === "absent")
      return Promise.reject(Object.assign(new Error("spawn gh ENOENT"), { code: "ENOENT" }));
    if ("exit" in answer) {
      return Promise.resolve({
        code: answer.exit as number,
        signal: null,
        stdout: "",
        stderr: answer.stderr as string,
        timedOut: false,
      });
    }
    return Promise.resolve({
      code: 0,
      signal: null,
      stdout: JSON.stringify(answer),
      stderr: "",
      timedOut: false,
    });
  };
  return { calls, spawn };
}

const ACME_WEB = {
  id: 123456,
  full_name: "acme/web",
  owner: { id: 789, login: "acme" },
  default_branch: "trunk",
};

/** A machine whose personal copy of VAULT is on the fake server at version 1, with the CI routes in front. */
async function personal(): Promise<{ machine: SharingMachine; ci: FakeCi; dir: string }> {
  const dir = await projectDir();
  const machine = sharingMachine(root, `m${n}`, { cwd: dir });
  const ci = await fakeCi();
  machine.server.extra = ciRoutes(machine.server, ci);
  expect(await runCli(["env", "set", "API_KEY=v-1"], machine.ctx)).toBe(0);
  await pushVault(machine.ctx);
  return { machine, ci, dir };
}

/** An organisation team whose copy of VAULT this maintainer shared (so this machine holds its key). */
async function team(): Promise<OrgTeam & { ci: FakeCi }> {
  const dir = await projectDir();
  const t = await orgTeam(root, `m${n}`, "maintainer", { cwd: dir });
  const ci = await fakeCi(t.org);
  t.machine.server.extra = ciRoutes(t.machine.server, ci, t.machine.server.extra);
  expect(await runCli(["env", "set", "API_KEY=v-1"], t.machine.ctx)).toBe(0);
  await shareVault(t.machine.ctx, { org: "acme" });
  return { ...t, ci };
}

const enable = (extra: Partial<CiEnableOptions> = {}): CiEnableOptions => ({
  provider: "github",
  repo: "acme/web",
  branches: [],
  environments: [],
  allowForks: false,
  protectedOnly: false,
  ...extra,
});

const ciPuts = (machine: SharingMachine) =>
  machine.server.seen.filter((r) => r.method === "PUT" && r.path.endsWith("/ci"));
const sent = (machine: SharingMachine): CiEnableRequest => JSON.parse(ciPuts(machine).at(-1)!.body);

/** The context with `spawn`, and a record of what stderr held when the password was asked. */
function withGh(machine: SharingMachine, spawn: Spawn): { ctx: Context; atPrompt: () => string | null } {
  let atPrompt: string | null = null;
  const ctx: Context = {
    ...machine.ctx,
    spawn,
    prompts: {
      ...machine.ctx.prompts,
      secret: (message) => {
        atPrompt ??= machine.ctx.stderr.text();
        return machine.ctx.prompts.secret(message);
      },
    },
  };
  return { ctx, atPrompt: () => atPrompt };
}

describe("env ci enable, personal copy", () => {
  it("with gh: the ids, GitHub's spelling and the default branch come from `gh api`; the summary comes before the password", async () => {
    const { machine, ci } = await personal();
    const gh = fakeGh(ACME_WEB);
    const { ctx, atPrompt } = withGh(machine, gh.spawn);
    const outcome = await enableCi(ctx, enable({ repo: "Acme/Web", environments: ["default"] }));
    expect(gh.calls).toEqual([["gh", "api", "repos/Acme/Web"]]);
    expect(sent(machine).policy).toEqual({
      provider: "github",
      issuer: GITHUB_ISSUER,
      repository: "acme/web",
      repositoryId: "123456",
      ownerId: "789",
      branches: ["trunk"],
      environments: ["default"],
      allowForks: false,
      protectedRefsOnly: false,
      audience: "https://lk.sharing.example",
    });
    expect(outcome).toMatchObject({ vaultId: VAULT, org: null, escrowVersion: 1 });
    // The escrow holds the key the personal copy is sealed with, and opens its head.
    const escrowed = await escrowedKey(ci, sent(machine).escrow.escrowedKey);
    expect(escrowed).toEqual(await loadVaultKey(vaultDeps(machine), VAULT));
    const head = ci.personal.get(VAULT)!;
    await expect(
      openEnvelope(escrowed!, fromBase64(head.encryptedBlob), syncBlobContext(VAULT, 1)),
    ).resolves.toBeInstanceOf(Uint8Array);
    // What the policy allows, and that the server can read the vault, were said before the password was asked.
    const before = atPrompt()!;
    expect(before).toContain("GitHub spells the repository acme/web");
    expect(before).toContain("No --branch: the policy allows acme/web's default branch, trunk.");
    expect(before).toContain("repository:  acme/web on GitHub (repository id 123456, owner id 789");
    expect(before).toContain("branches:  trunk");
    expect(before).toContain("environments:  default (the job must run in that deployment environment");
    expect(before).toContain("forks:  refused (only runs of push, workflow_dispatch, schedule, release and");
    expect(before).toContain(`From now on the server can decrypt vault ${VAULT}`);
    expect(machine.asked).toEqual(["Password"]);
    // The proof minted was for this scope, and spent by the enable.
    expect([...machine.server.proofs.values()]).toEqual([{ scope: "vault:ci:enable", spent: true }]);
  });

  it("without gh: LK_USAGE naming --repo-id and --owner-id and where to find them; nothing asked or sent", async () => {
    const { machine } = await personal();
    const gh = fakeGh("absent");
    const { ctx } = withGh(machine, gh.spawn);
    await expect(enableCi(ctx, enable())).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringContaining(
        "gh (GitHub's CLI) is not installed, so add --repo-id N and --owner-id N and --branch GLOB",
      ),
      hint: expect.stringContaining("gh api repos/OWNER/REPO --jq '.id, .owner.id'"),
    });
    expect(machine.asked).toEqual([]);
    expect(ciPuts(machine)).toHaveLength(0);
    // gh failing (not logged in, no access) is a reason too, with what gh said.
    const failing = withGh(machine, fakeGh({ exit: 1, stderr: "HTTP 404: Not Found\n" }).spawn);
    await expect(enableCi(failing.ctx, enable())).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringContaining("`gh api repos/acme/web` failed (exit 1): HTTP 404: Not Found"),
    });
  });

  it("with the ids and a branch on the command line gh is not asked; ids gh contradicts are refused", async () => {
    const { machine } = await personal();
    const none = fakeGh("absent");
    await enableCi(
      withGh(machine, none.spawn).ctx,
      enable({ repoId: "42", ownerId: "7", branches: ["main", "release/*"], allowForks: true }),
    );
    expect(none.calls).toEqual([]);
    expect(sent(machine).policy).toMatchObject({
      repositoryId: "42",
      ownerId: "7",
      branches: ["main", "release/*"],
      allowForks: true,
    });
    expect(machine.ctx.stderr.text()).toContain("forks:  ALLOWED");
    const gh = fakeGh(ACME_WEB);
    await expect(enableCi(withGh(machine, gh.spawn).ctx, enable({ repoId: "42" }))).rejects.toMatchObject({
      code: "LK_USAGE",
      message: "--repo-id 42 is not what GitHub says of acme/web (123456).",
    });
    // A repository GitHub knows under another name (renamed, transferred) is refused with that name.
    const moved = fakeGh({ ...ACME_WEB, full_name: "acme/site" });
    await expect(enableCi(withGh(machine, moved.spawn).ctx, enable())).rejects.toMatchObject({
      code: "LK_USAGE",
      hint: "Pass --repo acme/site.",
    });
  });

  it("the command line: repeated --branch and --environment, --allow-forks, --audience reach the policy", async () => {
    const { machine } = await personal();
    const ctx = withGh(machine, fakeGh("absent").spawn).ctx;
    const argv = ["env", "ci", "enable", "--provider", "github", "--repo", "acme/web", "--repo-id", "42"];
    const more = [
      "--owner-id",
      "7",
      "--branch",
      "main",
      "--branch",
      "release/*",
      "--environment",
      "production",
    ];
    const rest = ["--environment", "staging", "--allow-forks", "--audience", "latchkey-ci", "--json"];
    expect(await runCli([...argv, ...more, ...rest], ctx)).toBe(0);
    expect(sent(machine).policy).toEqual({
      provider: "github",
      issuer: GITHUB_ISSUER,
      repository: "acme/web",
      repositoryId: "42",
      ownerId: "7",
      branches: ["main", "release/*"],
      environments: ["production", "staging"],
      allowForks: true,
      protectedRefsOnly: false,
      audience: "latchkey-ci",
    });
    expect(JSON.parse((machine.ctx.stdout as CapturedStream).text())).toMatchObject({
      vaultId: VAULT,
      server: "https://lk.sharing.example",
      policy: { audience: "latchkey-ci" },
    });
    // Without --json: what was done, and the next step.
    expect(await runCli([...argv, ...more], ctx)).toBe(0);
    expect(machine.ctx.stderr.text()).toContain(
      `CI pulls enabled for vault ${VAULT} on https://lk.sharing.example; the escrow opens its version 1.\n` +
        "Next: `latchkey setup ci --oidc --provider github` prints what the workflow needs",
    );
  });

  it("several issuers of the provider: LK_USAGE listing them until --issuer names one", async () => {
    const { machine, ci } = await personal();
    ci.issuers.push({ provider: "gitlab", issuer: "https://gitlab.acme.example" });
    const { ctx } = withGh(machine, fakeGh("absent").spawn);
    const gitlab = enable({ provider: "gitlab", repo: "acme/platform/web", repoId: "4521", ownerId: "88" });
    await expect(enableCi(ctx, { ...gitlab, branches: ["main"] })).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringContaining(
        "trusts several GitLab issuers (https://gitlab.com, https://gitlab.acme.example)",
      ),
      hint: "Add --issuer URL with one of them, e.g. --issuer https://gitlab.com.",
    });
    await expect(
      enableCi(ctx, { ...gitlab, branches: ["main"], issuer: "https://gitlab.evil.example" }),
    ).rejects.toMatchObject({ code: "LK_USAGE" });
    expect(ciPuts(machine)).toHaveLength(0);
    await enableCi(ctx, {
      ...gitlab,
      branches: ["main"],
      issuer: "https://gitlab.acme.example",
      protectedOnly: true,
    });
    expect(sent(machine).policy).toMatchObject({
      provider: "gitlab",
      issuer: "https://gitlab.acme.example",
      repository: "acme/platform/web",
      protectedRefsOnly: true,
    });
    expect(machine.ctx.stderr.text()).toContain(
      "project:  acme/platform/web on GitLab (project id 4521, namespace id 88",
    );
    expect(machine.ctx.stderr.text()).toContain("protected refs only:  yes");
  });

  it("GitLab needs the ids and a branch on the command line: LK_USAGE saying which and where to find them", async () => {
    const { machine } = await personal();
    const gh = fakeGh(ACME_WEB);
    await expect(
      enableCi(
        withGh(machine, gh.spawn).ctx,
        enable({ provider: "gitlab", repo: "acme/web", repoId: "4521" }),
      ),
    ).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringContaining("add --owner-id N (the namespace id), --branch GLOB"),
      hint: expect.stringContaining("namespace.id"),
    });
    expect(gh.calls).toEqual([]);
  });

  it("refuses what the server would refuse before anything is asked: --protected-only on GitHub, a bad --repo", async () => {
    const { machine } = await personal();
    const before = machine.server.seen.length;
    const { ctx } = withGh(machine, fakeGh(ACME_WEB).spawn);
    await expect(enableCi(ctx, enable({ protectedOnly: true }))).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringContaining("--protected-only is for GitLab"),
    });
    await expect(enableCi(ctx, enable({ repo: "acme" }))).rejects.toMatchObject({
      code: "LK_USAGE",
      message: expect.stringMatching(/^--repo is not valid: "repository" must be OWNER\/REPO/),
    });
    await expect(enableCi(ctx, enable({ repoId: "0x10" }))).rejects.toMatchObject({ code: "LK_USAGE" });
    await expect(enableCi(ctx, enable({ provider: "jenkins" }))).rejects.toMatchObject({ code: "LK_USAGE" });
    expect(machine.server.seen).toHaveLength(before);
  });

  it("without a terminal: LK_NOT_INTERACTIVE before any request, gh or prompt", async () => {
    const { machine } = await personal();
    const before = machine.server.seen.length;
    const gh = fakeGh(ACME_WEB);
    const ctx: Context = {
      ...machine.ctx,
      spawn: gh.spawn,
      stdin: { isTTY: false, readAll: () => Promise.reject(new Error("no")) },
    };
    await expect(enableCi(ctx, enable())).rejects.toMatchObject({
      code: "LK_NOT_INTERACTIVE",
      message: expect.stringContaining("Nothing was sent."),
    });
    expect(machine.server.seen).toHaveLength(before);
    expect(gh.calls).toEqual([]);
    expect(machine.asked).toEqual([]);
  });

  it("a copy the server does not have: the server's 404 in the command's words", async () => {
    const { machine, ci } = await personal();
    ci.personal.clear();
    await expect(enableCi(withGh(machine, fakeGh(ACME_WEB).spawn).ctx, enable())).rejects.toMatchObject({
      code: "LK_VAULT_NOT_SYNCED",
      hint: "Run `latchkey env push` first, then enable CI.",
    });
  });
});

const vaultDeps = (machine: SharingMachine) => ({
  keystore: machine.keystore,
  home: machine.ctx.paths.home,
  vaultsDir: machine.ctx.paths.vaults,
  random: machine.ctx.random,
});

describe("env ci enable, an organisation's copy", () => {
  it("a maintainer escrows the organisation's key (not the local one): it opens the copy's head", async () => {
    const t = await team();
    await enableCi(withGh(t.machine, fakeGh(ACME_WEB).spawn).ctx, enable({ org: "acme" }));
    const puts = ciPuts(t.machine);
    expect(puts.map((r) => r.path)).toEqual([`/api/v1/orgs/acme/vaults/${VAULT}/ci`]);
    const escrowed = await escrowedKey(t.ci, sent(t.machine).escrow.escrowedKey);
    const copy = t.org.copies.get(VAULT)!;
    expect(escrowed).toEqual(await memberVaultKey(copy, t.bob, t.org, VAULT));
    expect(escrowed).not.toEqual(await loadVaultKey(vaultDeps(t.machine), VAULT));
    expect(t.ci.policies.get(`acme:${VAULT}`)).toMatchObject({ escrowVersion: copy.version });
    expect(t.machine.ctx.stderr.text()).toContain(
      `From now on the server can decrypt organisation acme's copy of vault ${VAULT}`,
    );
  });

  it("a member: the server's 403 is passed on as LK_ORG_FORBIDDEN naming the role it needs, nothing stored", async () => {
    const t = await team();
    t.me.role = "member";
    await expect(
      enableCi(withGh(t.machine, fakeGh(ACME_WEB).spawn).ctx, enable({ org: "acme" })),
    ).rejects.toMatchObject({
      code: "LK_ORG_FORBIDDEN",
      message: expect.stringContaining("(it needs maintainer or stronger). Nothing was changed."),
      hint: expect.stringContaining("latchkey env ci enable --org acme"),
    });
    expect(t.ci.policies.size).toBe(0);
  });

  it("a copy this machine has not pulled: LK_ORG_VAULT_NOT_SYNCED before any password", async () => {
    const dir = await projectDir();
    const t = await orgTeam(root, `m${n}`, "maintainer", { cwd: dir });
    const ci = await fakeCi(t.org);
    t.machine.server.extra = ciRoutes(t.machine.server, ci, t.machine.server.extra);
    expect(await runCli(["env", "set", "API_KEY=v-1"], t.machine.ctx)).toBe(0);
    const asked = t.machine.asked.length;
    await expect(
      enableCi(withGh(t.machine, fakeGh(ACME_WEB).spawn).ctx, enable({ org: "acme" })),
    ).rejects.toMatchObject({
      code: "LK_ORG_VAULT_NOT_SYNCED",
      hint: "Run `latchkey env pull --org acme` first, then enable CI again.",
    });
    expect(t.machine.asked).toHaveLength(asked);
    expect(ciPuts(t.machine)).toHaveLength(0);
  });

  it("a key the copy moved past (a rotation elsewhere): the server's LK_CI_ESCROW_INVALID says to pull first", async () => {
    const t = await team();
    // Another maintainer gave the copy a new key since this machine shared it.
    const other = await orgTeamCopy(t);
    expect(other).toBe(2);
    await expect(
      enableCi(withGh(t.machine, fakeGh(ACME_WEB).spawn).ctx, enable({ org: "acme" })),
    ).rejects.toMatchObject({
      code: "LK_CI_ESCROW_INVALID",
      hint: "Run `latchkey env pull --org acme`, then enable CI again.",
    });
    expect(t.ci.policies.size).toBe(0);
  });
});

/** Seals the team's copy again with a new key, as a rotation by another maintainer would; its new version. */
async function orgTeamCopy(t: OrgTeam): Promise<number> {
  const copy = t.org.copies.get(VAULT)!;
  await sealedCopy(t.machine.server, t.org, VAULT, {
    version: copy.version + 1,
    vaultKey: t.machine.ctx.random.bytes(32),
    document: { default: { API_KEY: "v-2" } },
    members: [t.me, t.bob],
  });
  return t.org.copies.get(VAULT)!.version;
}

describe("env ci show and disable", () => {
  it("show: the policy, its escrow and who enabled it; not enabled is LK_CI_NOT_ENABLED with the way to enable", async () => {
    const { machine, ci } = await personal();
    await expect(showCi(machine.ctx, {})).rejects.toMatchObject({
      code: "LK_CI_NOT_ENABLED",
      message: `CI pulls are not enabled for vault ${VAULT}: no CI job can pull it.`,
    });
    await enableCi(withGh(machine, fakeGh(ACME_WEB).spawn).ctx, enable());
    expect(await showCi(machine.ctx, {})).toMatchObject({
      vaultId: VAULT,
      org: null,
      escrowVersion: 1,
      escrowKeyFingerprint: ci.escrow.fingerprint,
      enabledBy: "me@example.com",
      policy: { repository: "acme/web", branches: ["trunk"] },
    });
    expect(await runCli(["env", "ci", "show"], machine.ctx)).toBe(0);
    const shown = (machine.ctx.stdout as CapturedStream).text();
    expect(shown).toContain(`CI pulls of vault ${VAULT} on https://lk.sharing.example:`);
    expect(shown).toContain(`escrow:  opens version 1; escrow key ${ci.escrow.fingerprint}`);
    expect(shown).toContain("enabled:  2030-01-01T00:00:00.000Z by me@example.com");
  });

  it("disable: no password; deletes the policy and its escrow; a second disable says there was nothing", async () => {
    const { machine, ci } = await personal();
    await enableCi(withGh(machine, fakeGh(ACME_WEB).spawn).ctx, enable());
    const asked = machine.asked.length;
    expect(await runCli(["env", "ci", "disable"], machine.ctx)).toBe(0);
    expect(ci.policies.size).toBe(0);
    expect(machine.asked).toHaveLength(asked);
    expect(machine.ctx.stderr.text()).toContain(
      `Disabled CI pulls of vault ${VAULT} on https://lk.sharing.example: its policy and its escrowed key are deleted there`,
    );
    expect(await disableCi(machine.ctx, {})).toMatchObject({ disabled: false });
    expect(await runCli(["env", "ci", "disable"], machine.ctx)).toBe(0);
    expect(machine.ctx.stderr.text()).toContain("CI pulls were not enabled for vault");
  });

  it("disable on an organisation's copy as a member: LK_ORG_FORBIDDEN, the policy stays", async () => {
    const t = await team();
    await enableCi(withGh(t.machine, fakeGh(ACME_WEB).spawn).ctx, enable({ org: "acme" }));
    t.me.role = "member";
    expect(await showCi(t.machine.ctx, { org: "acme" })).toMatchObject({ org: "acme" });
    await expect(disableCi(t.machine.ctx, { org: "acme" })).rejects.toMatchObject({
      code: "LK_ORG_FORBIDDEN",
      hint: expect.stringContaining("latchkey env ci disable --org acme"),
    });
    expect(t.ci.policies.size).toBe(1);
  });
});
