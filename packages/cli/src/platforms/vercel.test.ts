import { LatchkeyError, type VercelConfig } from "@latchkey/core";
import { afterEach, describe, expect, it } from "vitest";
import { startVercelDouble, type VercelDouble } from "../../test/support/platforms/vercel-double.js";
import { platformContext } from "../../test/support/platforms/test-context.js";
import { applyPlanFor, planPush } from "./adapter.js";
import { vercelAdapter } from "./vercel.js";

const TOKEN = "vercel-token-abc123";
let double: VercelDouble | undefined;

afterEach(async () => {
  await double?.close();
  double = undefined;
});

async function setup(overrides: Partial<VercelConfig> = {}, credential = TOKEN) {
  double = await startVercelDouble({ token: TOKEN, project: "prj_1", teamId: "team_1" });
  const ctx = platformContext();
  const config: VercelConfig = {
    platform: "vercel",
    projectId: "prj_1",
    teamId: "team_1",
    target: ["production"],
    type: "encrypted",
    baseUrl: double.url,
    ...overrides,
  };
  return { d: double, ctx, adapter: vercelAdapter({ ctx, config, credential }) };
}

async function push(
  adapter: ReturnType<typeof vercelAdapter>,
  values: Record<string, string>,
  prune = false,
) {
  const plan = planPush(await adapter.listNames(), values, prune);
  return { plan, result: await adapter.apply(applyPlanFor(plan, values)) };
}

function writes(d: VercelDouble) {
  return d.requests.filter((r) => r.method !== "GET");
}

