import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import type { Context } from "../context.js";
import { resolvePaths } from "../paths.js";
import {
  APPROVALS_FILE,
  authorizeDeclaration,
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

function context(env: Record<string, string> = {}): Context {
  const full = { LATCHKEY_HOME: home, ...env };
  return createTestContext({
    env: full,
    paths: resolvePaths(full),
    clock: { now: () => Date.parse("2030-01-01T00:00:00Z"), sleep: () => Promise.resolve() },
  });
}

const ARGV = ["node", "scripts/npm-token.js"];
const provider: ProjectDeclaration = {
  kind: "provider",
  file: "/work/app/latchkey.json",
  line: 5,
  content: ARGV,
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
  it("still honours a provider approval from a version-1 file, and migrates it when writing", async () => {
    await writeV1([v1Entry(ARGV)]);
    expect(await isApproved(context(), provider)).toBe(true);
    expect(await isApproved(context(), { ...provider, content: [...ARGV, "--more"] })).toBe(false);

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
          kind: "provider",
          sha256: declarationSha256("provider", ARGV),
          declaration: ARGV,
          approvedAt: "2029-06-01T00:00:00.000Z",
        },
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
    expect(await isApproved(context(), provider)).toBe(true);
    expect(await isApproved(context(), tokenEnv)).toBe(true);
  });

  it("drops a version-1 entry whose argv does not match its hash: that provider asks again", async () => {
    await writeV1([
      { ...v1Entry(ARGV), argv: ["node", "something-else.js"] },
      { ...v1Entry(ARGV), argv: undefined },
    ]);
    expect(await readApprovals(context())).toEqual([]);
    expect(await isApproved(context(), provider)).toBe(false);
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
      { project: "/work/app", kind: "vault", sha256: "0".repeat(64) },
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
});

it("shows control and invisible characters instead of letting them act", () => {
  expect(displayQuoted("https://evil.example/\u202etxt.exe\u001b[2K")).toBe(
    '"https://evil.example/\\u{202e}txt.exe\\u001b[2K"',
  );
});
