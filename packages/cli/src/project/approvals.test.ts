import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import type { Context } from "../context.js";
import { resolvePaths } from "../paths.js";
import {
  APPROVALS_FILE,
  authorizeDeclaration,
  authorizeVaultUse,
  declarationSha256,
  displayQuoted,
  isApproved,
  readApprovals,
  recordApproval,
  type ApprovalRequest,
  type ProjectDeclaration,
} from "./approvals.js";

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-approvals-"));
});
afterEach(() => rm(home, { recursive: true, force: true }));

function context(
  env: Record<string, string> = {},
  terminal?: { confirm: (message: string) => Promise<boolean> },
): Context {
  const full = { LATCHKEY_HOME: home, ...env };
  return createTestContext({
    env: full,
    paths: resolvePaths(full),
    clock: { now: () => Date.parse("2030-01-01T00:00:00Z"), sleep: () => Promise.resolve() },
    ...(terminal === undefined
      ? {}
      : {
          stdin: { isTTY: true, readAll: () => Promise.reject(new Error("Unexpected stdin")) },
          stderrTTY: true,
          prompts: {
            secret: () => Promise.reject(new Error("Unexpected secret prompt")),
            confirm: terminal.confirm,
          },
        }),
  });
}

const ARGV = ["node", "scripts/npm-token.js"];
const provider: ProjectDeclaration = {
  kind: "provider",
  file: "/work/app/latchkey.json",
  line: 5,
  content: { registry: "https://npm.example.com/", argv: ARGV },
};

/** A version-1 file as Latchkey wrote it before tokenEnv approvals existed. */
async function writeV1(entries: unknown[]): Promise<void> {
  await writeFile(join(home, APPROVALS_FILE), JSON.stringify({ version: 1, approvals: entries }), {
    mode: 0o600,
  });
}
const v1Entry = (argv: string[], project = "/work/app") => ({
  project,
  argvSha256: createHash("sha256").update(JSON.stringify(argv)).digest("hex"),
  argv,
  approvedAt: "2029-06-01T00:00:00.000Z",
});

describe("approvals.json", () => {
  it("reads a version-1 file's provider approvals as none: they named no registry, so they ask again", async () => {
    await writeV1([v1Entry(ARGV)]);
    expect(await readApprovals(context())).toEqual([]);
    expect(await isApproved(context(), provider)).toBe(false);
    expect(await isApproved(context(), { ...provider, content: ARGV })).toBe(false);

    const tokenEnv: ProjectDeclaration = {
      kind: "tokenEnv",
      file: "/work/app/latchkey.json",
      line: 3,
      content: { registry: "https://npm.example.com/", tokenEnv: "TEAM_TOKEN" },
    };
    await recordApproval(context(), tokenEnv);
    const doc = JSON.parse(await readFile(join(home, APPROVALS_FILE), "utf8"));
    expect(doc).toEqual({
      version: 2,
      approvals: [
        {
          project: "/work/app",
          kind: "tokenEnv",
          sha256: declarationSha256("tokenEnv", tokenEnv.content),
          declaration: tokenEnv.content,
          approvedAt: "2030-01-01T00:00:00.000Z",
        },
      ],
    });
    expect((await stat(join(home, APPROVALS_FILE))).mode & 0o777).toBe(0o600);
    expect(await isApproved(context(), tokenEnv)).toBe(true);
  });

  it("refuses a version-1 entry without an argv hash rather than guessing", async () => {
    await writeV1([{ project: "/work/app", argv: ARGV }]);
    await expect(readApprovals(context())).rejects.toMatchObject({ code: "LK_STORE_CORRUPT" });
  });

  it("binds the kind: approving content as one kind does not approve it as another", async () => {
    const content = { registry: "https://npm.example.com/", tokenEnv: "TEAM_TOKEN" };
    await recordApproval(context(), { ...provider, content });
    expect(await isApproved(context(), { ...provider, content })).toBe(true);
    expect(await isApproved(context(), { ...provider, kind: "tokenEnv", content })).toBe(false);
    expect(declarationSha256("provider", content)).not.toBe(declarationSha256("tokenEnv", content));
  });

  it("refuses a file with an unknown kind or no hash rather than guessing", async () => {
    for (const entry of [
      { project: "/work/app", kind: "bogus", sha256: "0".repeat(64) },
      { project: "/work/app", kind: "tokenEnv" },
    ]) {
      await writeFile(join(home, APPROVALS_FILE), JSON.stringify({ version: 2, approvals: [entry] }), {
        mode: 0o600,
      });
      await expect(readApprovals(context())).rejects.toMatchObject({ code: "LK_STORE_CORRUPT" });
    }
  });
});

