import { mkdtemp, readFile, rm, stat, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseIsoDateTime } from "@latchkey/core";
import type { Context, SpawnResult } from "../context.js";
import { resolvePaths } from "../paths.js";
import { createTestContext } from "../../test/support/context.js";
import { APPROVALS_FILE, declarationSha256 } from "../project/approvals.js";
import {
  EXPIRY_MARGIN_MS,
  createProviderClient,
  displayArgv,
  parseProviderAnswer,
} from "./provider-client.js";
import type { ProviderDeclaration } from "./types.js";

const TOKEN = "provider-canary-token-51d0";
const REGISTRY = "https://npm.example.com/";
const T0 = Date.parse("2030-01-01T00:00:00Z");

interface SpawnCall {
  command: string;
  args: readonly string[];
  options: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } | undefined;
}

function answer(expiresAt: string | null, token = TOKEN): Partial<SpawnResult> {
  return { stdout: `${JSON.stringify({ token, expiresAt })}\n` };
}

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-provider-"));
});
afterEach(() => rm(home, { recursive: true, force: true }));

/** A context whose spawn answers from `results` in turn (the last one repeats) and records every call. */
function providerContext(
  options: {
    results?: Partial<SpawnResult>[];
    env?: Record<string, string | undefined>;
    tty?: boolean;
    confirm?: (message: string) => Promise<boolean>;
  } = {},
) {
  const calls: SpawnCall[] = [];
  const prompts: string[] = [];
  const clock = { now: T0 };
  const results = options.results ?? [answer(null)];
  const env = { LATCHKEY_HOME: home, ...options.env };
  const ctx: Context = createTestContext({
    env,
    paths: resolvePaths(env),
    stdin: { isTTY: options.tty ?? false, readAll: () => Promise.reject(new Error("Unexpected stdin")) },
    stderrTTY: options.tty ?? false,
    clock: { now: () => clock.now, sleep: () => Promise.reject(new Error("Unexpected sleep")) },
    spawn: (command, args, spawnOptions) => {
      calls.push({ command, args, options: spawnOptions });
      const result = results[Math.min(calls.length - 1, results.length - 1)]!;
      return Promise.resolve({ code: 0, signal: null, stdout: "", stderr: "", timedOut: false, ...result });
    },
    prompts: {
      secret: () => Promise.reject(new Error("Unexpected secret prompt")),
      confirm: (message) => {
        prompts.push(message);
        return options.confirm ? options.confirm(message) : Promise.reject(new Error("Unexpected confirm"));
      },
    },
  });
  return { ctx, calls, prompts, clock };
}

const userDecl: ProviderDeclaration = {
  argv: ["/opt/issuer/bin/npm-token", "--audience", "npm"],
  declaredIn: "user",
  file: "/home/u/.latchkey/config.toml",
};
const projectDecl = (root = "/work/app", argv = ["node", "scripts/npm-token.js"]): ProviderDeclaration => ({
  argv,
  declaredIn: "project",
  file: join(root, "latchkey.json"),
});