describe("vercel adapter", () => {
  it("pushes to an empty project with the documented body, the team id and upsert=true", async () => {
    const { d, adapter } = await setup();
    const { plan, result } = await push(adapter, { API_KEY: "s3cret-1", DB_URL: "postgres://x" });
    expect(plan).toMatchObject({ added: ["API_KEY", "DB_URL"], changed: [], removed: [] });
    expect(result).toEqual({ written: ["API_KEY", "DB_URL"], removed: [], failed: [] });
    expect(d.entries.map((e) => [e.key, e.value, e.type, e.target])).toEqual([
      ["API_KEY", "s3cret-1", "encrypted", ["production"]],
      ["DB_URL", "postgres://x", "encrypted", ["production"]],
    ]);
    expect(d.refusals).toEqual([]);
    expect(d.requests.every((r) => !r.url.includes(TOKEN))).toBe(true);
  });

  it("overwrites a changed value in place", async () => {
    const { d, adapter } = await setup();
    d.entries.push({ id: "env_a", key: "API_KEY", value: "old", type: "encrypted", target: ["production"] });
    const { plan, result } = await push(adapter, { API_KEY: "new", OTHER: "o" });
    expect(plan).toMatchObject({ added: ["OTHER"], changed: ["API_KEY"] });
    expect(result.written).toEqual(["API_KEY", "OTHER"]);
    expect(d.entries.filter((e) => e.key === "API_KEY")).toEqual([
      { id: "env_a", key: "API_KEY", value: "new", type: "encrypted", target: ["production"] },
    ]);
    expect(d.refusals).toEqual([]);
  });

  it("plans a dry run from the names alone and writes nothing", async () => {
    const { d, adapter } = await setup();
    d.entries.push({ id: "env_a", key: "GONE", value: "x", type: "encrypted", target: ["production"] });
    const plan = planPush(await adapter.listNames(), { NEW: "n" }, true);
    expect(plan).toMatchObject({ added: ["NEW"], changed: [], removed: ["GONE"] });
    expect(writes(d)).toEqual([]);
    expect(d.entries.map((e) => e.key)).toEqual(["GONE"]);
  });

  it("removes only names absent from the vault with prune, and nothing without it", async () => {
    const { d, adapter } = await setup();
    d.entries.push(
      { id: "env_a", key: "KEEP", value: "k", type: "encrypted", target: ["production"] },
      { id: "env_b", key: "GONE", value: "g", type: "encrypted", target: ["production"] },
      { id: "env_c", key: "PREVIEW_ONLY", value: "p", type: "encrypted", target: ["preview"] },
    );
    const kept = await push(adapter, { KEEP: "k2" }, false);
    expect(kept.result.removed).toEqual([]);
    expect(d.entries.map((e) => e.key).sort()).toEqual(["GONE", "KEEP", "PREVIEW_ONLY"]);

    const pruned = await push(adapter, { KEEP: "k3" }, true);
    expect(pruned.plan.removed).toEqual(["GONE"]);
    expect(pruned.result).toEqual({ written: ["KEEP"], removed: ["GONE"], failed: [] });
    // Another target's entry is not this connection's to delete.
    expect(d.entries.map((e) => e.key).sort()).toEqual(["KEEP", "PREVIEW_ONLY"]);
    expect(d.refusals).toEqual([]);
  });

  it("counts a name already gone when the prune runs as removed, sending no delete for it", async () => {
    const { d, adapter } = await setup();
    const result = await adapter.apply({ upsert: {}, remove: ["NEVER_THERE"] });
    expect(result).toEqual({ written: [], removed: ["NEVER_THERE"], failed: [] });
    expect(d.requests.map((r) => r.method)).toEqual(["GET"]);
    expect(d.refusals).toEqual([]);
  });

  it("does not delete an entry that also serves a target the connection does not own", async () => {
    const { d, adapter } = await setup();
    d.entries.push({
      id: "env_s",
      key: "SHARED",
      value: "s",
      type: "encrypted",
      target: ["preview", "production"],
    });
    const { plan, result } = await push(adapter, { A: "1" }, true);
    expect(plan.removed).toEqual(["SHARED"]);
    expect(result.removed).toEqual([]);
    expect(result.failed).toEqual([
      { name: "SHARED", reason: "also set for preview, production; not removed" },
    ]);
    expect(d.entries.map((e) => e.key)).toEqual(["SHARED", "A"]);
  });

  it("waits as a 429's Retry-After asks, then succeeds", async () => {
    const { d, ctx, adapter } = await setup();
    d.fault({ status: 429, retryAfter: "2", match: "POST" });
    const { result } = await push(adapter, { A: "1" });
    expect(result.written).toEqual(["A"]);
    expect(ctx.sleeps).toEqual([2000]);
    expect(d.requests.filter((r) => r.method === "POST")).toHaveLength(2);
  });

  it("turns a 401 into LK_PLATFORM_UNAUTHORIZED without the token in the message", async () => {
    const { adapter } = await setup({}, "wrong-token-xyz");
    const error = await adapter.listNames().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_PLATFORM_UNAUTHORIZED");
    expect((error as LatchkeyError).hint).toMatch(/scopes/);
    expect(JSON.stringify((error as LatchkeyError).toJSON())).not.toContain("wrong-token-xyz");
  });

  it("pulls the decrypted values of the connection's target, naming the sensitive ones withheld", async () => {
    const { d, adapter } = await setup();
    d.entries.push(
      { id: "env_a", key: "A", value: "va", type: "encrypted", target: ["production", "preview"] },
      { id: "env_b", key: "B", value: "vb", type: "sensitive", target: ["production"] },
      { id: "env_c", key: "C", value: "vc", type: "encrypted", target: ["development"] },
    );
    expect(await adapter.pull!()).toEqual({ values: { A: "va" }, withheld: ["B"] });
    expect(d.refusals).toEqual([]);
  });

  it("has no pull for sensitive connections", async () => {
    const { adapter } = await setup({ type: "sensitive" });
    expect(adapter.pull).toBeNull();
  });

  it("reports exactly the names written when Vercel refuses some", async () => {
    const { d, adapter } = await setup();
    d.refuseKeys.add("B");
    const { result } = await push(adapter, { A: "1", B: "2", C: "3" });
    expect(result.written).toEqual(["A", "C"]);
    expect(result.failed).toEqual([{ name: "B", reason: "refused: ENV_CONFLICT" }]);
    expect(d.entries.map((e) => e.key)).toEqual(["A", "C"]);
  });
});