describe("authorizeDeclaration under CI", () => {
  const request: ApprovalRequest = {
    ...provider,
    code: "LK_PROVIDER_NOT_APPROVED",
    subject: "the credential provider",
    prompt: "a provider",
    question: "Allow this command for this project?",
  };

  it("allows a project declaration only on the user's own say-so", async () => {
    await expect(authorizeDeclaration(context({ CI: "true" }), request)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
      message: expect.stringContaining("/work/app/latchkey.json:5"),
      details: { path: "/work/app/latchkey.json", line: 5, kind: "provider" },
    });
    await authorizeDeclaration(context({ CI: "true", LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1" }), request);
    // The older, provider-only switch still works for providers.
    await authorizeDeclaration(context({ CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" }), request);
    await expect(
      authorizeDeclaration(context({ CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" }), {
        ...request,
        kind: "tokenEnv",
        code: "LK_TOKEN_ENV_NOT_APPROVED",
      }),
    ).rejects.toMatchObject({ code: "LK_TOKEN_ENV_NOT_APPROVED" });
    await writeFile(join(home, "config.toml"), "[ci]\nallow_project_credentials = true\n");
    await authorizeDeclaration(context({ CI: "true" }), request);
    await writeFile(join(home, "config.toml"), "[ci]\nallow_project_credentials = false\n");
    await expect(authorizeDeclaration(context({ CI: "true" }), request)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
    });
  });

  it("refuses a `ci` that is not a table rather than reading it as no opt-in", async () => {
    // `ci = true` reads like an opt-in: saying nothing would leave the user wondering why CI still refuses.
    await writeFile(join(home, "config.toml"), "ci = true\n");
    await expect(authorizeDeclaration(context({ CI: "true" }), request)).rejects.toMatchObject({
      code: "LK_CONFIG_INVALID",
      message: `Invalid configuration in ${join(home, "config.toml")} at ci: expected a table.`,
      details: { path: join(home, "config.toml"), key: "ci" },
    });
  });
});

it("shows control and invisible characters instead of letting them act", () => {
  expect(displayQuoted("https://evil.example/\u202etxt.exe\u001b[2K")).toBe(
    '"https://evil.example/\\u{202e}txt.exe\\u001b[2K"',
  );
});

describe("authorizeVaultUse", () => {
  const VAULT = "0b9f2c1e-8a47-4d5b-9c3e-2f6a7b8c9d0e";
  const RAW = `{\n  "name": "app",\n  "vault": "${VAULT}"\n}\n`;
  const at = (root: string) => ({ file: join(root, "latchkey.json"), raw: RAW });
  const use = (root: string, creates = false) => ({ vaultId: VAULT, project: at(root), creates });
  const bindings = async () =>
    (await readApprovals(context())).filter((a) => a.kind === "vault").map((a) => a.project);
  /** A local vault of this id, as `env set` leaves it (its content does not matter here). */
  const vaultHere = async () => {
    await mkdir(join(home, "vaults"), { recursive: true });
    await writeFile(join(home, "vaults", `${VAULT}.enc`), "x", { mode: 0o600 });
  };

  it("binds the vault to the project that creates it, and lets that project in from then on", async () => {
    await authorizeVaultUse(context(), use("/work/a", true));
    expect(await bindings()).toEqual(["/work/a"]);
    const doc = JSON.parse(await readFile(join(home, APPROVALS_FILE), "utf8"));
    expect(doc.approvals).toEqual([
      {
        project: "/work/a",
        kind: "vault",
        sha256: declarationSha256("vault", VAULT),
        declaration: VAULT,
        approvedAt: "2030-01-01T00:00:00.000Z",
      },
    ]);
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a"));
  });

  it("refuses another project naming a vault bound elsewhere, naming the file, the line and the roots", async () => {
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a", true));
    for (const creates of [false, true]) {
      await expect(authorizeVaultUse(context(), use("/work/b", creates))).rejects.toMatchObject({
        code: "LK_VAULT_NOT_APPROVED",
        message: expect.stringMatching(
          /^Vault 0b9f2c1e-\S+ \(this machine uses it for \/work\/a \(no longer there\)\) declared at \/work\/b\/latchkey\.json:3 has not been approved/,
        ),
        details: {
          path: "/work/b/latchkey.json",
          line: 3,
          kind: "vault",
          vaultId: VAULT,
          projects: ["/work/a"],
        },
      });
    }
    expect(await bindings()).toEqual(["/work/a"]);
  });

  it("asks on a terminal: yes binds this root too, no records nothing", async () => {
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a", true));
    const asked: string[] = [];
    const answering = (answer: boolean) =>
      context({}, { confirm: (message) => (asked.push(message), Promise.resolve(answer)) });
    await expect(authorizeVaultUse(answering(false), use("/work/b"))).rejects.toMatchObject({
      code: "LK_VAULT_NOT_APPROVED",
      message: expect.stringContaining("You declined vault"),
    });
    expect(await bindings()).toEqual(["/work/a"]);
    await authorizeVaultUse(answering(true), use("/work/b"));
    expect(await bindings()).toEqual(["/work/a", "/work/b"]);
    expect(asked).toHaveLength(2);
    expect(asked[0]).toContain(`The project at /work/b (latchkey.json, line 3) declares vault ${VAULT}`);
    expect(asked[0]).toContain("this machine uses for /work/a");
    expect(asked[0]).toContain("for this project?");
    // Approved once: no second question, here or at the first root.
    await authorizeVaultUse(context(), use("/work/b"));
    await authorizeVaultUse(context(), use("/work/a"));
  });

  it("binds a vault from before bindings to the first project that uses it, and a missing vault to nobody", async () => {
    await authorizeVaultUse(context(), use("/work/b"));
    expect(await readApprovals(context())).toEqual([]);
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a"));
    expect(await bindings()).toEqual(["/work/a"]);
    await expect(authorizeVaultUse(context(), use("/work/b"))).rejects.toMatchObject({
      code: "LK_VAULT_NOT_APPROVED",
    });
  });

  it("under CI lets a bound project in, and another only on the user's own say-so", async () => {
    await vaultHere();
    await authorizeVaultUse(context({ CI: "true" }), use("/work/a"));
    await expect(authorizeVaultUse(context({ CI: "true" }), use("/work/b"))).rejects.toMatchObject({
      code: "LK_VAULT_NOT_APPROVED",
      message: expect.stringContaining("CI is set"),
    });
    await authorizeVaultUse(context({ CI: "true", LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1" }), use("/work/b"));
    await expect(
      authorizeVaultUse(context({ CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" }), use("/work/b")),
    ).rejects.toMatchObject({ code: "LK_VAULT_NOT_APPROVED" });
    expect(await bindings()).toEqual(["/work/a"]);
  });

  it("needs no approval for a vault chosen by LATCHKEY_VAULT_ID, and records none", async () => {
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a"));
    await authorizeVaultUse(context({ LATCHKEY_VAULT_ID: VAULT }), use("/work/b"));
    expect(await bindings()).toEqual(["/work/a"]);
  });

  it("binds to the root, not to a spelling of it", async () => {
    await vaultHere();
    await authorizeVaultUse(context(), use("/work/a"));
    await authorizeVaultUse(context(), use("/work/x/../a"));
    expect(await bindings()).toEqual(["/work/a"]);
  });
});