describe("running a provider", () => {
  it("runs the argv without a shell, --registry-uri appended, from the declaring file's directory", async () => {
    const { ctx, calls } = providerContext();
    expect(await createProviderClient(ctx).token(userDecl, REGISTRY)).toEqual({
      token: TOKEN,
      expiresAt: null,
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.command).toBe("/opt/issuer/bin/npm-token");
    expect(calls[0]!.args).toEqual(["--audience", "npm", "--registry-uri", REGISTRY]);
    expect(calls[0]!.options).toMatchObject({ timeoutMs: 10_000, cwd: "/home/u/.latchkey" });
    expect(calls[0]!.options?.env).toMatchObject({ LATCHKEY_HOME: home, LATCHKEY_PROVIDER_DEPTH: "1" });
  });

  it("takes its time limit from LATCHKEY_PROVIDER_TIMEOUT_MS or the option, and refuses a bad one", async () => {
    const fromEnv = providerContext({ env: { LATCHKEY_PROVIDER_TIMEOUT_MS: "2500" } });
    await createProviderClient(fromEnv.ctx).token(userDecl, REGISTRY);
    expect(fromEnv.calls[0]!.options?.timeoutMs).toBe(2500);
    const fromOption = providerContext({ env: { LATCHKEY_PROVIDER_TIMEOUT_MS: "2500" } });
    await createProviderClient(fromOption.ctx, { timeoutMs: 700 }).token(userDecl, REGISTRY);
    expect(fromOption.calls[0]!.options?.timeoutMs).toBe(700);
    const bad = providerContext({ env: { LATCHKEY_PROVIDER_TIMEOUT_MS: "10s" } });
    await expect(createProviderClient(bad.ctx).token(userDecl, REGISTRY)).rejects.toMatchObject({
      code: "LK_CONFIG_INVALID",
    });
    expect(bad.calls).toHaveLength(0);
  });

  it("treats exit 1 with an empty stdout as no credential, and remembers that too", async () => {
    const { ctx, calls } = providerContext({
      results: [{ code: 1, stderr: "no session for npm.example.com" }],
    });
    const client = createProviderClient(ctx);
    expect(await client.token(userDecl, REGISTRY)).toBeNull();
    expect(await client.token(userDecl, REGISTRY)).toBeNull();
    expect(calls).toHaveLength(1);
  });

  it.each([
    ["a timeout", { timedOut: true, code: null, signal: "SIGKILL" }, /did not answer within 10000 ms/],
    ["exit 3", { code: 3, stdout: "" }, /exited with code 3/],
    ["a signal", { code: null, signal: "SIGSEGV" }, /killed by SIGSEGV/],
    [
      "exit 1 with output",
      { code: 1, stdout: JSON.stringify({ token: TOKEN, expiresAt: null }) },
      /exited with code 1/,
    ],
    ["plain text", { stdout: `${TOKEN}\n` }, /not one strict JSON document/],
    [
      "a mix of both shapes",
      { stdout: JSON.stringify({ token: TOKEN, _authToken: TOKEN, expiresAt: null }) },
      /besides token/,
    ],
    [
      "the draft's basic-auth form",
      { stdout: JSON.stringify({ username: "u", _password: TOKEN, expiresAt: 1893456000 }) },
      /basic-auth credentials .* bearer tokens only/,
    ],
    [
      "a draft answer already expired",
      { stdout: JSON.stringify({ _authToken: TOKEN, expiresAt: 0 }) },
      /expired at 1970/,
    ],
    ["an empty token", { stdout: JSON.stringify({ token: "", expiresAt: null }) }, /no token/],
    [
      "a token with a newline",
      { stdout: JSON.stringify({ token: `${TOKEN}\r\nX-Evil: 1`, expiresAt: null }) },
      /control characters/,
    ],
    ["unix-time expiresAt", { stdout: JSON.stringify({ token: TOKEN, expiresAt: 1893456000 }) }, /expiresAt/],
    ["no expiresAt", { stdout: JSON.stringify({ token: TOKEN }) }, /no expiresAt/],
    [
      "an expiresAt without a zone",
      { stdout: JSON.stringify({ token: TOKEN, expiresAt: "2030-01-01T01:00:00" }) },
      /expiresAt/,
    ],
    ["a duplicated member", { stdout: `{"token":"x","token":"${TOKEN}","expiresAt":null}` }, /strict JSON/],
    ["two documents", { stdout: `${JSON.stringify({ token: TOKEN, expiresAt: null })}\n{}` }, /strict JSON/],
    ["an expired token", answer("2029-12-31T23:59:59Z"), /expired at 2029-12-31T23:59:59Z/],
  ])("fails with LK_PROVIDER_FAILED on %s, never echoing the output", async (_name, result, why) => {
    const { ctx } = providerContext({ results: [result] });
    const error = await createProviderClient(ctx)
      .token(userDecl, REGISTRY)
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ code: "LK_PROVIDER_FAILED" });
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).not.toContain(TOKEN);
    expect((error as Error).message).toContain('"/opt/issuer/bin/npm-token"');
  });

  it("reports a program that cannot be started", async () => {
    const { ctx } = providerContext();
    const failing = {
      ...ctx,
      spawn: () => Promise.reject(Object.assign(new Error("spawn x ENOENT"), { code: "ENOENT" })),
    };
    await expect(createProviderClient(failing).token(userDecl, REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_FAILED",
      message: expect.stringContaining("could not be started"),
    });
  });

  it("refuses a malformed declaration before running anything", async () => {
    const { ctx, calls } = providerContext();
    const bad = { ...userDecl, argv: ["node", ""] };
    await expect(createProviderClient(ctx).token(bad, REGISTRY)).rejects.toMatchObject({
      code: "LK_CONFIG_INVALID",
    });
    expect(calls).toHaveLength(0);
  });

  it("stops a provider loop at depth 3", async () => {
    const { ctx, calls } = providerContext({ env: { LATCHKEY_PROVIDER_DEPTH: "3" } });
    await expect(createProviderClient(ctx).token(userDecl, REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_FAILED",
      message: expect.stringContaining("nested 3 deep"),
    });
    expect(calls).toHaveLength(0);
    const nested = providerContext({ env: { LATCHKEY_PROVIDER_DEPTH: "2" } });
    await createProviderClient(nested.ctx).token(userDecl, REGISTRY);
    expect(nested.calls[0]!.options?.env?.LATCHKEY_PROVIDER_DEPTH).toBe("3");
  });
});

