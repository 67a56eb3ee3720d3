// The browser and device logins reach the token cache through the context, as every other side effect does: what
// the context carries is what runs, and a context without them says the command cannot log in.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import type { Context } from "../context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { getAccessToken, tokenAccount, type InteractiveGrant } from "./tokens.js";

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "lk-oauth-tokens-"));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const NOW = Date.UTC(2030, 0, 1);

/** A context with one environment `svc` of `grant` (a bare token endpoint: nothing is discovered over the network). */
async function context(grant: string, interactiveGrants: Context["interactiveGrants"]) {
  await writeFile(
    join(home, "config.toml"),
    `[environments.svc]\ntoken_endpoint = "https://login.example.com/token"\nclient_id = "svc"\ngrant = "${grant}"\n`,
  );
  const env = { LATCHKEY_HOME: home };
  const keystore = createMemoryKeystore();
  const resolution = { keystore, backend: "memory" } as unknown as KeystoreResolution;
  const ctx = createTestContext({
    env,
    paths: resolvePaths(env),
    cwd: home,
    clock: { now: () => NOW, sleep: () => Promise.resolve() },
    keystore: () => Promise.resolve(resolution),
  });
  return { ctx: { ...ctx, interactiveGrants }, keystore };
}

describe("interactive grants come from the context", () => {
  it("runs the context's login for the environment's grant and caches what it returns", async () => {
    const calls: string[] = [];
    const login =
      (name: string): InteractiveGrant =>
      (_ctx, env) => {
        calls.push(`${name}:${env.name}`);
        return Promise.resolve({ access_token: `from-${name}`, token_type: "bearer", expires_in: 600 });
      };
    const grants = { authorization_code: login("code"), device_code: login("device") };
    for (const [grant, expected] of [
      ["authorization_code", "from-code"],
      ["device_code", "from-device"],
    ] as const) {
      const { ctx, keystore } = await context(grant, grants);
      const result = await getAccessToken(ctx, { profile: "default", env: "svc" });
      expect(result.source).toBe("acquired");
      expect(result.token.access_token).toBe(expected);
      expect(await keystore.get(tokenAccount({ profile: "default", env: "svc" }))).toContain(expected);
    }
    expect(calls).toEqual(["code:svc", "device:svc"]);
  });

  it("without them, says this command cannot run an interactive login", async () => {
    const { ctx } = await context("authorization_code", undefined);
    await expect(getAccessToken(ctx, { profile: "default", env: "svc" })).rejects.toMatchObject({
      code: "LK_OAUTH_FAILED",
      message: expect.stringContaining("needs an interactive login this command cannot run") as unknown,
    });
  });

  it("`auth token` uses the login of the context it runs with", async () => {
    const { ctx } = await context("device_code", {
      authorization_code: () => Promise.reject(new Error("not this one")),
      device_code: () =>
        Promise.resolve({ access_token: "device-token", token_type: "bearer", expires_in: 600 }),
    });
    expect(await runCli(["auth", "token", "--env", "svc"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe("device-token");
  });
});
