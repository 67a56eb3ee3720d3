import { LatchkeyError } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startGithubDouble, type GithubDouble } from "../../test/support/platforms/github-double.js";
import { platformContext, push } from "../../test/support/platforms/test-context.js";
import { planPush } from "./adapter.js";
import { githubActionsAdapter, sealForGithub } from "./github-actions.js";

const TOKEN = "github_pat_abc";
let double: GithubDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(options: { environment?: string; credential?: string } = {}) {
  double = await startGithubDouble({
    token: TOKEN,
    owner: "acme",
    repo: "app",
    environments: ["production"],
  });
  const ctx = platformContext();
  const adapter = githubActionsAdapter({
    ctx,
    config: {
      platform: "github-actions",
      owner: "acme",
      repo: "app",
      baseUrl: double.url,
      ...(options.environment === undefined ? {} : { environment: options.environment }),
    },
    credential: options.credential ?? TOKEN,
  });
  return { d: double, ctx, adapter };
}

describe("github-actions adapter", () => {
  it("seals each value to the repository's key; the double opens every box to the same value", async () => {
    const { d, adapter } = await setup();
    const values = { API_KEY: "s3cret ✓", DB_URL: "postgres://u:p@h/db" };
    const { result } = await push(adapter, values);
    expect(result).toEqual({ written: ["API_KEY", "DB_URL"], removed: [], failed: [] });
    expect(Object.fromEntries(d.repositorySecrets)).toEqual(values);
    expect(d.refusals).toEqual([]);
    // No plaintext value in any request the platform received.
    for (const r of d.requests) for (const v of Object.values(values)) expect(r.body).not.toContain(v);
  });

  it("writes an environment's secrets under its own key, not the repository's", async () => {
    const { d, adapter } = await setup({ environment: "production" });
    await push(adapter, { A: "1" });
    expect(Object.fromEntries(d.environmentSecrets("production"))).toEqual({ A: "1" });
    expect(d.repositorySecrets.size).toBe(0);
    expect(d.refusals).toEqual([]);
  });

  it("a box sealed to another key is refused by the double", async () => {
    const { d } = await setup();
    const other = await startGithubDouble({ token: TOKEN, owner: "acme", repo: "app" });
    const key = (await await fetch(`${other.url}/repos/acme/app/actions/secrets/public-key`, {
      headers: {
        authorization: `Bearer ${TOKEN}`,
        accept: "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
      },
    }).then((r) => r.json())) as { key: string };
    await other.close();
    const response = await fetch(`${d.url}/repos/acme/app/actions/secrets/A`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        accept: "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
        "content-type": "application/json",
      },
      body: JSON.stringify({ encrypted_value: await sealForGithub("v", key.key), key_id: "key-1" }),
    });
    expect(response.status).toBe(400);
    expect(d.refusals[0]).toMatch(/not a sealed box/);
    expect(d.repositorySecrets.size).toBe(0);
  });

  it("overwrites a changed secret and lists names across pages", async () => {
    const { d, adapter } = await setup();
    for (let i = 0; i < 130; i++) d.repositorySecrets.set(`OLD_${String(i).padStart(3, "0")}`, "x");
    d.repositorySecrets.set("A", "old");
    const names = await adapter.listNames();
    expect(names).toHaveLength(131);
    const { plan } = await push(adapter, { A: "new" });
    expect(plan.changed).toEqual(["A"]);
    expect(d.repositorySecrets.get("A")).toBe("new");
  });

  it("plans a dry run without writing", async () => {
    const { d, adapter } = await setup();
    d.repositorySecrets.set("OLD", "x");
    expect(planPush(await adapter.listNames(), { NEW: "n" }, true)).toMatchObject({
      added: ["NEW"],
      removed: ["OLD"],
    });
    expect(d.requests.every((r) => r.method === "GET")).toBe(true);
  });

  it("deletes only absent names with prune, nothing without", async () => {
    const { d, adapter } = await setup();
    d.repositorySecrets.set("KEEP", "k");
    d.repositorySecrets.set("GONE", "g");
    await push(adapter, { KEEP: "k2" });
    expect([...d.repositorySecrets.keys()].sort()).toEqual(["GONE", "KEEP"]);
    const { result } = await push(adapter, { KEEP: "k3" }, true);
    expect(result).toEqual({ written: ["KEEP"], removed: ["GONE"], failed: [] });
    expect(Object.fromEntries(d.repositorySecrets)).toEqual({ KEEP: "k3" });
  });

  it("counts a secret already gone (DELETE answered 404) as removed", async () => {
    const { d, adapter } = await setup();
    const result = await adapter.apply({ upsert: {}, remove: ["NEVER_THERE"] });
    expect(result).toEqual({ written: [], removed: ["NEVER_THERE"], failed: [] });
    expect(d.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
    expect(d.refusals).toEqual([]);
  });

  it("retries a 429 as Retry-After asks", async () => {
    const { d, ctx, adapter } = await setup();
    d.fault({ status: 429, retryAfter: "3", match: "PUT" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([3000]);
  });

  it("turns a 401 into LK_PLATFORM_UNAUTHORIZED", async () => {
    const { adapter } = await setup({ credential: "github_pat_wrong" });
    const error: unknown = await adapter.listNames().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect(JSON.stringify(error)).not.toContain("github_pat_wrong");
  });

  it("has no pull: GitHub keeps values write-only", async () => {
    const { adapter } = await setup();
    expect(adapter.pull).toBeNull();
  });

  it("reports exactly the names written when some are refused or invalid", async () => {
    const { d, adapter } = await setup();
    d.refuseNames.add("B");
    const { result } = await push(adapter, { A: "1", B: "2", C: "3", GITHUB_TOKEN: "4" });
    expect(result.written).toEqual(["A", "C"]);
    expect(result.failed).toEqual([
      { name: "GITHUB_TOKEN", reason: "not a valid GitHub secret name" },
      { name: "B", reason: "HTTP 422" },
    ]);
    expect(Object.fromEntries(d.repositorySecrets)).toEqual({ A: "1", C: "3" });
  });
});