describe("the in-memory cache", () => {
  it("serves one answer to many requests until 60 s before expiresAt, then asks again", async () => {
    const expiresAt = new Date(T0 + 10 * 60_000).toISOString();
    const { ctx, calls, clock } = providerContext({
      results: [answer(expiresAt), answer(expiresAt, `${TOKEN}-2`)],
    });
    const client = createProviderClient(ctx);
    for (let i = 0; i < 5; i++) expect((await client.token(userDecl, REGISTRY))?.token).toBe(TOKEN);
    clock.now = T0 + 10 * 60_000 - EXPIRY_MARGIN_MS - 1;
    expect((await client.token(userDecl, REGISTRY))?.token).toBe(TOKEN);
    expect(calls).toHaveLength(1);
    clock.now = T0 + 10 * 60_000 - EXPIRY_MARGIN_MS;
    expect((await client.token(userDecl, REGISTRY))?.token).toBe(`${TOKEN}-2`);
    expect(calls).toHaveLength(2);
  });

  it("keeps an answer without expiresAt for the life of the client", async () => {
    const { ctx, calls, clock } = providerContext({ results: [answer(null)] });
    const client = createProviderClient(ctx);
    await client.token(userDecl, REGISTRY);
    clock.now = T0 + 365 * 24 * 3600_000;
    await client.token(userDecl, REGISTRY);
    expect(calls).toHaveLength(1);
  });

  it("uses, but does not keep, a token that lapses within the margin", async () => {
    const soon = new Date(T0 + 30_000).toISOString();
    const { ctx, calls } = providerContext({ results: [answer(soon)] });
    const client = createProviderClient(ctx);
    expect((await client.token(userDecl, REGISTRY))?.expiresAt).toBe(soon);
    await client.token(userDecl, REGISTRY);
    expect(calls).toHaveLength(2);
  });

  it("shares one run between concurrent requests and keys by registry and declaration", async () => {
    const { ctx, calls } = providerContext();
    const client = createProviderClient(ctx);
    await Promise.all([1, 2, 3, 4].map(() => client.token(userDecl, REGISTRY)));
    expect(calls).toHaveLength(1);
    await client.token(userDecl, "https://other.example.com/");
    await client.token({ ...userDecl, argv: [...userDecl.argv, "--verbose"] }, REGISTRY);
    expect(calls).toHaveLength(3);
  });

  it("does not remember a failure", async () => {
    const { ctx, calls } = providerContext({ results: [{ code: 2 }, answer(null)] });
    const client = createProviderClient(ctx);
    await expect(client.token(userDecl, REGISTRY)).rejects.toMatchObject({ code: "LK_PROVIDER_FAILED" });
    expect((await client.token(userDecl, REGISTRY))?.token).toBe(TOKEN);
    expect(calls).toHaveLength(2);
  });
});

