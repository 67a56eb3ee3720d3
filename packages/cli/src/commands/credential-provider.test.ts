import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import { resolvePaths } from "../paths.js";
import { parseProviderAnswer } from "../registry/provider-client.js";
import { formatProviderAnswer } from "./credential-provider.js";

const REGISTRY = "https://npm.example.com/";
const T0 = Date.parse("2030-01-01T00:00:00Z");

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-credential-provider-"));
  await mkdir(home, { recursive: true });
  // The token comes from a provider of Latchkey's own, the one source that says when it expires.
  await writeFile(join(home, "config.toml"), `[registries."${REGISTRY}"]\nprovider = ["issue-token"]\n`);
});
afterEach(() => rm(home, { recursive: true, force: true }));

function context(expiresAt: string | null) {
  const env = { LATCHKEY_HOME: home };
  return createTestContext({
    env,
    paths: resolvePaths(env),
    cwd: home,
    clock: { now: () => T0, sleep: () => Promise.reject(new Error("Unexpected sleep")) },
    spawn: () =>
      Promise.resolve({
        code: 0,
        signal: null,
        stdout: `${JSON.stringify({ token: "issued-token", expiresAt })}\n`,
        stderr: "",
        timedOut: false,
      }),
  });
}

describe("credential-provider --format", () => {
  it("answers in Latchkey's shape by default", async () => {
    const ctx = context("2030-01-01T01:00:00.750Z");
    expect(await runCli(["credential-provider", "--registry-uri", REGISTRY], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe('{"token":"issued-token","expiresAt":"2030-01-01T01:00:00.750Z"}\n');
  });

  it("answers in the npm RFC draft's shape with --format npm-rfc: unix seconds, rounded down", async () => {
    const ctx = context("2030-01-01T01:00:00.750Z");
    expect(
      await runCli(["credential-provider", "--format", "npm-rfc", "--registry-uri", REGISTRY], ctx),
    ).toBe(0);
    expect(ctx.stdout.text()).toBe(`{"_authToken":"issued-token","expiresAt":${T0 / 1000 + 3600}}\n`);
  });

  it("leaves expiresAt out of a draft answer when the expiry is unknown (the draft has no null)", async () => {
    const ctx = context(null);
    expect(await runCli(["credential-provider", "--registry-uri", REGISTRY, "--format=npm-rfc"], ctx)).toBe(
      0,
    );
    expect(ctx.stdout.text()).toBe('{"_authToken":"issued-token"}\n');
  });

  it("refuses an unknown shape as a usage error, printing nothing on stdout", async () => {
    const ctx = context(null);
    expect(await runCli(["credential-provider", "--registry-uri", REGISTRY, "--format", "yaml"], ctx)).toBe(
      2,
    );
    expect(ctx.stdout.text()).toBe("");
    expect(ctx.stderr.text()).toContain("latchkey, npm-rfc");
  });

  it("is read back by the consumer side in either shape", () => {
    for (const answer of [
      { token: "t", expiresAt: "2030-01-01T01:00:00.000Z" },
      { token: "t", expiresAt: null },
    ]) {
      expect(parseProviderAnswer(formatProviderAnswer(answer, "latchkey"))).toEqual(answer);
      expect(parseProviderAnswer(formatProviderAnswer(answer, "npm-rfc"))).toEqual(answer);
    }
  });
});