describe("approval of project providers", () => {
  const APPROVED = { registry: REGISTRY, argv: ["node", "scripts/npm-token.js"] };

  it("refuses an unapproved project provider without a terminal, running nothing", async () => {
    const { ctx, calls } = providerContext({ tty: false });
    await expect(createProviderClient(ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
    });
    expect(calls).toHaveLength(0);
  });

  it("asks once on a terminal, stores the approval 0600, and a later process runs without asking", async () => {
    const first = providerContext({ tty: true, confirm: () => Promise.resolve(true) });
    expect((await createProviderClient(first.ctx).token(projectDecl(), REGISTRY))?.token).toBe(TOKEN);
    expect(first.prompts).toHaveLength(1);
    expect(first.prompts[0]).toContain("/work/app");
    expect(first.prompts[0]).toContain('"node" "scripts/npm-token.js"');
    expect(first.calls[0]!.options?.cwd).toBe("/work/app");

    const file = join(home, APPROVALS_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(file, "utf8"));
    expect(doc).toEqual({
      version: 2,
      approvals: [
        {
          project: "/work/app",
          kind: "provider",
          sha256: declarationSha256("provider", APPROVED),
          declaration: APPROVED,
          approvedAt: "2030-01-01T00:00:00.000Z",
        },
      ],
    });

    const later = providerContext({ tty: false });
    expect((await createProviderClient(later.ctx).token(projectDecl(), REGISTRY))?.token).toBe(TOKEN);
    expect(later.calls).toHaveLength(1);
    expect(later.prompts).toHaveLength(0);
  });

  it("binds the approval to the argv hash and the project path", async () => {
    const first = providerContext({ tty: true, confirm: () => Promise.resolve(true) });
    await createProviderClient(first.ctx).token(projectDecl(), REGISTRY);

    const later = providerContext({ tty: false });
    const client = createProviderClient(later.ctx);
    const changed = projectDecl("/work/app", ["node", "scripts/npm-token.js", "--leak"]);
    await expect(client.token(changed, REGISTRY)).rejects.toMatchObject({ code: "LK_PROVIDER_NOT_APPROVED" });
    await expect(client.token(projectDecl("/work/moved-app"), REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
    });
    expect(later.calls).toHaveLength(0);
    // The same argv, approved, for the same project still runs.
    expect((await client.token(projectDecl(), REGISTRY))?.token).toBe(TOKEN);
  });

  it("binds the approval to the registry the answer goes to", async () => {
    const first = providerContext({ tty: true, confirm: () => Promise.resolve(true) });
    await createProviderClient(first.ctx).token(projectDecl(), REGISTRY);

    const later = providerContext({ tty: false });
    const client = createProviderClient(later.ctx);
    for (const other of [
      "https://evil.example/",
      "https://npm.example.com/other/",
      "http://npm.example.com/",
    ]) {
      await expect(client.token(projectDecl(), other), other).rejects.toMatchObject({
        code: "LK_PROVIDER_NOT_APPROVED",
      });
    }
    expect(later.calls).toHaveLength(0);
    // Another spelling of the approved registry is the same registry.
    expect((await client.token(projectDecl(), "https://NPM.example.com:443/"))?.token).toBe(TOKEN);
  });

  it("asks again for an approval of the argv alone, as older versions recorded it", async () => {
    const argv = ["node", "scripts/npm-token.js"];
    await writeFile(
      join(home, APPROVALS_FILE),
      JSON.stringify({
        version: 2,
        approvals: [
          {
            project: "/work/app",
            kind: "provider",
            sha256: declarationSha256("provider", argv),
            declaration: argv,
            approvedAt: "2029-01-01T00:00:00.000Z",
          },
        ],
      }),
      { mode: 0o600 },
    );
    const { ctx, calls } = providerContext({ tty: false });
    await expect(createProviderClient(ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
    });
    expect(calls).toHaveLength(0);
  });

  it("a declined prompt runs nothing and records nothing", async () => {
    const { ctx, calls, prompts } = providerContext({ tty: true, confirm: () => Promise.resolve(false) });
    await expect(createProviderClient(ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
      message: expect.stringContaining("declined"),
    });
    expect(prompts).toHaveLength(1);
    expect(calls).toHaveLength(0);
    await expect(stat(join(home, APPROVALS_FILE))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("runs user providers without approval, even under CI", async () => {
    const { ctx, calls } = providerContext({ env: { CI: "true" } });
    await createProviderClient(ctx).token(userDecl, REGISTRY);
    expect(calls).toHaveLength(1);
  });

  it("refuses project providers under CI=true even when approved, unless LATCHKEY_ALLOW_PROJECT_PROVIDERS=1", async () => {
    const first = providerContext({ tty: true, confirm: () => Promise.resolve(true) });
    await createProviderClient(first.ctx).token(projectDecl(), REGISTRY);

    const ci = providerContext({ env: { CI: "true" }, tty: true, confirm: () => Promise.resolve(true) });
    await expect(createProviderClient(ci.ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_PROVIDER_NOT_APPROVED",
      message: expect.stringContaining("CI is set"),
    });
    expect(ci.calls).toHaveLength(0);
    expect(ci.prompts).toHaveLength(0);

    const allowed = providerContext({ env: { CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" } });
    // Allowed in CI for a project that was never approved on this machine either.
    expect(
      (await createProviderClient(allowed.ctx).token(projectDecl("/ci/checkout"), REGISTRY))?.token,
    ).toBe(TOKEN);

    for (const value of ["yes", "true", "0"]) {
      const other = providerContext({ env: { CI: "1", LATCHKEY_ALLOW_PROJECT_PROVIDERS: value } });
      await expect(createProviderClient(other.ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
        code: "LK_PROVIDER_NOT_APPROVED",
      });
    }
    // CI=false is not CI: the approval recorded above applies.
    const notCi = providerContext({ env: { CI: "false" } });
    expect((await createProviderClient(notCi.ctx).token(projectDecl(), REGISTRY))?.token).toBe(TOKEN);
  });

  it("does not trust an approvals file that other users can write", async () => {
    const first = providerContext({ tty: true, confirm: () => Promise.resolve(true) });
    await createProviderClient(first.ctx).token(projectDecl(), REGISTRY);
    await chmod(join(home, APPROVALS_FILE), 0o666);
    const later = providerContext({ tty: false });
    await expect(createProviderClient(later.ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_FILE_PERMISSIONS",
    });
    expect(later.calls).toHaveLength(0);
  });

  it("refuses a damaged approvals file rather than guessing", async () => {
    await writeFile(join(home, APPROVALS_FILE), '{"version":1,"approvals":[{"project":"/work/app"}]}', {
      mode: 0o600,
    });
    const { ctx } = providerContext({ tty: false });
    await expect(createProviderClient(ctx).token(projectDecl(), REGISTRY)).rejects.toMatchObject({
      code: "LK_STORE_CORRUPT",
    });
  });

  it("shows control and invisible characters in the prompt instead of letting them act", () => {
    expect(displayArgv(["node", "a\u001b[2Kb", "c\u202ed", "e\nf"])).toBe(
      '"node" "a\\u001b[2Kb" "c\\u{202e}d" "e\\nf"',
    );
  });
});

describe("answer parsing", () => {
  it("accepts the protocol's two shapes", () => {
    expect(parseProviderAnswer('{"token":"t","expiresAt":null}')).toEqual({ token: "t", expiresAt: null });
    expect(parseProviderAnswer('  {"expiresAt":"2030-01-01T00:00:00.5+02:00","token":"t"}\n')).toEqual({
      token: "t",
      expiresAt: "2030-01-01T00:00:00.5+02:00",
    });
  });

  it("reads ISO-8601 date-times with a zone and nothing else", () => {
    expect(parseIsoDateTime("2030-01-01T00:00:00Z")).toBe(T0);
    expect(parseIsoDateTime("2030-01-01T02:00:00+02:00")).toBe(T0);
    for (const bad of [
      "2030-02-30T00:00:00Z",
      "2030-01-01 00:00:00Z",
      "2030-01-01",
      "2030-01-01T24:00:00Z",
      "tomorrow",
    ]) {
      expect(parseIsoDateTime(bad), bad).toBeNull();
    }
  });
});

describe("the npm RFC draft's answer shape", () => {
  it("reads _authToken with a unix-seconds expiresAt, or none, as a Latchkey answer", () => {
    expect(parseProviderAnswer(JSON.stringify({ _authToken: "t", expiresAt: 1893456000 }))).toEqual({
      token: "t",
      expiresAt: "2030-01-01T00:00:00.000Z",
    });
    expect(parseProviderAnswer('{"_authToken":"t"}')).toEqual({ token: "t", expiresAt: null });
    expect(parseProviderAnswer('{"_authToken":"t","expiresAt":null}')).toEqual({
      token: "t",
      expiresAt: null,
    });
  });

  it("refuses what it cannot use, naming the member but never the value", () => {
    for (const [answer, why] of [
      [{ _auth: "dTpw", expiresAt: 1893456000 }, /basic-auth/],
      [{ _authToken: "", expiresAt: 1893456000 }, /no _authToken/],
      [{ _authToken: "t\nX", expiresAt: 1893456000 }, /control characters/],
      [{ _authToken: "t", expiresAt: "2030-01-01T00:00:00Z" }, /not a unix time in seconds/],
      [{ _authToken: "t", expiresAt: 1893456000000 }, /milliseconds by mistake/],
      [{ _authToken: "t", expiresAt: 1893456000, scope: "read" }, /1 member\(s\) besides _authToken/],
    ] as const) {
      expect(() => parseProviderAnswer(JSON.stringify(answer)), JSON.stringify(answer)).toThrow(why);
    }
  });

  it("uses a draft answer until shortly before its expiresAt, like a Latchkey one", async () => {
    const { ctx, calls, clock } = providerContext({
      results: [
        { stdout: JSON.stringify({ _authToken: "first", expiresAt: T0 / 1000 + 3600 }) },
        { stdout: JSON.stringify({ _authToken: "second", expiresAt: T0 / 1000 + 7200 }) },
      ],
    });
    const client = createProviderClient(ctx);
    expect(await client.token(userDecl, REGISTRY)).toEqual({
      token: "first",
      expiresAt: "2030-01-01T01:00:00.000Z",
    });
    clock.now += 3600_000 - EXPIRY_MARGIN_MS + 1;
    expect((await client.token(userDecl, REGISTRY))?.token).toBe("second");
    expect(calls).toHaveLength(2);
  });
});
